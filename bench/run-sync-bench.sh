#!/usr/bin/env bash
# run-sync-bench.sh [--size-gib 3] [--work DIR] [--bin-dir DIR] [--only LIST]
#                   [--raw-tools LIST | --no-raw] [--allow-unshuffled] [--keep]
#
# The sync benchmark: Heirloom against rdiff, casync and zsync on the SAME image pair in the
# SAME run. Builds (or reuses) the pair with make-image-pair.sh, serves files from nginx on
# 127.0.0.1 (stopped at exit), and prints one JSON object per tool and scenario on stdout, a
# human summary on stderr. See bench/README.md for what every number means.
#
#   --size-gib N        disk size of the pair (default 3; 1 for a quick run)
#   --work DIR          where the pair cache and the run's files go (default
#                       /var/tmp/heirloom-bench); the run folder is emptied at start
#   --bin-dir DIR       where heirloom-image and heirloom-bench-vhd-reorder are (default: the
#                       first of build/bin, build-bench/bin in the repository that has them)
#   --only LIST         comma-separated subset of heirloom,rdiff,casync,zsync
#   --raw-tools LIST    peers that also run on the raw images (default rdiff; casync doubles
#                       its long seeded extract, zsync is very slow on disks full of zero blocks)
#   --no-raw            same as --raw-tools ''
#   --allow-unshuffled  let make-image-pair.sh write v2.vhd in disk order when the reorder tool
#                       is not built (the results then say so)
#   --keep              keep the large outputs (extracted and exported images) in the run folder
# Exit status: 0 when every scenario ran and verified, 1 when any failed (all still run).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

size_gib=3
work=/var/tmp/heirloom-bench
bin_dir=""
only="heirloom,rdiff,casync,zsync"
raw_tools="rdiff"
allow_unshuffled=0
keep=0
while (($#)); do
    case "$1" in
    --size-gib) size_gib=${2:?}; shift 2 ;;
    --work) work=${2:?}; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --raw-tools) raw_tools=${2?}; shift 2 ;;
    --no-raw) raw_tools=""; shift ;;
    --allow-unshuffled) allow_unshuffled=1; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "run-sync-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

bench_name=run-sync-bench bench_tag=bench
# shellcheck source=lib/common.sh
source "$here/lib/common.sh"
enabled() { [[ ",$only," == *",$1,"* ]]; }
require_tools python3 qemu-img cmp /usr/bin/time

mkdir -p "$work"
work=$(cd "$work" && pwd)
pair=$work/pair-${size_gib}g
run=$work/run-${size_gib}g
rm -rf "$run"
mkdir -p "$run/www" "$run/logs"
results=$run/results.jsonl
failures=0
t_bench=$(date +%s)

# ---- programs -------------------------------------------------------------------------------
heirloom_image=""
if d=$(find_bin_dir "$bin_dir" heirloom-image); then heirloom_image=$d/heirloom-image; fi
reorder_dir=$(find_bin_dir "$bin_dir" heirloom-bench-vhd-reorder) || reorder_dir=""

# ---- the image pair and the ideals ------------------------------------------------------------
pair_args=()
((allow_unshuffled)) && pair_args+=(--allow-unshuffled)
t=$(now)
make_image_pair "$pair" "$size_gib" "$reorder_dir" "${pair_args[@]}"
pair_seconds=$(since "$t" 1)
virtual_size=$(rp get "$pair/pair.json" size_bytes)
v2_order=$(sed -n 's/.* v2=\([^ ]*\).*/\1/p' "$pair/.vhd-done")

tool_versions=$(rp versions rdiff="rdiff --version" casync="casync --version" zsync="zsync -V" \
    nginx="nginx -v" qemu-img="qemu-img --version")
rp record "$results" tool=bench scenario=setup size_gib="$size_gib" virtual_size="$virtual_size" \
    cpus="$(nproc)" v2_vhd_order="$v2_order" pair_seconds="$pair_seconds" \
    pair:="$(cat "$pair/pair.json")" versions:="$tool_versions"

