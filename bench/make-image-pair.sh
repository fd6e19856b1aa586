#!/usr/bin/env bash
# make-image-pair.sh OUTDIR [--size-gib N] [--bin-dir DIR] [--allow-unshuffled] [--force]
#
# Builds a realistic image update pair for the sync benchmark, without mounting anything:
#   v1.raw     ext4 (mke2fs -d), ~60% full of real files copied from /usr plus generated files
#   v2.raw     v1.raw changed in place with debugfs -w as a software update would: ~4% of the
#              files rewritten, ~1% removed, tens of MB of new files (real and generated)
#   v1.vhd     dynamic VHD from qemu-img convert (blocks in disk order)
#   v2.vhd     dynamic VHD from heirloom-bench-vhd-reorder (blocks in a shuffled order)
#   v2-files/  ~80% of v2's files as plain host files: the Trim Transfer seed
#   pair.json  what was made: sizes, change statistics, timings
# Deterministic: fixed seeds everywhere; the same /usr gives the same file selection and changes
# (installing packages changes the selection: pair.json has a fingerprint of it).
# A complete pair made by the same version of this script is reused.
#
# The disk size is rounded down to a whole number of VHD CHS cylinders (16 heads x 63 sectors
# = 516,096 bytes), so that every VHD reader agrees on the virtual size (Virtual PC-style
# readers, qemu among them, take the size from the CHS geometry for most creator strings).
set -euo pipefail

PAIR_VERSION=1 # bump whenever the generated content changes
V2_VHD_VERSION=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

usage() {
    sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

out=""
size_gib=3
bin_dir=""
allow_unshuffled=0
force=0
while (($#)); do
    case "$1" in
    --size-gib) size_gib=${2:?}; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --allow-unshuffled) allow_unshuffled=1; shift ;;
    --force) force=1; shift ;;
    -h | --help) usage ;;
    -*) echo "make-image-pair: unknown option $1" >&2; usage ;;
    *) [[ -z $out ]] || usage; out=$1; shift ;;
    esac
