#!/usr/bin/env bash
# Scale and throughput: a sparse 64 GiB dynamic VHD with data scattered across it. Prints JSON
# lines: peak memory (from /usr/bin/time) and rate of pack, sync (network-free: a folder
# repository), a Trim Transfer first sync from a host folder, verify and export — next to
# this machine's SHA-256 and AES-256-GCM rates from `openssl speed`, measured in the same run,
# so every figure reads as a fraction of the hashing and AES limits.
# Usage: bash bench/run-scale-bench.sh [--virtual-gib 64] [--data-mib 1024] [--work DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
virtual_gib=64
data_mib=1024
work=$root/build/bench-scale
while [ $# -gt 0 ]; do
  case "$1" in
    --virtual-gib) virtual_gib=$2; shift 2 ;;
    --data-mib) data_mib=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$root/build/bin/heirloom-image
[ -x "$bin" ] || { echo "build first: cmake -S . -B build -G Ninja && ninja -C build" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/files" && cd "$work"

# Data: files of 1-8 MiB (half compressible text, half random), written into the raw disk at
# scattered 4 KiB-aligned offsets and also kept as host files for the Trim Transfer run.
python3 - "$virtual_gib" "$data_mib" <<'PY'
import os, random, sys
virtual = int(sys.argv[1]) << 30
budget = int(sys.argv[2]) << 20
rng = random.Random(64)
with open("disk.raw", "wb") as disk:
    disk.truncate(virtual)
    used, n = 0, 0
    while used < budget:
        size = rng.randint(1 << 20, 8 << 20)
        if n % 2:
            data = os.urandom(size)
        else:
            words = [b"payroll", b"ledger", b"invoice", b"2004", b"account", b"total", b"\n"]
            data = b" ".join(rng.choice(words) for _ in range(size // 6))[:size]
        offset = rng.randrange(0, virtual - size) // 4096 * 4096
        disk.seek(offset); disk.write(data)
        with open(f"files/f{n:05d}.bin", "wb") as f: f.write(data)
        used += size; n += 1
PY
qemu-img convert -f raw -O vpc -o subformat=dynamic disk.raw disk.vhd
rm -f disk.raw
"$bin" keygen --out keys >/dev/null

measure() { # name, bytes processed, command...
  local name=$1 bytes=$2; shift 2
  /usr/bin/time -f '%M %e %U %S' -o time.txt "$@" >out.json 2>err.txt || { cat err.txt >&2; exit 1; }
  read -r rss secs user sys <time.txt
  python3 - "$name" "$bytes" "$rss" "$secs" "$user" "$sys" <<'PY'
import json, sys
name, nbytes, rss, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
cpu = float(sys.argv[5]) + float(sys.argv[6])
# Wall-clock rate includes waiting for the disk (syncfs at checkpoints); the rate per CPU
# second is what compares with the per-core hashing and AES rates below.
print(json.dumps({"tool": "heirloom", "step": name, "data_bytes": nbytes, "seconds": secs,
                  "mb_per_s": round(nbytes / 1e6 / max(secs, 1e-3), 1),
                  "cpu_seconds": round(cpu, 2),
                  "mb_per_cpu_second": round(nbytes / 1e6 / max(cpu, 1e-3), 1),
                  "peak_rss_kb": rss}))
PY
}

data_bytes=$(du -sb files | cut -f1)
measure pack "$data_bytes" "$bin" pack disk.vhd --repo repo --name big --keys keys --json --quiet
measure sync-folder "$data_bytes" "$bin" sync --from repo --name big --store store --keys keys --json --quiet
measure verify "$data_bytes" "$bin" verify --store store --name big --keys keys --json --quiet
measure export "$data_bytes" "$bin" export --store store --name big --keys keys --out out.vhd --json --quiet
measure sync-trim-transfer "$data_bytes" "$bin" sync --from repo --name big --store store2 --keys keys --seed files --json --quiet
if qemu-img compare -q disk.vhd out.vhd; then export_ok=true; else export_ok=false; fi

# The machine's limits, same run: single-core SHA-256 and AES-256-GCM on 4 KiB buffers.
sha=$(openssl speed -seconds 2 -bytes 4096 -evp sha256 2>/dev/null | awk '/^sha256/ {print $2}')
aes=$(openssl speed -seconds 2 -bytes 4096 -evp aes-256-gcm 2>/dev/null | awk '/^AES-256-GCM/ {print $2}')
python3 - "$sha" "$aes" "$virtual_gib" "$export_ok" "$(nproc)" <<'PY'
import json, sys
def rate(s): return float(s.rstrip("k")) * 1000 / 1e6  # openssl prints kB/s (1000s)
print(json.dumps({"tool": "openssl speed", "sha256_mb_per_s_per_core": round(rate(sys.argv[1])),
                  "aes_256_gcm_mb_per_s_per_core": round(rate(sys.argv[2])), "cores": int(sys.argv[5]),
                  "virtual_gib": int(sys.argv[3]), "export_identical": sys.argv[4] == "true"}))
PY
