#!/usr/bin/env bash
# mmdebstrap hook of the Wine guest image (build-guest-image.sh --windows-apps DIR), run after
# tree-hooks.sh's customize phase as
#   wine-hooks.sh TREE APPS_DIR
# It runs as root outside the chroot; Wine runs inside it (chroot, then setpriv to the guest
# user). It
#   1. strips the debug information from Wine's 32-bit Windows DLLs (Debian ships them with
#      it: 640 MB of files become 135 MB),
#   2. makes Wine quiet by default (WINEDEBUG=-all unless the caller sets it),
#   3. makes a win32 Wine prefix as the guest user, headless, without Mono/Gecko prompts,
#   4. puts each program of APPS_DIR into it: a portable program is copied to C:\Apps\<folder>,
#      an installer (.msi, NSIS or Inno Setup .exe) runs unattended with its silent switches,
#   5. moves the prefix to /opt/heirloom/wine-prefix (heirloom-init mounts it as
#      /home/user/.wine through overlayfs, the upper layer on tmpfs), hard-links its files that
#      are identical to Wine's own DLLs, and writes /opt/heirloom/wine.json for guest.json.
# This file, wine-packages.list and the contents of APPS_DIR are part of the Wine tree's cache
# key. See docs/guest-image.md, "Windows programs".
set -euo pipefail

tree=${1:?tree}
apps=${2:?apps dir}
recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

guest_uid=1000
guest_home=/home/user
build_prefix=$guest_home/.wine
prefix=/opt/heirloom/wine-prefix
wine_lib=/usr/lib/i386-linux-gnu/wine
install_timeout=${HEIRLOOM_WINE_INSTALL_TIMEOUT:-600}

say() { echo "wine-hooks: $*" >&2; }
die() {
  say "error: $*"
  # Leave no Wine process behind in the tree mmdebstrap is about to pack.
  as_user wineserver -k >/dev/null 2>&1 || true
  exit 1
}

# as_user CMD...: CMD in the tree as the guest user, with Wine's build-time environment: the
# prefix in the user's home, win32, no Mono/Gecko (their installers would ask a person), no
# menu entries (the home is a tmpfs at run time), no debug output, no X display.
as_user() {
  chroot "$tree" setpriv --reuid="$guest_uid" --regid="$guest_uid" --init-groups -- \
    env -i HOME="$guest_home" USER=user LOGNAME=user PATH=/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 WINEARCH=win32 WINEPREFIX="$build_prefix" WINEDEBUG=-all \
    WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d" "$@"
}

strip_dlls() {
  local before after
  [ -d "$tree$wine_lib/i386-windows" ] || die "no $wine_lib/i386-windows in the tree: is wine32:i386 installed?"
  before=$(du -sm "$tree$wine_lib/i386-windows" | cut -f1)
  # PE files only (all of that folder); strip keeps the "Wine builtin DLL" DOS stub.
  find "$tree$wine_lib/i386-windows" -type f -exec strip --strip-all {} +
  after=$(du -sm "$tree$wine_lib/i386-windows" | cut -f1)
  say "stripped Wine's Windows DLLs: $before MB -> $after MB"
}

quiet_wine() {
  # /usr/bin/wine is an alternative for /usr/bin/wine-stable, which sets WINEDEBUG=fixme-all
  # when it is unset; the wrapper makes that -all, so the user's logs stay free of Wine's
  # warnings. wineapploader (msiexec, regedit, notepad...) calls wine-stable too.
  chroot "$tree" dpkg-divert --quiet --local --rename --divert /usr/bin/wine-stable.debian \
    --add /usr/bin/wine-stable
  cat >"$tree/usr/bin/wine-stable" <<'EOF'
#!/bin/sh
# Heirloom guest image: Wine says nothing unless WINEDEBUG asks it to (the Debian script,
# diverted to wine-stable.debian, would default to fixme-all). See docs/guest-image.md.
: "${WINEDEBUG:=-all}"
export WINEDEBUG
exec /usr/bin/wine-stable.debian "$@"
EOF
  chmod 0755 "$tree/usr/bin/wine-stable"
}