done
[[ -n $out ]] || usage
[[ $size_gib =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "make-image-pair: bad --size-gib $size_gib" >&2; exit 2; }

log() { printf '[make-image-pair %s] %s\n' "$(date +%T)" "$*" >&2; }
need() { command -v "$1" >/dev/null || { echo "make-image-pair: $1 is not installed" >&2; exit 1; }; }
for t in mke2fs debugfs e2fsck qemu-img python3 cmp; do need "$t"; done

cyl_bytes=516096
size_bytes=$(python3 -c "import sys; g=float(sys.argv[1]); c=int(g*2**30)//$cyl_bytes; print(c*$cyl_bytes)" "$size_gib")
((size_bytes >= 64 * 1024 * 1024)) || { echo "make-image-pair: --size-gib too small" >&2; exit 2; }

# Finds heirloom-bench-vhd-reorder: --bin-dir, then the usual build folders.
reorder_tool=""
for d in "$bin_dir" "$repo/build/bin" "$repo/build-bench/bin"; do
    if [[ -n $d && -x $d/heirloom-bench-vhd-reorder ]]; then
        reorder_tool=$d/heirloom-bench-vhd-reorder
        break
    fi
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
raw_stamp="pair=$PAIR_VERSION size=$size_bytes"
v2_method=$([[ -n $reorder_tool ]] && echo "reorder" || echo "qemu-img-unshuffled")
vhd_stamp="$raw_stamp vhd=$V2_VHD_VERSION v2=$v2_method"

t_start=$(date +%s.%N)
elapsed() { python3 -c "import sys,time; print(round(time.time()-float(sys.argv[1]),1))" "$1"; }

if ((force == 0)) && [[ -f $out/.raw-done && $(cat "$out/.raw-done") == "$raw_stamp" ]] &&
    [[ -f $out/v1.raw && -f $out/v2.raw && -d $out/v2-files && -f $out/pair.json ]]; then
    log "reusing raw pair in $out ($raw_stamp)"
    raw_reused=1
else
    raw_reused=0
    rm -rf "$out/work" "$out/v2-files" "$out/.raw-done" "$out/.vhd-done" \
        "$out"/v1.raw "$out"/v2.raw "$out"/v1.vhd "$out"/v2.vhd "$out"/pair.json
    work=$out/work
    mkdir -p "$work/tree"
    # ~53% of the disk in v1 file data (ext4 metadata, the journal and partly filled last blocks
    # bring the file system to ~60% used); v2 adds ~20 MiB of new files per GiB of disk.
    budget=$((size_bytes * 53 / 100))
    new_bytes=$((size_bytes * 20 / 1024))
    declare -A took

    log "v1 tree: selecting and generating $((budget / 1000000)) MB of files"
    t=$(date +%s.%N)
    python3 "$here/tools/pairgen.py" tree "$work/tree" --budget "$budget" \
        --reserve-bytes "$new_bytes" --reserve-out "$work/reserve.json"
    took[tree]=$(elapsed "$t")

    log "v1.raw: mke2fs -t ext4 -d (size $size_bytes bytes)"
    t=$(date +%s.%N)
    uuid=6e1e0c5a-7b3d-4c1e-9a55-0b5e4c4e0001
    E2FSPROGS_FAKE_TIME=1704067200 mke2fs -q -F -t ext4 -b 4096 -d "$work/tree" -L heirloom-bench \
        -U "$uuid" -E "hash_seed=$uuid" "$out/v1.raw" "$((size_bytes / 1024))k" >&2
    e2fsck -fn "$out/v1.raw" >"$work/e2fsck-v1.log" 2>&1 ||
        { cat "$work/e2fsck-v1.log" >&2; echo "make-image-pair: v1.raw fails e2fsck" >&2; exit 1; }
    took[mke2fs]=$(elapsed "$t")

    log "v2: changed host files and debugfs command file"
    t=$(date +%s.%N)
    python3 "$here/tools/pairgen.py" update "$work/tree" "$work" --new-bytes "$new_bytes" \
        --reserve "$work/reserve.json"
    took[update_files]=$(elapsed "$t")

    log "v2.raw: copy of v1.raw changed with debugfs -w ($(wc -l <"$work/debugfs-v2.cmd") commands)"
    t=$(date +%s.%N)
    cp --sparse=always "$out/v1.raw" "$out/v2.raw"
    E2FSPROGS_FAKE_TIME=1704153600 debugfs -w -f "$work/debugfs-v2.cmd" "$out/v2.raw" >"$work/debugfs-v2.log" 2>&1
    # debugfs reports failed commands on its output but still exits 0: look for them.
    if grep -v -E '^(debugfs( [0-9.]+ \(.*\))?:? |Allocated inode: [0-9]+$|$)' "$work/debugfs-v2.log" |
        grep -q .; then
        grep -v -E '^(debugfs( [0-9.]+ \(.*\))?:? |Allocated inode: [0-9]+$|$)' "$work/debugfs-v2.log" | head -20 >&2
        echo "make-image-pair: debugfs reported errors (full log: $work/debugfs-v2.log)" >&2
        exit 1
    fi
    e2fsck -fn "$out/v2.raw" >"$work/e2fsck-v2.log" 2>&1 ||
        { cat "$work/e2fsck-v2.log" >&2; echo "make-image-pair: v2.raw fails e2fsck" >&2; exit 1; }
    # Spot-check: a few rewritten and added files read back from v2.raw as written.
    python3 - "$work" >"$work/spot.txt" <<'EOF'
import json, sys
work = sys.argv[1]
files = [(r, s) for r, s in json.load(open(f"{work}/v2-files.json")) if "/v2-host/" in s]
step = max(1, len(files) // 12)
for rel, src in files[::step][:12]:
    print(rel, src)
EOF
    while read -r rel src; do
        debugfs -R "dump /$rel $work/spot.bin" "$out/v2.raw" >/dev/null 2>&1
        cmp -s "$work/spot.bin" "$src" || { echo "make-image-pair: /$rel in v2.raw differs from $src" >&2; exit 1; }
    done <"$work/spot.txt"
    took[debugfs]=$(elapsed "$t")

    log "v2-files: Trim Transfer seed folder (~80% of v2's files)"
    t=$(date +%s.%N)
    python3 "$here/tools/pairgen.py" seed "$work" "$out/v2-files" --fraction 0.8
    took[seed_folder]=$(elapsed "$t")

    python3 - "$out" "$size_bytes" "$work" "$PAIR_VERSION" \
        "${took[tree]}" "${took[mke2fs]}" "${took[update_files]}" "${took[debugfs]}" "${took[seed_folder]}" <<'EOF'
import hashlib, json, re, subprocess, sys
out, size, work, version = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
names = ["tree", "mke2fs", "update_files", "debugfs", "seed_folder"]
def used(img):
    txt = subprocess.run(["dumpe2fs", "-h", img], capture_output=True, text=True).stdout
    get = lambda k: int(re.search(rf"^{k}:\s+(\d+)", txt, re.M).group(1))
    return (get("Block count") - get("Free blocks")) / get("Block count")
info = {
    "pair_version": version,
    "size_bytes": size,
    "v1_fs_used_fraction": round(used(f"{out}/v1.raw"), 3),
    "v2_fs_used_fraction": round(used(f"{out}/v2.raw"), 3),
    "v1_files": len(json.load(open(f"{work}/v1-files.json"))),
    # Changes whenever the /usr files picked for v1 change (packages installed or removed).
    "v1_selection_fingerprint": hashlib.blake2b(open(f"{work}/v1-files.json", "rb").read(),
                                                digest_size=8).hexdigest(),
    "v2_files": len(json.load(open(f"{work}/v2-files.json"))),
    "changes": json.load(open(f"{work}/changes.json")),
    "seconds": {n: float(v) for n, v in zip(names, sys.argv[5:])},
}
json.dump(info, open(f"{out}/pair.json", "w"), indent=1)
EOF
    mkdir -p "$out/meta"
    cp "$work"/*.json "$work/debugfs-v2.cmd" "$out/meta/"
    # The source trees stay: most of their files are hard links shared with v2-files (so they
    # cost little space), and unlinking tens of thousands of files takes minutes on slow disks.
    echo "$raw_stamp" >"$out/.raw-done"
fi

# The VHDs: rebuilt when missing, stale, or when v2.vhd was made without the reorder tool and
# the tool has since been built.
vhd_done=$(cat "$out/.vhd-done" 2>/dev/null || true)
if ((raw_reused)) && [[ -f $out/v1.vhd && -f $out/v2.vhd ]] &&
    [[ $vhd_done == "$vhd_stamp" || $vhd_done == "$raw_stamp vhd=$V2_VHD_VERSION v2=reorder" ]]; then
    log "reusing VHDs in $out ($vhd_done)"
else
    rm -f "$out/.vhd-done"
    t=$(date +%s.%N)
    if [[ ! -f $out/v1.vhd || $raw_reused == 0 ]]; then
        log "v1.vhd: qemu-img convert -O vpc -o subformat=dynamic"
        rm -f "$out/v1.vhd"
        qemu-img convert -f raw -O vpc -o subformat=dynamic "$out/v1.raw" "$out/v1.vhd"
        qemu-img compare -q -f raw -F vpc "$out/v1.raw" "$out/v1.vhd" ||
            { echo "make-image-pair: v1.vhd does not match v1.raw" >&2; exit 1; }
    fi
    rm -f "$out/v2.vhd"
    if [[ -n $reorder_tool ]]; then
        log "v2.vhd: $reorder_tool (shuffled block order, seed 2)"
        "$reorder_tool" "$out/v2.raw" "$out/v2.vhd" --seed 2
    elif ((allow_unshuffled)); then
        log "WARNING: heirloom-bench-vhd-reorder is not built; v2.vhd made by qemu-img in disk" \
            "order (--allow-unshuffled). Build it (ninja heirloom-bench-vhd-reorder) and rerun."
        qemu-img convert -f raw -O vpc -o subformat=dynamic "$out/v2.raw" "$out/v2.vhd"
    else
        echo "make-image-pair: heirloom-bench-vhd-reorder not found (looked in --bin-dir," \
            "$repo/build/bin, $repo/build-bench/bin). Build it, or pass --allow-unshuffled." >&2
        exit 1
    fi
    # Checks that both VHDs hold exactly the raw disks, at the same virtual size for qemu.
    for v in v1 v2; do
        vsize=$(qemu-img info -f vpc --output=json "$out/$v.vhd" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
        [[ $vsize == "$size_bytes" ]] ||
            { echo "make-image-pair: qemu reads $v.vhd as $vsize bytes, not $size_bytes" >&2; exit 1; }
    done
    qemu-img compare -q -f raw -F vpc "$out/v2.raw" "$out/v2.vhd" ||
        { echo "make-image-pair: v2.vhd does not match v2.raw" >&2; exit 1; }
    log "VHDs done in $(elapsed "$t") s"
    echo "$vhd_stamp" >"$out/.vhd-done"
fi

log "pair ready in $out ($(elapsed "$t_start") s): $(tr -d '\n ' <"$out/pair.json" | cut -c1-300)"
