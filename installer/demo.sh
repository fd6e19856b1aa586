#!/usr/bin/env bash
# The main job on embedded defaults: installs what it needs, builds Heirloom, makes a guest-like
# ext4 disk as a VHD, packs it into an encrypted, signed repository, serves that repository
# from a plain static HTTP server on 127.0.0.1, syncs an endpoint store from it, rolls out an
# update by block deltas, seeds a new endpoint from its own files (Trim Transfer) and from a
# USB-style media folder, and exports the result back to a VHD that qemu-img compares equal.
# Usage: bash installer/demo.sh [WORK_DIR]   (default: build/demo; a second run reuses it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-$root/build/demo}
bin=$root/build/bin

t0=$(date +%s.%N)
step_start=$t0
step() {
  local now; now=$(date +%s.%N)
  printf '\n\033[1m==> %s\033[0m   (previous step %.1fs)\n' "$*" "$(echo "$now - $step_start" | bc)"
  step_start=$now
}

step "Installing Debian packages (skipped quickly when present)"
if [ "${HEIRLOOM_SKIP_DEPS:-0}" != 1 ]; then bash installer/install-deps.sh >/dev/null; fi
command -v bc >/dev/null || { echo "bc is missing"; exit 1; }

step "Building Heirloom into build/bin"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build heirloom-image >/dev/null
mkdir -p "$work"
cd "$work"

step "Making a guest disk: a 768 MiB ext4 file system with real files, as a dynamic VHD"
if [ ! -f v1.vhd ]; then
  rm -rf tree && mkdir -p tree/app tree/share
  cp -r /usr/share/doc tree/share/ 2>/dev/null || true
  cp -r /usr/share/perl tree/share/ 2>/dev/null || true
  cp -r /usr/lib/x86_64-linux-gnu/perl-base tree/app/ 2>/dev/null || true
  mke2fs -q -F -t ext4 -b 4096 -d tree v1.raw 768M
  qemu-img convert -f raw -O vpc -o subformat=dynamic v1.raw v1.vhd
fi
"$bin/heirloom-image" inspect v1.vhd

step "Creating keys (signing key pair and image-family secret)"
[ -d keys ] || "$bin/heirloom-image" keygen --out keys

step "Packing v1 into the repository (keyed IDs, zstd, AES-256-GCM, signed manifest)"
rm -rf repo store store-trim store-usb usb
"$bin/heirloom-image" pack v1.vhd --repo repo --name legacy-apps --keys keys

step "Serving the repository with a plain static server (python3 http.server, no Range support)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$port" --directory repo >http.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port"

step "Endpoint: first sync of v1 over HTTP"
"$bin/heirloom-image" sync --from "$url" --name legacy-apps --store store --keys keys

step "Admin: an update (files rewritten, removed, added) packed as v2"
cp v1.raw v2.raw
mkdir -p newfiles
head -c 20000000 /dev/urandom > newfiles/payroll-2025.db
seq 1 400000 > newfiles/report.txt
{
  echo "mkdir /app/update"
  echo "write newfiles/payroll-2025.db /app/update/payroll-2025.db"
  echo "write newfiles/report.txt /app/update/report.txt"
  # Remove some files, and rewrite a few others with new content.
  find tree/share/doc -mindepth 2 -maxdepth 2 -name copyright | sort | sed -n '1~25p' | sed 's|^tree|rm |'
  find tree/share/perl -type f -name '*.pm' | sort | sed -n '1~40p' | while read -r f; do
    mkdir -p "newfiles/$(dirname "$f")"; sed 's/the/THE/g' "$f" > "newfiles/$f"
    echo "rm ${f#tree}"; echo "write newfiles/$f ${f#tree}"
  done
} > debugfs.cmd
debugfs -w -f debugfs.cmd v2.raw >/dev/null 2>&1
qemu-img convert -f raw -O vpc -o subformat=dynamic v2.raw v2.vhd
"$bin/heirloom-image" pack v2.vhd --repo repo --name legacy-apps --keys keys

step "Endpoint: update to v2 by block deltas (only blocks the store lacks cross the wire)"
"$bin/heirloom-image" sync --from "$url" --name legacy-apps --store store --keys keys

step "Trim Transfer: a new endpoint that already has the files seeds from its own folder"
"$bin/heirloom-image" sync --from "$url" --name legacy-apps --store store-trim --keys keys --seed tree

step "Branch office: write a USB-style media folder, then sync a new endpoint from it"
"$bin/heirloom-image" media create --repo repo --name legacy-apps --out usb
"$bin/heirloom-image" sync --from "$url" --name legacy-apps --store store-usb --keys keys --seed usb

step "Verifying the store and exporting v2 back to a standard VHD"
"$bin/heirloom-image" verify --store store --name legacy-apps --keys keys
"$bin/heirloom-image" export --store store --name legacy-apps --keys keys --out exported.vhd
qemu-img compare v2.vhd exported.vhd

step "Done"
printf 'Total %.1fs. Everything is in %s.\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$work"
cat <<NEXT

Try next:
  $bin/heirloom-image --help
  $bin/heirloom-image sync --help
  $bin/heirloom-image sync --from $work/repo --name legacy-apps --store /tmp/s --keys $work/keys --json
  bash bench/run-sync-bench.sh --size-gib 1     # bytes on the wire next to rdiff, casync, zsync
NEXT