log "ideal transfers (ideal.py)"
python3 "$here/ideal.py" "$pair/v2.raw" --seed-image "$pair/v1.raw" >"$run/ideal-update.json"
python3 "$here/ideal.py" "$pair/v1.raw" >"$run/ideal-first.json"
python3 "$here/ideal.py" "$pair/v2.raw" --seed-dir "$pair/v2-files" >"$run/ideal-trim.json"
ideal_update=$(rp get "$run/ideal-update.json" ideal_bytes)
ideal_first=$(rp get "$run/ideal-first.json" ideal_bytes)
ideal_trim=$(rp get "$run/ideal-trim.json" ideal_bytes)
izu=$(rp get "$run/ideal-update.json" ideal_zstd_bytes)
izf=$(rp get "$run/ideal-first.json" ideal_zstd_bytes)
izt=$(rp get "$run/ideal-trim.json" ideal_zstd_bytes)
for s in update first trim; do
    rp record "$results" tool=ideal scenario="$s" ideal_bytes="$(rp get "$run/ideal-$s.json" ideal_bytes)" \
        ideal_zstd_bytes="$(rp get "$run/ideal-$s.json" ideal_zstd_bytes)" \
        details:="$(cat "$run/ideal-$s.json")"
done
log "ideal: update $ideal_update B, first sync $ideal_first B, trim transfer $ideal_trim B"

