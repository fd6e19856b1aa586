#!/usr/bin/env bash
# Builds the Heirloom guest image: a small Debian 12 system with Xpra, a few X11 applications
# and the guest agent, on a disk that boots by itself in plain QEMU (SeaBIOS, no -kernel),
# written as a dynamic VHD. Used by the demo and the VM tests; docs/guest-image.md explains
# the recipe, the disk layout and the cache.
#
# Usage: build-guest-image.sh --out DIR --guest-agent PATH [--windows-apps DIR] [--size-mib N]
#                             [--force]
#
# Writes DIR/guest.vhd and DIR/guest.json. The root tree (mmdebstrap) is cached in DIR/cache/
# under a hash of the recipe files; the disk is made again only when the tree, the guest
# agent, rootfs/ or this script changed, so a second run with nothing changed takes well
# under a second. With --windows-apps the image also carries Wine (32-bit) and a Wine prefix
# holding the Windows programs of that folder (wine-packages.list, wine-hooks.sh); without it
# the recipe, and so its cache key, is exactly the default image's.
set -euo pipefail

recipe=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$recipe/$(basename "${BASH_SOURCE[0]}")"

suite=bookworm
mirror=${HEIRLOOM_GUEST_MIRROR:-http://deb.debian.org/debian}
security_mirror=${HEIRLOOM_GUEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Kernel command line. The root is found by partition UUID (the MBR disk identifier below plus
# the partition number), so it boots whether the host attaches the disk as virtio-blk (vda),
# virtio-scsi or SATA (sda). `ro`: the root file system is never written.
disk_id=4865726c # "Herl"
kernel_cmdline="root=PARTUUID=${disk_id}-02 rootfstype=ext4 ro console=ttyS0"
kernel_cmdline+=" init=/usr/local/sbin/heirloom-init quiet panic=5"
boot_label=HEIRLOOM
root_label=heirloom-root

usage() {
  cat <<EOF
Usage: $(basename "$0") --out DIR --guest-agent PATH [--windows-apps DIR] [--size-mib N] [--force]

Builds DIR/guest.vhd (a bootable Debian 12 guest disk, dynamic VHD) and DIR/guest.json.

  --out DIR            where guest.vhd, guest.json and the cache (DIR/cache) go
  --guest-agent PATH   the heirloom-guest program, installed as /usr/local/bin/heirloom-guest
  --windows-apps DIR   also install Wine (32-bit) and the Windows programs of DIR, one per
                       folder: a portable program is copied to C:\Apps\<folder>, an installer
                       (.msi, NSIS, Inno Setup) runs unattended (docs/guest-image.md)
  --size-mib N         size of the virtual disk in MiB (default: what the files need plus
                       about 10 % free, rounded up to 64 MiB)
  --force              build the root tree and the disk again even when the cache is current

Environment: HEIRLOOM_GUEST_MIRROR (default $mirror),
             HEIRLOOM_GUEST_SECURITY_MIRROR (default $security_mirror),
             HEIRLOOM_WINE_INSTALL_TIMEOUT (seconds per installer, default 600).
Needs root, or user namespaces for mmdebstrap's unshare mode plus fakeroot.
EOF
}

out=
agent=
size_mib=
apps=
force=0
while [ $# -gt 0 ]; do
  case "$1" in
  --out) out=${2:?--out needs a directory}; shift 2 ;;
  --out=*) out=${1#*=}; shift ;;
  --guest-agent) agent=${2:?--guest-agent needs a path}; shift 2 ;;
  --guest-agent=*) agent=${1#*=}; shift ;;
  --windows-apps) apps=${2:?--windows-apps needs a directory}; shift 2 ;;
  --windows-apps=*) apps=${1#*=}; shift ;;
  --size-mib) size_mib=${2:?--size-mib needs a number}; shift 2 ;;
  --size-mib=*) size_mib=${1#*=}; shift ;;
  --force) force=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; echo "error: unknown argument: $1" >&2; exit 2 ;;
  esac
done

die() {
  echo "build-guest-image: error: $*" >&2
  exit 1
}

