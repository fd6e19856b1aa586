#!/usr/bin/env bash
# mmdebstrap hooks of the guest image recipe, called by build-guest-image.sh as
#   tree-hooks.sh essential TREE   (after the Essential packages, before the others)
#   tree-hooks.sh customize TREE   (after all packages, before mmdebstrap cleans up)
# They run as root (or as root of mmdebstrap's user namespace) outside the chroot; commands
# meant for the guest run through `chroot TREE`. This script, packages.list, exclude.list,
# initramfs.modules and initramfs-init are the input of the tree's cache key: change one and
# the tree is built again. The files under rootfs/ are not: build-guest-image.sh copies them
# onto the disk.
set -euo pipefail

phase=${1:?phase}
tree=${2:?tree}
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The user that runs the applications (heirloom-guest --user user).
guest_user=user
guest_uid=1000

say() { echo "tree-hooks: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

essential() {
  # initramfs-tools reads this before the kernel package builds the first initramfs, which
  # make_initramfs replaces anyway: no modules (not MODULES=most, ≈36 MB and 30 s to make).
  mkdir -p "$tree/etc/initramfs-tools/conf.d"
  cat >"$tree/etc/initramfs-tools/conf.d/heirloom" <<'EOF'
# Heirloom guest image: the initramfs in use is built by installer/guest/tree-hooks.sh; this
# one, made by initramfs-tools whenever it is asked to, stays small.
MODULES=list
RESUME=none
COMPRESS=zstd
EOF
}

configure_system() {
  chroot "$tree" useradd --uid "$guest_uid" --user-group --create-home --shell /bin/bash \
    --comment "Heirloom applications" "$guest_user"
  echo heirloom >"$tree/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\theirloom\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    >"$tree/etc/hosts"
  # The root file system is read-only: udhcpc writes the name servers to /run.
  rm -f "$tree/etc/resolv.conf"
  ln -s /run/resolv.conf "$tree/etc/resolv.conf"
  # Mount points of the tmpfs file systems heirloom-init mounts.
  mkdir -p "$tree/var/lib/xkb" "$tree/run" "$tree/tmp" "$tree/var/tmp" "$tree/var/log"
  chmod 1777 "$tree/tmp" "$tree/var/tmp"
  # Left over from the installation; the guest never reads them.
  find "$tree/var/log" "$tree/var/cache/debconf" "$tree/var/lib/dpkg" -maxdepth 1 -type f \
    \( -name '*.log' -o -name '*-old' \) -delete
  rm -rf "$tree/var/log/apt" "$tree/var/cache/man"
}

make_initramfs() {
  # Replaces the initramfs that initramfs-tools made (it needs udev and takes ~4 s under TCG)
  # with a small one: a static busybox, initramfs-init as /init, and the modules listed in
  # initramfs.modules with what they depend on, in load order.
  local kver=$1 dir module line path loaded
  if [ ! -x "$tree/bin/busybox" ] || chroot "$tree" ldd /bin/busybox >/dev/null 2>&1; then
    die "the initramfs needs a static /bin/busybox: is busybox-static in packages.list?"
  fi
  dir=$(mktemp -d "$tree/tmp/initramfs.XXXXXX")
  mkdir -p "$dir/bin" "$dir/lib/modules"
  install -m 0755 "$tree/bin/busybox" "$dir/bin/busybox"
  install -m 0755 "$recipe/initramfs-init" "$dir/init"
  # /modules: always loaded; /modules.more: when the root is not found (after "--").
  local list="$dir/modules"
  : >"$dir/modules"
  : >"$dir/modules.more"
  while read -r module _; do
    case "$module" in '' | \#*) continue ;; --) list="$dir/modules.more" && continue ;; esac
    # One "insmod /lib/modules/.../NAME.ko" line per module still to load, dependencies first
    # ("builtin NAME" for those in the kernel).
    chroot "$tree" modprobe --set-version "$kver" --show-depends "$module" >"$dir/deps" ||
      die "initramfs.modules: kernel $kver has no module $module"
    while read -r line; do
      [ "${line%% *}" = insmod ] || continue
      path=${line#insmod }
      path=${path%% *}
      [ -e "$dir/lib/modules/${path##*/}" ] && continue
      cp "$tree$path" "$dir/lib/modules/"
      echo "${path##*/}" >>"$list"
    done <"$dir/deps"
  done <"$recipe/initramfs.modules"
  rm "$dir/deps"
  loaded="$(sed 's/\.ko$//' "$dir/modules" | paste -sd' ')"
  loaded+=", then if needed: $(sed 's/\.ko$//' "$dir/modules.more" | paste -sd' ')"
  chroot "$tree" sh -c "cd /tmp/${dir##*/} && find . | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet | zstd -q -19" >"$tree/boot/initrd.img-$kver"
  rm -rf "$dir"
  say "initramfs: $(stat -c %s "$tree/boot/initrd.img-$kver") bytes; modules: $loaded"
}

kernel_version() {
  local kver
  kver=$(basename "$(find "$tree/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
  [ -n "$kver" ] || die "no kernel modules in the tree: is linux-image-amd64 in packages.list?"
  echo "$kver"
}

check_modules() {
  # The modules heirloom-init and the initramfs load must have survived exclude.list.
  local kver=$1 m missing=()
  for m in virtio_pci virtio_blk virtio_scsi virtio_console virtio_net virtio_rng ext4 vfat \
    button evdev vmw_vsock_virtio_transport; do
    chroot "$tree" modinfo -k "$kver" -F filename "$m" >/dev/null 2>&1 || missing+=("$m")
  done
  [ ${#missing[@]} -eq 0 ] || die "kernel modules missing (see exclude.list): ${missing[*]}"
  say "kernel $kver, $(find "$tree/lib/modules/$kver" -name '*.ko' | wc -l) modules"
}

check_libraries() {
  # Every program and library must still find the libraries it links against: exclude.list
  # removes files behind dpkg's back, this is where a too greedy line shows up.
  if [ ! -x "$tree/usr/bin/python3" ]; then
    say "warning: no python3 in the tree, library check skipped"
    return
  fi
  local report
  report=$(chroot "$tree" python3 - <<'EOF'
import os, subprocess, sys
elfs = []
for top in ("/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec", "/usr/local"):
    for d, dirs, files in os.walk(top):
        # Kernel modules are not shared objects; systemd's private libraries are found
        # through the RUNPATH of systemd's own programs, which ldd of the library ignores.
        if d.startswith(("/usr/lib/modules", "/usr/lib/x86_64-linux-gnu/systemd")):
            dirs[:] = []
            continue
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p):
                continue
            try:
                with open(p, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        elfs.append(p)
            except OSError:
                pass
bad = []
for i in range(0, len(elfs), 100):
    out = subprocess.run(["ldd"] + elfs[i:i + 100], capture_output=True, text=True).stdout
    cur = None
    for line in out.splitlines():
        if not line.startswith("\t"):
            cur = line.rstrip(":")
        elif "not found" in line:
            bad.append(f"{cur} needs {line.split()[0]}")
print(f"{len(elfs)} ELF files", *bad, sep="\n")
EOF
  )
  say "library check: $(head -n 1 <<<"$report")"
  if [ "$(wc -l <<<"$report")" -gt 1 ]; then
    tail -n +2 <<<"$report" >&2
    die "libraries missing (see exclude.list)"
  fi
}

remove_listed() {
  # The `remove` lines of exclude.list: files that only the installation needed.
  local verb pattern path count=0
  while read -r verb pattern _; do
    [ "$verb" = remove ] || continue
    [[ "$pattern" == /* && "$pattern" != *..* ]] ||
      die "exclude.list: remove needs an absolute path: $pattern"
    for path in "$tree"$pattern; do
      [ -e "$path" ] || [ -L "$path" ] || continue
      rm -rf --one-file-system "$path"
      count=$((count + 1))
    done
  done <"$recipe/exclude.list"
  say "removed $count paths listed in exclude.list"
}

customize() {
  local kver
  remove_listed
  configure_system
  kver=$(kernel_version)
  check_modules "$kver"
  make_initramfs "$kver"
  check_libraries
}

case "$phase" in
essential) essential ;;
customize) customize ;;
*) die "unknown phase $phase (essential or customize)" ;;
esac