# ---- nginx on 127.0.0.1 ---------------------------------------------------------------------
ngx=$run/nginx
nginx_pid=""
watchdog_pid=""
cleanup() {
    local rc=$?
    if [[ -n $watchdog_pid ]]; then kill "$watchdog_pid" 2>/dev/null || true; fi
    stop_pid "$nginx_pid"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_nginx: nginx serving $run/www over HTTP on a free port (in $port), the access log in the
# format 'bench' of report.py nginx; five ports are tried, in case another process takes one.
start_nginx() {
    local try why http_tuning
    require_tools nginx curl
    mkdir -p "$ngx/tmp"
    start_watchdog "$run/pids"
    watchdog_pid=$!
    http_tuning=$(cat <<EOF
log_format bench '\$msec \$request_method \$uri \$status \$body_bytes_sent \$bytes_sent \$request_length';
access_log $ngx/access.log bench;
keepalive_requests 1000000;
EOF
    )
    for try in 1 2 3 4 5; do
        port=$(free_port)
        nginx_conf "$ngx" "$port" "$run/www" "" "" "worker_processes 2; events { worker_connections 1024; }" \
            "$http_tuning" >"$ngx/nginx.conf"
        serve_nginx "$ngx" &
        nginx_pid=$!
        if why=$(wait_http "http://127.0.0.1:$port/" "$nginx_pid"); then
            echo "$nginx_pid" >>"$run/pids"
            log "nginx serving $run/www on http://127.0.0.1:$port/"
            return 0
        fi
        stop_pid "$nginx_pid"
        nginx_pid=""
        log "nginx did not start on port $port (try $try): $why; $(tail -n 2 "$ngx/error.log" 2>/dev/null)"
    done
    die "could not start nginx (see $ngx/error.log)"
}
start_nginx
alog=$ngx/access.log
base=http://127.0.0.1:$port

# ---- measuring --------------------------------------------------------------------------------
# measure LABEL CMD...: runs CMD with stdout/stderr to $run/logs/LABEL.{out,err}; sets m_secs
# (wall clock) and m_rss (peak RSS in KiB, /usr/bin/time %M); returns CMD's exit status.
m_secs=0
m_rss=0
measure() {
    local label=$1 rc=0
    shift
    /usr/bin/time -f '%e %M' -o "$run/logs/$label.time" "$@" >"$run/logs/$label.out" \
        2>"$run/logs/$label.err" || rc=$?
    read -r m_secs m_rss < <(tail -n 1 "$run/logs/$label.time")
    if ((rc != 0)); then
        log "$label failed (exit $rc): $(tail -n 3 "$run/logs/$label.err" | tr '\n' ' ')"
    fi
    return "$rc"
}
# Bytes nginx served since a mark (a line number of the access log).
log_mark() { rp lines "$alog"; }
log_since() {
    sleep 0.3 # nginx logs a request just after its last byte: let the line land
    rp nginx "$alog" "$1" "${2:-}"
}
fsize() { stat -c %s "$1"; }
fail_record() { # fail_record TOOL SCENARIO IMAGE MESSAGE
    failures=$((failures + 1))
    rp record "$results" tool="$1" scenario="$2" image="$3" size_gib="$size_gib" error="$4"
    log "$1 $2 ($3): FAILED: $4"
}
addf() { python3 -c 'import sys; print(round(sum(float(x) for x in sys.argv[1:]), 2))' "$@"; }
maxi() { python3 -c 'import sys; print(max(int(x) for x in sys.argv[1:]))' "$@"; }
tidy() { ((keep)) || rm -rf "$@"; }

# ---- Heirloom ---------------------------------------------------------------------------------
heirloom_sync_record() { # SCENARIO LABEL IDEAL [extra record args...]
    local scenario=$1 label=$2 ideal=$3 mark=$4
    shift 4
    local js=$run/logs/$label.json fetched manifest
    rp last-json "$run/logs/$label.out" >"$js" || {
        fail_record heirloom "$scenario" vhd "sync printed no JSON result"
        return 1
    }
    fetched=$(rp get "$js" bytes_fetched)
    manifest=$(rp get "$js" manifest_bytes)
    if ! [[ $fetched =~ ^[0-9]+$ && $manifest =~ ^[0-9]+$ ]]; then
        fail_record heirloom "$scenario" vhd "sync JSON lacks bytes_fetched/manifest_bytes: $(cut -c1-200 "$js")"
        return 1
    fi
    rp record "$results" tool=heirloom scenario="$scenario" image=vhd size_gib="$size_gib" \
        bytes_on_wire="$fetched" ideal_bytes="$ideal" seconds="$m_secs" peak_rss_kb="$m_rss" \
        payload_bytes="$((fetched - manifest))" manifest_bytes="$manifest" \
        nginx:="$(log_since "$mark" /repo/)" "$@" sync@="$js"
}

# Exports STORE to OUT and compares it with v2.vhd: sets exported_identical (true|false) and
# exported_secs, counts a failure when they differ, and leaves m_secs/m_rss as the sync's.
export_matches_v2() { # LABEL STORE OUT WHAT
    local label=$1 store_dir=$2 out=$3 what=$4 secs=$m_secs rss=$m_rss
    exported_identical=false
    if measure "$label" "$hi" export --store "$store_dir" --name bench --keys "$keys" --out "$out" &&
        qemu-img compare -q -f vpc -F vpc "$pair/v2.vhd" "$out"; then
        exported_identical=true
    else
        failures=$((failures + 1))
        log "heirloom: $what is NOT identical to v2.vhd"
    fi
    exported_secs=$m_secs
    m_secs=$secs m_rss=$rss
    tidy "$out"
}

run_heirloom() {
    local hi=$heirloom_image missing=() sub
    if [[ -z $hi ]]; then
        for sub in first-sync update trim-transfer; do
            fail_record heirloom "$sub" vhd "heirloom-image not found: build it (cmake -S $repo -B $repo/build-bench -G Ninja && ninja -C $repo/build-bench heirloom-image) or pass --bin-dir"
        done
        return
    fi
    for sub in pack sync export; do
        "$hi" "$sub" --help >/dev/null 2>&1 || missing+=("$sub")
    done
    if ((${#missing[@]})); then
        for sub in first-sync update trim-transfer; do
            fail_record heirloom "$sub" vhd "$hi has no subcommand(s): ${missing[*]} (not implemented yet)"
        done
        return
    fi
    local keys=$run/heirloom/keys repo_dir=$run/heirloom/repo store=$run/heirloom/store mark
    mkdir -p "$run/heirloom" "$repo_dir"
    ln -sfn "$repo_dir" "$run/www/repo"
    measure heirloom-keygen "$hi" keygen --out "$keys" || { fail_record heirloom setup vhd "keygen failed"; return; }

    local v
    for v in v1 v2; do
        log "heirloom: pack $v.vhd"
        if ! measure "heirloom-pack-$v" "$hi" pack "$pair/$v.vhd" --repo "$repo_dir" --name bench \
            --keys "$keys" --json; then
            fail_record heirloom "pack-$v" vhd "pack failed: $(tail -n 1 "$run/logs/heirloom-pack-$v.err")"
            return
        fi
        rp record "$results" tool=heirloom scenario="pack-$v" image=vhd size_gib="$size_gib" \
            seconds="$m_secs" peak_rss_kb="$m_rss" virtual_size="$virtual_size" \
            virtual_mb_per_s="$(python3 -c "print(round($virtual_size/1e6/max($m_secs,0.01),1))")" \
            repo_bytes="$(du -sb "$repo_dir" | cut -f1)" pack@="$run/logs/heirloom-pack-$v.out"

        if [[ $v == v1 ]]; then
            log "heirloom: first sync (to v1)"
            mark=$(log_mark)
            if measure heirloom-sync-first "$hi" sync --from "$base/repo" --name bench --store "$store" \
                --keys "$keys" --json; then
                heirloom_sync_record first-sync heirloom-sync-first "$ideal_first" "$mark" \
                    ideal_zstd_bytes="$izf" || true
            else
                fail_record heirloom first-sync vhd "sync failed: $(tail -n 1 "$run/logs/heirloom-sync-first.err")"
                return
            fi
        fi
    done

    log "heirloom: update sync (v1 -> v2)"
    mark=$(log_mark)
    if measure heirloom-sync-update "$hi" sync --from "$base/repo" --name bench --store "$store" \
        --keys "$keys" --json; then
        export_matches_v2 heirloom-export "$store" "$run/heirloom/export.vhd" "exported v2"
        heirloom_sync_record update heirloom-sync-update "$ideal_update" "$mark" ideal_zstd_bytes="$izu" \
            export_identical="$exported_identical" export_seconds="$exported_secs" || true
    else
        fail_record heirloom update vhd "sync failed: $(tail -n 1 "$run/logs/heirloom-sync-update.err")"
    fi

    log "heirloom: trim transfer (fresh store, seed folder v2-files, straight to v2)"
    mark=$(log_mark)
    if measure heirloom-sync-trim "$hi" sync --from "$base/repo" --name bench --store "$store-trim" \
        --keys "$keys" --json --seed "$pair/v2-files"; then
        export_matches_v2 heirloom-export-trim "$store-trim" "$run/heirloom/export-trim.vhd" \
            "trim-transfer export"
        heirloom_sync_record trim-transfer heirloom-sync-trim "$ideal_trim" "$mark" ideal_zstd_bytes="$izt" \
            export_identical="$exported_identical" || true
    else
        fail_record heirloom trim-transfer vhd "sync failed: $(tail -n 1 "$run/logs/heirloom-sync-trim.err")"
    fi
}

# ---- rdiff (librsync) ---------------------------------------------------------------------------
run_rdiff() { # EXT (vhd|raw)
    local ext=$1 d=$run/rdiff-$1 s1 r1 s2 r2 s3 r3 identical=false
    mkdir -p "$d"
    log "rdiff ($ext): signature, delta, patch"
    measure "rdiff-$ext-signature" rdiff signature "$pair/v1.$ext" "$d/v1.sig" ||
        { fail_record rdiff update "$ext" "rdiff signature failed"; return; }
    s1=$m_secs r1=$m_rss
    measure "rdiff-$ext-delta" rdiff delta "$d/v1.sig" "$pair/v2.$ext" "$d/v2.delta" ||
        { fail_record rdiff update "$ext" "rdiff delta failed"; return; }
    s2=$m_secs r2=$m_rss
    measure "rdiff-$ext-patch" rdiff patch "$pair/v1.$ext" "$d/v2.delta" "$d/v2.out" ||
        { fail_record rdiff update "$ext" "rdiff patch failed"; return; }
    s3=$m_secs r3=$m_rss
    cmp -s "$d/v2.out" "$pair/v2.$ext" && identical=true || failures=$((failures + 1))
    rp record "$results" tool=rdiff scenario=update image="$ext" size_gib="$size_gib" \
        bytes_on_wire="$(fsize "$d/v2.delta")" ideal_bytes="$ideal_update" ideal_zstd_bytes="$izu" \
        seconds="$(addf "$s1" "$s2" "$s3")" peak_rss_kb="$(maxi "$r1" "$r2" "$r3")" \
        signature_bytes="$(fsize "$d/v1.sig")" \
        two_way_bytes="$(($(fsize "$d/v1.sig") + $(fsize "$d/v2.delta")))" \
        signature_seconds="$s1" delta_seconds="$s2" patch_seconds="$s3" \
        signature_rss_kb="$r1" delta_rss_kb="$r2" patch_rss_kb="$r3" output_identical="$identical" \
        settings="rdiff defaults (librsync recommended block size, BLAKE2 strong sums); not compressed"
    tidy "$d/v2.out"
}

# ---- casync -------------------------------------------------------------------------------------
run_casync() { # EXT
    local ext=$1 d=$run/casync-$1 s1 r1 s2 r2 new mark identical=false measured=""
    mkdir -p "$d"
    log "casync ($ext): make v1 and v2 stores"
    measure "casync-$ext-make-v1" casync make --store="$d/store1" "$d/v1.caibx" "$pair/v1.$ext" ||
        { fail_record casync update "$ext" "casync make v1 failed"; return; }
    s1=$m_secs r1=$m_rss
    measure "casync-$ext-make-v2" casync make --store="$d/store2" "$d/v2.caibx" "$pair/v2.$ext" ||
        { fail_record casync update "$ext" "casync make v2 failed"; return; }
    s2=$m_secs r2=$m_rss
    new=$(rp casync-new-chunks "$d/store1" "$d/store2")
    local computed
    computed=$(($(fsize "$d/v2.caibx") + $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bytes"])' "$new")))

    log "casync ($ext): extract v2 over HTTP with v1 as seed"
    mkdir -p "$run/www/casync-$ext"
    ln -sfn "$d/store2" "$run/www/casync-$ext/store"
    ln -sfn "$d/v2.caibx" "$run/www/casync-$ext/v2.caibx"
    mark=$(log_mark)
    if measure "casync-$ext-extract" casync extract --seed="$pair/v1.$ext" \
        --store="$base/casync-$ext/store/" "$base/casync-$ext/v2.caibx" "$d/v2.out"; then
        measured=$(log_since "$mark" "/casync-$ext/")
        cmp -s "$d/v2.out" "$pair/v2.$ext" && identical=true || failures=$((failures + 1))
    fi
    if [[ -n $measured ]]; then
        rp record "$results" tool=casync scenario=update image="$ext" size_gib="$size_gib" \
            bytes_on_wire="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["body_bytes"])' "$measured")" \
            ideal_bytes="$ideal_update" ideal_zstd_bytes="$izu" seconds="$m_secs" peak_rss_kb="$m_rss" \
            bytes_on_wire_source=nginx computed_bytes="$computed" index_bytes="$(fsize "$d/v2.caibx")" \
            new_chunks:="$new" nginx:="$measured" output_identical="$identical" \
            make_v1_seconds="$s1" make_v2_seconds="$s2" make_rss_kb="$(maxi "$r1" "$r2")" \
            settings="casync defaults (64 KiB average chunks, zstd); extract --seed=v1 over HTTP"
    else
        failures=$((failures + 1))
        rp record "$results" tool=casync scenario=update image="$ext" size_gib="$size_gib" \
            bytes_on_wire="$computed" ideal_bytes="$ideal_update" ideal_zstd_bytes="$izu" seconds="$(addf "$s1" "$s2")" \
            peak_rss_kb="$(maxi "$r1" "$r2")" bytes_on_wire_source=computed \
            index_bytes="$(fsize "$d/v2.caibx")" new_chunks:="$new" \
            extract_error="$(tail -n 2 "$run/logs/casync-$ext-extract.err" | tr '\n' ' ')" \
            settings="casync defaults (64 KiB average chunks, zstd); v2 index + chunks not in v1's store"
    fi
    # The stores stay until the next run empties the run folder: deleting thousands of chunk
    # files is slow on some disks and is no part of what we measure.
    tidy "$d/v2.out"
}

# ---- zsync --------------------------------------------------------------------------------------
run_zsync() { # EXT
    local ext=$1 d=$run/zsync-$1 s1 r1 mark measured identical=false
    mkdir -p "$d" "$run/www/zsync-$ext"
    ln -sfn "$pair/v2.$ext" "$run/www/zsync-$ext/v2.$ext"
    log "zsync ($ext): zsyncmake, then zsync with v1 as seed"
    measure "zsync-$ext-make" zsyncmake -o "$run/www/zsync-$ext/v2.$ext.zsync" \
        -u "$base/zsync-$ext/v2.$ext" "$pair/v2.$ext" ||
        { fail_record zsync update "$ext" "zsyncmake failed"; return; }
    s1=$m_secs r1=$m_rss
    mark=$(log_mark)
    if ! (cd "$d" && measure "zsync-$ext-sync" zsync -q -i "$pair/v1.$ext" -o "$d/v2.out" \
        "$base/zsync-$ext/v2.$ext.zsync"); then
        fail_record zsync update "$ext" "zsync failed: $(tail -n 1 "$run/logs/zsync-$ext-sync.err")"
        return
    fi
    read -r m_secs m_rss < <(tail -n 1 "$run/logs/zsync-$ext-sync.time")
    measured=$(log_since "$mark" "/zsync-$ext/")
    cmp -s "$d/v2.out" "$pair/v2.$ext" && identical=true || failures=$((failures + 1))
    rp record "$results" tool=zsync scenario=update image="$ext" size_gib="$size_gib" \
        bytes_on_wire="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["body_bytes"])' "$measured")" \
        ideal_bytes="$ideal_update" ideal_zstd_bytes="$izu" seconds="$m_secs" peak_rss_kb="$m_rss" \
        bytes_on_wire_source=nginx zsync_file_bytes="$(fsize "$run/www/zsync-$ext/v2.$ext.zsync")" \
        nginx:="$measured" output_identical="$identical" make_seconds="$s1" make_rss_kb="$r1" \
        settings="zsync defaults; bytes include the .zsync control file and multipart range overhead"
    tidy "$d/v2.out"
}

# ---- run ----------------------------------------------------------------------------------------
if enabled heirloom; then run_heirloom; fi
for ext in vhd raw; do
    for tool in rdiff casync zsync; do
        enabled "$tool" || continue
        [[ $ext == vhd || ",$raw_tools," == *",$tool,"* ]] || continue
        if command -v "$tool" >/dev/null; then
            "run_$tool" "$ext"
        else
            fail_record "$tool" update "$ext" "$tool is not installed"
        fi
    done
done

log "done in $(($(date +%s) - t_bench)) s; results in $results"
{
    echo "Sync benchmark, ${size_gib} GiB disk ($virtual_size bytes), v2.vhd block order: $v2_order"
    rp summary "$results" | sed 's/^/  /'
} >&2
((failures == 0))