make_prefix() {
  local t0=$SECONDS
  rm -rf "$tree$build_prefix"
  # Headless: without DISPLAY, wineboot creates no window and waits for nobody.
  as_user timeout 600 wineboot -i || die "wineboot could not make the Wine prefix"
  as_user timeout 120 wineserver -w || die "wineserver did not stop after wineboot"
  # Persisted in the prefix: no menu entries or file associations written into the user's
  # home by winemenubuilder each time a program starts (its output would be lost anyway).
  as_user wine reg add 'HKCU\Software\Wine\DllOverrides' /v winemenubuilder.exe /t REG_SZ \
    /d '' /f >/dev/null || die "could not set Wine's DLL overrides"
  as_user timeout 120 wineserver -w
  [ -f "$tree$build_prefix/system.reg" ] || die "wineboot made no prefix in $build_prefix"
  say "Wine prefix made in $((SECONDS - t0)) s"
}

# kind_of FOLDER: what the folder holds: "args", "msi FILE", "nsis FILE", "inno FILE",
# "portable", or "unknown FILE" (an installer we cannot run unattended).
kind_of() {
  local dir=$1 f found=() kind words=()
  if [ -f "$dir/heirloom-install.args" ]; then
    # The one word `portable`: copy the folder even if a file in it looks like an installer.
    read -r -a words < <(grep -v '^[[:space:]]*\(#\|$\)' "$dir/heirloom-install.args" | tr -d '\r')
    if [ "${words[*]:-}" = portable ]; then echo portable; else echo args; fi
    return
  fi
  while IFS= read -r -d '' f; do
    case "${f,,}" in
    *.msi) found+=("msi ${f##*/}") ;;
    *.exe)
      if LC_ALL=C grep -qaF 'NullsoftInst' "$f"; then
        found+=("nsis ${f##*/}")
      elif LC_ALL=C grep -qaE 'Inno Setup Setup Data|rDlPtS' "$f"; then
        found+=("inno ${f##*/}")
      elif LC_ALL=C grep -qaE 'InstallShield|Wise Installation|WiseMain|7zS.sfx|SetupFactory' "$f"; then
        found+=("unknown ${f##*/}")
      else
        case "${f##*/}" in
        [Ss]etup*.* | [Ii]nstall*.*) found+=("unknown ${f##*/}") ;;
        esac
      fi
      ;;
    esac
  done < <(find "$dir" -maxdepth 1 -type f -print0 | LC_ALL=C sort -z)
  if [ ${#found[@]} -eq 0 ]; then
    echo portable
  elif [ ${#found[@]} -eq 1 ]; then
    echo "${found[0]}"
  else
    kind="several installers: ${found[*]#* }"
    echo "unknown $kind"
  fi
}

# run_installer FOLDER COMMAND...: COMMAND (Wine's arguments) under the timeout; fails with a
# message that names the folder.
run_installer() {
  local folder=$1 status=0
  shift
  say "$folder: wine $*"
  as_user timeout --kill-after=10 "$install_timeout" wine "$@" >"$tree/tmp/install.log" 2>&1 ||
    status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    as_user wineserver -k >/dev/null 2>&1 || true
    die "the installer in $apps/$folder did not finish within ${install_timeout}s: it probably
  waits for a person (a dialog). Give its silent switches in $apps/$folder/heirloom-install.args
  (see docs/guest-image.md), or raise HEIRLOOM_WINE_INSTALL_TIMEOUT"
  fi
  as_user timeout 120 wineserver -w || true
  if [ "$status" -ne 0 ]; then
    tail -n 20 "$tree/tmp/install.log" >&2 || true
    die "the installer in $apps/$folder failed (exit status $status); its last output is above"
  fi
  rm -f "$tree/tmp/install.log"
}

install_apps() {
  local dir folder kind file staged win_staged args=() line
  local report="$tree/tmp/wine-apps.tsv"
  : >"$report"
  mkdir -p "$tree$build_prefix/drive_c/Apps"
  chown "$guest_uid:$guest_uid" "$tree$build_prefix/drive_c/Apps"
  while IFS= read -r -d '' dir; do
    folder=${dir##*/}
    [[ "$folder" =~ ^[A-Za-z0-9][A-Za-z0-9._\ -]*$ ]] ||
      die "$apps/$folder: a folder name for C:\\Apps may hold letters, digits, space, '.', '_' and '-' only"
    kind=$(kind_of "$dir")
    case "$kind" in
    portable)
      say "$folder: portable, copied to C:\\Apps\\$folder"
      cp -r --no-preserve=ownership "$dir" "$tree$build_prefix/drive_c/Apps/$folder"
      rm -f "$tree$build_prefix/drive_c/Apps/$folder/heirloom-install.args"
      chown -R "$guest_uid:$guest_uid" "$tree$build_prefix/drive_c/Apps/$folder"
      ;;
    unknown*)
      die "$apps/$folder holds an installer Heirloom cannot run unattended (${kind#unknown }):
  give the installer and its silent switches in $apps/$folder/heirloom-install.args
  (one line: FILE SWITCHES..., see docs/guest-image.md), or install it by hand and put the
  installed folder there instead"
      ;;
    *)
      # The installer runs from a copy inside the prefix: C:\heirloom-setup\<folder>.
      staged="$build_prefix/drive_c/heirloom-setup/$folder"
      win_staged="C:\\heirloom-setup\\$folder"
      mkdir -p "$tree$staged"
      cp -r --no-preserve=ownership "$dir/." "$tree$staged/"
      chown -R "$guest_uid:$guest_uid" "$tree$build_prefix/drive_c/heirloom-setup"
      file=${kind#* }
      case "${kind%% *}" in
      msi) run_installer "$folder" msiexec /i "$win_staged\\$file" /qn ;;
      nsis) run_installer "$folder" "$win_staged\\$file" /S "/D=C:\\Apps\\$folder" ;;
      inno)
        run_installer "$folder" "$win_staged\\$file" /VERYSILENT /SUPPRESSMSGBOXES /NORESTART \
          /SP- "/DIR=C:\\Apps\\$folder"
        ;;
      args)
        line=$(grep -v '^[[:space:]]*\(#\|$\)' "$dir/heirloom-install.args" | head -n 1 | tr -d '\r')
        read -r -a args <<<"$line"
        [ ${#args[@]} -gt 0 ] || die "$apps/$folder/heirloom-install.args names no installer"
        file=${args[0]}
        [[ "$file" != */* && "$file" != *\\* && -f "$dir/$file" ]] ||
          die "$apps/$folder/heirloom-install.args: $file is not a file in $apps/$folder"
        kind="args $file"
        case "${file,,}" in
        *.msi) run_installer "$folder" msiexec /i "$win_staged\\$file" "${args[@]:1}" ;;
        *) run_installer "$folder" "$win_staged\\$file" "${args[@]:1}" ;;
        esac
        ;;
      esac
      rm -rf "$tree$build_prefix/drive_c/heirloom-setup"
      ;;
    esac
    printf '%s\t%s\n' "$folder" "$kind" >>"$report"
  done < <(find "$apps" -mindepth 1 -maxdepth 1 -type d -print0 | LC_ALL=C sort -z)
}

finish_prefix() {
  local version
  rm -rf "$tree$prefix"
  mkdir -p "$tree${prefix%/*}"
  mv "$tree$build_prefix" "$tree$prefix"
  # Whatever Wine left in the build home (caches): the home is a tmpfs at run time.
  find "$tree$guest_home" -mindepth 1 -maxdepth 1 ! -name '.bash*' ! -name '.profile' \
    -exec rm -rf {} +
  version=$(chroot "$tree" dpkg-query -W -f='${Version}' wine32:i386)
  python3 "$recipe/wine-prefix.py" "$tree" "$prefix" "$wine_lib" "$tree/tmp/wine-apps.tsv" \
    "$version" >"$tree/opt/heirloom/wine.json"
  rm -f "$tree/tmp/wine-apps.tsv"
  say "prefix $prefix: $(du -sm "$tree$prefix" | cut -f1) MB after hard links; Wine $version"
}

[ -d "$apps" ] || die "$apps is not a folder"
strip_dlls
quiet_wine
make_prefix
install_apps
finish_prefix
