#!/usr/bin/env bash
# Builds Heirloom's Debian packages twice (an older and the current version) from a release
# build, then installs, upgrades, removes and purges them in a throwaway Debian 12 root made by
# mmdebstrap, with the server set up by `heirloom-server init` against a throwaway directory
# (slapd) and run as its service user. The checks are in inside.sh.
# Needs root (the throwaway root is entered with chroot) and Debian's mirror.
# Usage: bash tests/packages/test-packages.sh [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
build=$(realpath "${1:-build}")
work=$build/packages
mirror=${HEIRLOOM_PACKAGE_TEST_MIRROR:-http://deb.debian.org/debian}
security_mirror=${HEIRLOOM_PACKAGE_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
t0=$EPOCHREALTIME

if [ "$(id -u)" -ne 0 ]; then
  echo "test-packages: needs root (chroot into the throwaway Debian root)" >&2
  exit 1
fi
[ -f "$build/CPackConfig.cmake" ] || { echo "test-packages: $build is not a configured build" >&2; exit 1; }

version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
old="$version~older"
new="$version"
echo "test-packages: building packages $old and $new"
rm -rf "$work/old" "$work/new" "$work/root" "$work/ldap"
mkdir -p "$work/apt-cache"
(cd "$build" && cpack -G DEB -D CPACK_PACKAGE_VERSION="$old" -B "$work/old" >"$work/cpack-old.log") ||
  { cat "$work/cpack-old.log" >&2; exit 1; }
(cd "$build" && cpack -G DEB -D CPACK_PACKAGE_VERSION="$new" -B "$work/new" >"$work/cpack-new.log") ||
  { cat "$work/cpack-new.log" >&2; exit 1; }
rm -rf "$work/old/_CPack_Packages" "$work/new/_CPack_Packages"
ls -la "$work"/new/*.deb
for deb in "$work"/new/*.deb; do
  echo "== $(basename "$deb")"
  dpkg-deb --field "$deb" Package Version Depends Recommends | sed 's/^/   /'
done
# Every desktop file the packages carry passes desktop-file-validate.
for deb in "$work"/new/*.deb; do
  x=$(mktemp -d)
  dpkg-deb -x "$deb" "$x"
  while IFS= read -r -d '' f; do
    desktop-file-validate "$f" || { echo "test-packages: $f in $(basename "$deb") is not valid" >&2; exit 1; }
  done < <(find "$x" -name '*.desktop' -print0)
  rm -rf "$x"
done

# The throwaway directory the packaged server's init checks (on the host's loopback, which the
# chroot shares).
ldap_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bash installer/demo-directory.sh start "$work/ldap" "$ldap_port" --stop-with $$ >/dev/null
trap 'bash "$root/installer/demo-directory.sh" stop "$work/ldap" >/dev/null 2>&1 || true' EXIT

status=0
echo "test-packages: a fresh Debian 12 root (mmdebstrap minbase), then the checks in inside.sh"
# Downloaded packages are kept in apt-cache for the next run (mmdebstrap's sync-in/sync-out).
# shellcheck disable=SC2016 # "$1" in a hook is the root, expanded by mmdebstrap's shell
mmdebstrap --mode=root --variant=minbase --include=ca-certificates,curl \
  --dpkgopt=force-unsafe-io \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in \"$work/apt-cache\" /var/cache/apt/archives/" \
  --customize-hook='mkdir -p "$1/tmp/heirloom-debs"' \
  --customize-hook="copy-in \"$work/old\" \"$work/new\" \"$root/tests/packages/inside.sh\" /tmp/heirloom-debs/" \
  --customize-hook="chroot \"\$1\" env OLD_VERSION=$old-1 NEW_VERSION=$new-1 LDAP_URI=ldap://127.0.0.1:$ldap_port SERVER_PORT=$server_port bash /tmp/heirloom-debs/inside.sh" \
  --customize-hook='chroot "$1" apt-get -q autoclean >/dev/null' \
  --customize-hook="sync-out /var/cache/apt/archives \"$work/apt-cache\"" \
  bookworm "$work/root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb $security_mirror bookworm-security main" 2>&1 | sed -u 's/^/    /' || status=$?
rm -rf --one-file-system "$work/root"
if [ "$status" -ne 0 ]; then
  echo "test-packages: FAILED (messages above)" >&2
  exit 1
fi
printf 'test-packages: passed in %.0fs\n' "$(echo "$EPOCHREALTIME - $t0" | bc)"