[ -n "$out" ] || { usage >&2; die "--out DIR is required"; }
[ -n "$agent" ] || { usage >&2; die "--guest-agent PATH is required"; }
[[ -f "$agent" && -r "$agent" ]] || die "guest agent $agent is not a readable file"
if [ -n "$size_mib" ]; then
  [[ "$size_mib" =~ ^[0-9]+$ && "$size_mib" -ge 128 ]] ||
    die "--size-mib must be a number of MiB, at least 128"
fi
agent=$(realpath "$agent")
if [ -n "$apps" ]; then
  [[ -d "$apps" && -r "$apps" ]] || die "--windows-apps $apps is not a readable folder"
  apps=$(realpath "$apps")
  # Under QEMU 7.2's TCG with -cpu max (what the agent runs when KVM is not there), an IRET
  # back to 32-bit user code reads the user's stack as a supervisor access: with SMAP on, every
  # 32-bit Wine process (Wine returns from its system calls with IRET) dies in a kernel oops.
  # The guest's kernel leaves SMAP off (`nosmap` is gone from Linux 6.1); SMEP and the rest
  # stay.
  kernel_cmdline+=" clearcpuid=smap"
fi

# --- steps, timings, failures ---------------------------------------------------------------

t_start=$EPOCHREALTIME
step_name=
step_t0=
elapsed() { # seconds since $1 (an $EPOCHREALTIME), one decimal
  local now=${EPOCHREALTIME//[.,]/} then=${1//[.,]/}
  local us=$((10#$now - 10#$then))
  printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000))
}
end_step() {
  [ -n "$step_name" ] && printf '    (%ss)\n' "$(elapsed "$step_t0")"
  step_name=
}
step() {
  end_step
  step_name=$1
  step_t0=$EPOCHREALTIME
  printf '==> %s\n' "$1"
}

work=
partials=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$work" ] && [ -d "$work" ]; then rm -rf --one-file-system "$work"; fi
  local p
  for p in "${partials[@]}"; do rm -rf --one-file-system "$p"; done
  if [ "$status" -ne 0 ]; then
    echo "build-guest-image: failed${step_name:+ while: $step_name}; temporary files removed" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "build-guest-image: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR

# --- tools ----------------------------------------------------------------------------------

require() { # require COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    die "$1 is missing: install the Debian package $2 (apt-get install $2, or installer/install-deps.sh)"
}
for tool in "mmdebstrap mmdebstrap" "sfdisk fdisk" "mkfs.vfat dosfstools" "syslinux syslinux" \
  "mcopy mtools" "mke2fs e2fsprogs" "e2fsck e2fsprogs" "qemu-img qemu-utils" \
  "dpkg-query dpkg" "python3 python3" "flock util-linux" "sha256sum coreutils"; do
  # shellcheck disable=SC2086 # two words: command and package
  require $tool
done
# wine-hooks.sh strips Wine's PE DLLs with the host's strip.
[ -z "$apps" ] || require strip binutils
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$mbr_bin" ] || die "$mbr_bin is missing: install the Debian package syslinux-common"

if [ "$(id -u)" -eq 0 ]; then
  run_mode=root
else
  run_mode=unshare
  require fakeroot fakeroot
  mmdebstrap --unshare-helper /bin/true >/dev/null 2>&1 ||
    die "not running as root, and mmdebstrap's unshare mode does not work here: run as root, or
  allow unprivileged user namespaces and give your user subordinate ids (/etc/subuid,
  /etc/subgid; package uidmap)"
fi
export MTOOLS_SKIP_CHECK=1

# --- cache keys -----------------------------------------------------------------------------

mkdir -p "$out/cache"
out=$(realpath "$out")
cache="$out/cache"
# One build per output folder at a time; a second caller waits and then finds it current.
exec 9>"$out/.lock"
if ! flock -n 9; then
  echo "build-guest-image: another build is running in $out; waiting for it"
  flock 9
fi

# The tree depends on these; the files under rootfs/ (the init, its DHCP script, Xpra's
# settings) are copied onto the disk with the guest agent, so changing one does not rebuild
# the tree.
tree_files=(packages.list exclude.list initramfs.modules initramfs-init tree-hooks.sh)
overlay_files=()
while IFS= read -r f; do overlay_files+=("$f"); done < <(cd "$recipe" && find rootfs -type f | LC_ALL=C sort)
# hash_files FILE...: one line per recipe file: name, executable or not, content hash.
hash_files() {
  local f
  for f in "$@"; do
    printf '%s %s %s\n' "$f" "$([ -x "$recipe/$f" ] && echo x || echo -)" \
      "$(sha256sum <"$recipe/$f" | cut -c1-64)"
  done
}

packages=()
while read -r line; do
  read -r -a words <<<"${line%%#*}"
  packages+=("${words[@]}")
done <"$recipe/packages.list"
[ ${#packages[@]} -gt 0 ] || die "$recipe/packages.list names no packages"
if [ -n "$apps" ]; then
  tree_files+=(wine-packages.list wine-exclude.list wine-hooks.sh wine-prefix.py)
  while read -r line; do
    read -r -a words <<<"${line%%#*}"
    packages+=("${words[@]}")
  done <"$recipe/wine-packages.list"
fi

dpkg_filters=()
read_filters() { # read_filters LIST: its exclude/include lines as dpkg path filters
  local verb pattern rest
  while read -r verb pattern rest; do
    case "$verb" in
    '' | \#*) continue ;;
    exclude | include | remove)
      [[ -n "$pattern" && -z "$rest" ]] || die "$1: bad line: $verb $pattern $rest"
      ;;
    *) die "$1: lines start with exclude, include or remove, not: $verb" ;;
    esac
    # `remove` lines of exclude.list are read by tree-hooks.sh.
    [[ "$verb" != remove || "$1" = exclude.list ]] || die "$1: remove lines belong in exclude.list"
    [ "$verb" = remove ] || dpkg_filters+=("--dpkgopt=path-$verb=$pattern")
  done <"$recipe/$1"
}
read_filters exclude.list
[ -z "$apps" ] || read_filters wine-exclude.list

mmdebstrap_args=(
  --variant=minbase
  # dpkg without fsync: a build cut short is thrown away anyway (the tree is written to a
  # .partial tarball), and fsync per file is most of dpkg's time on a busy disk.
  --dpkgopt=force-unsafe-io
  --include="$(IFS=,; echo "${packages[*]}")"
  "${dpkg_filters[@]}"
  --essential-hook="\"$recipe/tree-hooks.sh\" essential \"\$1\""
  --customize-hook="\"$recipe/tree-hooks.sh\" customize \"\$1\""
)
if [ -n "$apps" ]; then
  # The Wine image: i386 multiarch for wine32, then the prefix and the programs, after
  # tree-hooks.sh (which makes the user).
  # shellcheck disable=SC2054 # amd64,i386 is one mmdebstrap argument
  mmdebstrap_args+=(
    --architectures=amd64,i386
    --customize-hook="\"$recipe/wine-hooks.sh\" \"\$1\" \"$apps\""
  )
fi
mmdebstrap_args+=("$suite")
security_suite=$suite-security
if [ -n "$apps" ]; then
  # amd64 and i386 copies of a library must be the same version, so both architectures come
  # from one set of suites: bookworm and bookworm-updates, and bookworm-security only when
  # HEIRLOOM_GUEST_WINE_SECURITY_SUITE names it. On the mirror used here its i386 index does
  # not match its Release file (and oldstable-security has expired), and a mix of suites
  # across the two architectures breaks the installation. docs/guest-image.md says more.
  security_suite=${HEIRLOOM_GUEST_WINE_SECURITY_SUITE:-}
fi
mirrors=(
  "deb $mirror $suite main"
  "deb $mirror $suite-updates main"
)
[ -z "$security_suite" ] || mirrors+=("deb $security_mirror $security_suite main")

tree_key=$(
  {
    echo "heirloom guest tree 1"
    printf '%s\n' "${mmdebstrap_args[@]//"$recipe"/RECIPE}" "${mirrors[@]}"
    hash_files "${tree_files[@]}"
    if [ -n "$apps" ]; then
      # The programs: file names and contents (not where the folder is).
      echo "heirloom wine apps 1"
      (cd "$apps" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    fi
  } | if [ -n "$apps" ]; then sed "s|$apps|APPS|g"; else cat; fi | sha256sum | cut -c1-16
)
agent_sha=$(sha256sum <"$agent" | cut -c1-64)
disk_key=$(
  {
    printf '%s\n' "$tree_key" "$agent_sha" "${size_mib:-auto}" "$kernel_cmdline" \
      "$(sha256sum <"$self" | cut -c1-64)"
    hash_files "${overlay_files[@]}"
  } | sha256sum | cut -c1-16
)
tree_dir="$cache/tree-$tree_key"

echo "build-guest-image: tree $tree_key, disk $disk_key, agent $agent ($run_mode mode)"
built_key() { # the disk key guest.json records, or nothing
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["keys"]["disk"])' \
    "$out/guest.json" 2>/dev/null || true
}
if [ "$force" = 0 ] && [ -f "$out/guest.vhd" ] && [ "$(built_key)" = "$disk_key" ]; then
  echo "build-guest-image: $out/guest.vhd is up to date ($(elapsed "$t_start")s)"
  exit 0
fi

# --- the root tree --------------------------------------------------------------------------

# As root, files carry their real owners. Otherwise fakeroot keeps the owners, modes and
# device files of the tree in a state file (tree-KEY.fakeroot), which every later command
# that reads or adds files (cp, install, mke2fs) loads.
as_root() { # as_root STATE CMD...
  local state=$1
  shift
  if [ "$run_mode" = root ]; then
    "$@"
  else
    fakeroot -i "$state" -s "$state" -- "$@"
  fi
}

tree_seconds=
if [ "$force" = 1 ] || [ ! -d "$tree_dir" ]; then
  step "Building the root tree with mmdebstrap ($suite, ${#packages[@]} packages, $run_mode mode)"
  tree_t0=$EPOCHREALTIME
  partials+=("$tree_dir.tar.partial" "$tree_dir.partial" "$tree_dir.partial.fakeroot")
  partials+=("$cache/debs.new")
  rm -rf "${partials[@]}"
  mkdir -p "$cache/debs" "$cache/debs.new"
  # Downloaded packages are kept in cache/debs and handed to the next build (mmdebstrap's
  # sync-in/sync-out), so a recipe change or a failed build does not download everything
  # again; apt-get autoclean drops the versions the mirror no longer has.
  status=0
  # The Wine image: Wine's 32-bit Unix libraries find ntdll.so next to them through Wine's
  # loader, not through a RUNPATH; tree-hooks.sh's library check (ldd in the chroot) is told
  # where they are so that it still checks them (and tree-hooks.sh stays the default's).
  hook_env=()
  [ -z "$apps" ] || hook_env=(LD_LIBRARY_PATH=/usr/lib/i386-linux-gnu/wine/i386-unix)
  # shellcheck disable=SC2016 # "$1" in a hook is the tree, expanded by mmdebstrap's shell
  env "${hook_env[@]}" TMPDIR="$cache" mmdebstrap --mode="$run_mode" --format=tar --skip=download/empty \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in \"$cache/debs\" /var/cache/apt/archives/" \
    --customize-hook='chroot "$1" apt-get -q autoclean >/dev/null' \
    --customize-hook="sync-out /var/cache/apt/archives \"$cache/debs.new\"" \
    "${mmdebstrap_args[@]}" "$tree_dir.tar.partial" "${mirrors[@]}" 2>&1 | sed -u 's/^/    /' ||
    status=$?
  if [ -n "$(find "$cache/debs.new" -name '*.deb' -print -quit)" ]; then
    rm -rf "$cache/debs"
    mv "$cache/debs.new" "$cache/debs"
  fi
  [ "$status" -eq 0 ] || die "mmdebstrap failed (its messages are above); the recipe is in $recipe"

  step "Unpacking the tree into the cache"
  # Unpacked once per tree: each disk build hard-links it instead of unpacking it again.
  mkdir "$tree_dir.partial"
  : >"$tree_dir.partial.fakeroot"
  as_root "$tree_dir.partial.fakeroot" tar --numeric-owner --xattrs --xattrs-include='*' \
    -xpf "$tree_dir.tar.partial" -C "$tree_dir.partial"
  rm -f "$tree_dir.tar.partial"
  # Trees of older recipes are of no use any more.
  find "$cache" -mindepth 1 -maxdepth 1 -name 'tree-*' ! -name "tree-$tree_key.partial*" \
    -exec rm -rf --one-file-system {} +
  tree_seconds=$(elapsed "$tree_t0")
  echo "$tree_seconds" >"$tree_dir.seconds"
  mv "$tree_dir.partial.fakeroot" "$tree_dir.fakeroot"
  mv "$tree_dir.partial" "$tree_dir"
else
  step "Reusing the cached root tree $(basename "$tree_dir")"
  tree_seconds=$(cat "$tree_dir.seconds" 2>/dev/null || echo null)
fi

# --- the disk -------------------------------------------------------------------------------

disk_t0=$EPOCHREALTIME
work=$(mktemp -d "$out/.build.XXXXXX")
root="$work/root"
state="$work/fakeroot.state"
cp "$tree_dir.fakeroot" "$state"

step "Staging the root file system: the tree, rootfs/ and the guest agent"
kver=$(basename "$(find "$tree_dir/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
kernel="$tree_dir/boot/vmlinuz-$kver"
initrd="$tree_dir/boot/initrd.img-$kver"
[[ -n "$kver" && -f "$kernel" && -f "$initrd" ]] ||
  die "the tree has no kernel and initramfs in /boot (is linux-image-amd64 in packages.list?)"
# A copy made of hard links (the cache and the work folder are both in DIR): fast, and the
# cached tree is never written, because files are only added or unlinked below.
as_root "$state" cp -al "$tree_dir" "$root"
# The kernel and the initramfs live on the boot partition only: the root's /boot stays empty.
rm -f "$root/boot/vmlinuz-$kver" "$root/boot/initrd.img-$kver" \
  "$root/vmlinuz" "$root/vmlinuz.old" "$root/initrd.img" "$root/initrd.img.old"
# Files of rootfs/ go to the same place, owned by root; executables in git stay executable.
# (install unlinks an existing file before it writes: a hard link is never written through.)
for f in "${overlay_files[@]}"; do
  file_mode=0644
  [ -x "$recipe/$f" ] && file_mode=0755
  as_root "$state" install -D -o 0 -g 0 -m "$file_mode" "$recipe/$f" "$root/${f#rootfs/}"
done
as_root "$state" install -D -o 0 -g 0 -m 0755 "$agent" "$root/usr/local/bin/heirloom-guest"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package}:${Architecture}\t${Version}\n' |
  sed 's/:\(amd64\|all\)\t/\t/' >"$work/packages.tsv"
wine_json=null
[ -z "$apps" ] || wine_json=$(cat "$root/opt/heirloom/wine.json")

step "Laying out the disk (MBR: FAT boot partition with SYSLINUX, ext4 root)"
mib=$((1024 * 1024))
tree_kib=$(du -sk "$root" | cut -f1)
tree_inodes=$(find "$root" | wc -l)
kernel_bytes=$(stat -c %s "$kernel")
initrd_bytes=$(stat -c %s "$initrd")
boot_mib=$(((kernel_bytes + initrd_bytes) / mib + 16))
boot_mib=$(((boot_mib + 15) / 16 * 16))
[ "$boot_mib" -ge 64 ] || boot_mib=64
# ext4 with 4 KiB blocks: the files, their inodes (256 bytes each, twice as many as used),
# the journal and the group metadata.
root_min_mib=$((tree_kib / 1024 + tree_inodes * 2 * 256 / mib + 48))
root_min_mib=$((root_min_mib + root_min_mib / 20))
if [ -n "$size_mib" ]; then
  root_mib=$((size_mib - 1 - boot_mib))
  [ "$root_mib" -ge "$root_min_mib" ] ||
    die "--size-mib $size_mib is too small: the files need at least $((root_min_mib + 1 + boot_mib)) MiB"
else
  root_mib=$((root_min_mib + root_min_mib / 10))
  disk_mib=$(((1 + boot_mib + root_mib + 63) / 64 * 64))
  root_mib=$((disk_mib - 1 - boot_mib))
fi
disk_mib=$((1 + boot_mib + root_mib))
boot_start=2048 # sectors: 1 MiB, so both partitions are 1 MiB (and 4 KiB) aligned
root_start=$(((1 + boot_mib) * 2048))
disk="$work/disk.raw"
truncate -s "${disk_mib}M" "$disk"
sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<EOF
label: dos
label-id: 0x$disk_id
unit: sectors

start=$boot_start, size=$((boot_mib * 2048)), type=e, bootable
start=$root_start, size=$((root_mib * 2048)), type=83
EOF
# SYSLINUX's MBR boot code (440 bytes: the partition table behind it stays) starts the
# active partition's boot sector.
dd if="$mbr_bin" of="$disk" bs=440 count=1 conv=notrunc status=none
echo "    disk ${disk_mib} MiB: boot ${boot_mib} MiB at 1 MiB, root ${root_mib} MiB at $((1 + boot_mib)) MiB"
echo "    tree $((tree_kib / 1024)) MiB in $tree_inodes files, kernel $kver"

step "Making the boot partition (FAT16, SYSLINUX, kernel, initramfs)"
# Built in place at the partition's offset, no loop device: mkfs.vfat --offset, the mtools
# flavour of syslinux (--offset) and mcopy with mtools' @@offset. The hidden-sectors field
# (-h) tells the boot sector where its partition starts.
mkfs.vfat -F 16 -n "$boot_label" -i "$disk_id" -h "$boot_start" --offset "$boot_start" \
  "$disk" $((boot_mib * 1024)) >/dev/null 2>"$work/mkfs.vfat.log" ||
  { cat "$work/mkfs.vfat.log" >&2; die "mkfs.vfat failed"; }
syslinux --install --offset $((boot_start * 512)) "$disk"
mkdir "$work/boot"
cp "$kernel" "$work/boot/vmlinuz"
cp "$initrd" "$work/boot/initrd.img"
cat >"$work/boot/syslinux.cfg" <<EOF
# Heirloom guest image: boot at once, no menu; SYSLINUX speaks on the serial port too.
SERIAL 0 115200
DEFAULT heirloom
PROMPT 0
TIMEOUT 0
LABEL heirloom
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND $kernel_cmdline
EOF
mcopy -i "$disk@@$((boot_start * 512))" "$work/boot/vmlinuz" "$work/boot/initrd.img" \
  "$work/boot/syslinux.cfg" ::/

step "Making the root file system (ext4 from the tree, mke2fs -d)"
# mke2fs -d copies the tree into the new file system without mounting anything; 4 KiB blocks
# keep file data 4 KiB aligned on the virtual disk, which Trim Transfer matches on.
as_root "$state" mke2fs -q -F -t ext4 -b 4096 -I 256 -m 0 -L "$root_label" \
  -E "offset=$((root_start * 512)),root_owner=0:0,nodiscard" -d "$root" "$disk" "${root_mib}M"
e2fsck -fn "$disk?offset=$((root_start * 512))" >"$work/e2fsck.log" 2>&1 ||
  { cat "$work/e2fsck.log" >&2; die "the new root file system does not check clean"; }
root_used_kib=$(sed -n 's/.* \([0-9]*\)\/\([0-9]*\) blocks$/\1/p' "$work/e2fsck.log" | tail -n 1)
root_used_kib=$((${root_used_kib:-0} * 4))

step "Writing the dynamic VHD"
partials+=("$out/guest.vhd.partial" "$out/guest.json.partial")
qemu-img convert -f raw -O vpc -o subformat=dynamic "$disk" "$out/guest.vhd.partial"
vhd_bytes=$(stat -c %s "$out/guest.vhd.partial")
virtual_bytes=$(qemu-img info --output=json "$out/guest.vhd.partial" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
disk_seconds=$(elapsed "$disk_t0")

GJ_TREE_SECONDS=${tree_seconds:-null} GJ_DISK_SECONDS=$disk_seconds GJ_TREE_KEY=$tree_key \
  GJ_DISK_KEY=$disk_key GJ_SUITE=$suite GJ_MIRROR=$mirror GJ_SECURITY_MIRROR=$security_mirror \
  GJ_SECURITY_SUITE=$security_suite \
  GJ_KVER=$kver GJ_CMDLINE=$kernel_cmdline GJ_AGENT=$agent GJ_AGENT_SHA=$agent_sha \
  GJ_VHD_BYTES=$vhd_bytes GJ_VIRTUAL_BYTES=$virtual_bytes GJ_BOOT_START=$((boot_start * 512)) \
  GJ_BOOT_BYTES=$((boot_mib * mib)) GJ_ROOT_START=$((root_start * 512)) \
  GJ_ROOT_BYTES=$((root_mib * mib)) GJ_ROOT_USED=$((root_used_kib * 1024)) \
  GJ_TREE_BYTES=$((tree_kib * 1024)) GJ_TREE_FILES=$tree_inodes GJ_KERNEL_BYTES=$kernel_bytes \
  GJ_INITRD_BYTES=$initrd_bytes GJ_BOOT_LABEL=$boot_label GJ_ROOT_LABEL=$root_label \
  GJ_PARTUUID=$disk_id-02 GJ_WINE=$wine_json \
  python3 - "$out/guest.json.partial" "$work/packages.tsv" <<'EOF'
import datetime, json, os, sys
e = os.environ
num = lambda k: json.loads(e[k])
packages = dict(sorted(line.rstrip("\n").split("\t") for line in open(sys.argv[2])))
doc = {
    "image": "guest.vhd",
    "format": "vhd-dynamic",
    "built_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "build_seconds": {"tree": num("GJ_TREE_SECONDS"), "disk": num("GJ_DISK_SECONDS")},
    "keys": {"tree": e["GJ_TREE_KEY"], "disk": e["GJ_DISK_KEY"]},
    "debian": {"suite": e["GJ_SUITE"], "mirror": e["GJ_MIRROR"],
               "security_mirror": e["GJ_SECURITY_MIRROR"],
               "security_suite": e["GJ_SECURITY_SUITE"]},
    "kernel": {"version": e["GJ_KVER"], "cmdline": e["GJ_CMDLINE"]},
    "guest_agent": {"source": e["GJ_AGENT"], "sha256": e["GJ_AGENT_SHA"],
                    "installed_as": "/usr/local/bin/heirloom-guest"},
    "init": "/usr/local/sbin/heirloom-init",
    "user": {"name": "user", "uid": 1000},
    "sizes": {
        "vhd_bytes": num("GJ_VHD_BYTES"),
        "virtual_bytes": num("GJ_VIRTUAL_BYTES"),
        "root_used_bytes": num("GJ_ROOT_USED"),
        "tree_bytes": num("GJ_TREE_BYTES"),
        "tree_files": num("GJ_TREE_FILES"),
        "kernel_bytes": num("GJ_KERNEL_BYTES"),
        "initrd_bytes": num("GJ_INITRD_BYTES"),
    },
    "partitions": [
        {"number": 1, "start_bytes": num("GJ_BOOT_START"), "bytes": num("GJ_BOOT_BYTES"),
         "type": "fat16", "label": e["GJ_BOOT_LABEL"], "bootable": True,
         "files": ["ldlinux.sys", "ldlinux.c32", "syslinux.cfg", "vmlinuz", "initrd.img"]},
        {"number": 2, "start_bytes": num("GJ_ROOT_START"), "bytes": num("GJ_ROOT_BYTES"),
         "type": "ext4", "label": e["GJ_ROOT_LABEL"], "partuuid": e["GJ_PARTUUID"]},
    ],
    # What wine-hooks.sh put in (null: the default image has no Wine).
    "wine": json.loads(e["GJ_WINE"]),
    "package_count": len(packages),
    "packages": packages,
}
with open(sys.argv[1], "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
EOF
# The image first, then its description: a guest.json always describes the guest.vhd beside
# it, and a run cut between the two renames builds again.
mv "$out/guest.vhd.partial" "$out/guest.vhd"
mv "$out/guest.json.partial" "$out/guest.json"
end_step

echo "build-guest-image: $out/guest.vhd: $((vhd_bytes / mib)) MiB file, $((virtual_bytes / mib)) MiB disk," \
  "root $((root_used_kib / 1024)) MiB used of $root_mib MiB, ${#packages[@]} packages listed," \
  "$(wc -l <"$work/packages.tsv") installed ($(elapsed "$t_start")s)"
