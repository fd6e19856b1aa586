#!/usr/bin/env bash
# run-load-bench.sh [--quick] [--keep] [--work DIR] [--bin-dir DIR] [--source DIR] [--duration S]
#                   [--connections LIST] [--slow-connections N] [--attack-connections N]
#                   [--flood-connections N]
#
# The server load benchmark: heirloom-server against nginx, both over HTTPS on 127.0.0.1 with
# the same certificate, serving the SAME chunk files of one pushed image, loaded by wrk with the
# same random sequence of chunk paths; then each again while bench/tools/slowloris.py holds
# hundreds of connections that never finish their headers. Starts the demo directory (slapd),
# the server, nginx; builds (or reuses) the image; prints one JSON object per measurement on
# stdout and a human summary on stderr. Every process it starts is stopped at exit.
# See bench/README.md, "Server under load", for what the numbers mean.
#
#   --quick                 a smoke run: 3 s per measurement
#   --keep                  keep the whole run folder (server data, nginx and slapd folders);
#                           otherwise only results.jsonl and logs/ stay
#   --work DIR              work folder (default /var/tmp/heirloom-bench/load): image/ is the
#                           cached disk image (reused between runs), run/ is emptied at start
#   --bin-dir DIR           where heirloom-server and heirloom-admin are (default: the first of
#                           build/bin, build-bench/bin in the repository that has both)
#   --source DIR            the files on the image's disk (default /usr/share; the image is
#                           rebuilt when this changes)
#   --duration S            seconds per wrk measurement (default 15)
#   --connections LIST      comma-separated wrk connection counts (default 64,256)
#   --slow-connections N    slowloris connections (default 500)
#   --attack-connections N  wrk connections during the slowloris runs (default 64)
#   --flood-connections N   a second slowloris run with more connections than heirloom-server's
#                           max_connections (default 1100; 0: skip it)
# Exit status: 0 when every measurement ran, 1 when one failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

quick=0
keep=0
work=/var/tmp/heirloom-bench/load
source_tree=/usr/share
bin_dir=""
duration=""
connections="64,256"
slow_connections=500
flood_connections=1100
attack_connections=64
threads=2
while (($#)); do
    case "$1" in
    --quick) quick=1; shift ;;
    --keep) keep=1; shift ;;
    --work) work=${2:?}; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --source) source_tree=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --slow-connections) slow_connections=${2:?}; shift 2 ;;
    --attack-connections) attack_connections=${2:?}; shift 2 ;;
    --flood-connections) flood_connections=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "run-load-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -n $duration ]] || { ((quick)) && duration=3 || duration=15; }
warmup=$((quick ? 1 : 3))

bench_name=run-load-bench bench_tag=load-bench
# shellcheck source=lib/common.sh
source "$here/lib/common.sh"
lr() { python3 "$here/tools/load_report.py" "$@"; }

require_tools python3 wrk nginx openssl curl qemu-img mke2fs
d=$(find_bin_dir "$bin_dir" heirloom-server heirloom-admin) ||
    die "heirloom-server and heirloom-admin not found: build them (cmake --build BUILD --target heirloom-server heirloom-admin) and pass --bin-dir BUILD/bin"
server_bin=$d/heirloom-server admin_bin=$d/heirloom-admin

mkdir -p "$work"
work=$(cd "$work" && pwd)
cache=$work/image
run=$work/run
fresh_run "$run"
mkdir -p "$cache"
logs=$run/logs
results=$run/results.jsonl
failures=0
t_bench=$(date +%s)

# ---- cleanup: every process this script starts ---------------------------------------------
server_pid="" nginx_pid="" slow_pid="" wrk_pid="" sampler_pid="" watchdog_pid="" ldap_started=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $watchdog_pid ]] && kill "$watchdog_pid" 2>/dev/null
    for p in "$wrk_pid" "$sampler_pid" "$slow_pid" "$nginx_pid" "$server_pid"; do stop_pid "$p"; done
    ((ldap_started)) && stop_demo_directory "$run/ldap"
    rm -rf "$run/secrets"
    ((keep)) || prune_run "$run"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_watchdog "$run/pids"
watchdog_pid=$!

# ---- the image: a dynamic VHD of an ext4 file system holding the source folder, cached -------
image_key="1 $source_tree"
if [[ ! -f $cache/disk.vhd || "$(cat "$cache/.done" 2>/dev/null)" != "$image_key" ]]; then
    rm -f "$cache/disk.vhd" "$cache/.done"
    used_mib=$(du -sxm "$source_tree" | cut -f1)
    # ext4 needs room beyond the file data: inodes, directories, the journal, partial blocks.
    size_mib=$(((used_mib * 5 / 4 + 128 + 3) / 4 * 4))
    log "building the image: ext4 ($size_mib MiB) of $source_tree ($used_mib MiB used)"
    t=$(date +%s)
    rm -f "$cache/disk.raw"
    truncate -s "${size_mib}M" "$cache/disk.raw"
    mke2fs -q -F -t ext4 -b 4096 -L heirloom-bench -d "$source_tree" "$cache/disk.raw" \
        >"$logs/mke2fs.log" 2>&1 || die "mke2fs failed: $(tail -n 3 "$logs/mke2fs.log")"
    qemu-img convert -O vpc -o subformat=dynamic "$cache/disk.raw" "$cache/disk.vhd"
    rm -f "$cache/disk.raw"
    printf '{"source":"%s","source_used_mib":%s,"disk_mib":%s,"vhd_bytes":%s,"build_seconds":%s}\n' \
        "$source_tree" "$used_mib" "$size_mib" "$(stat -c %s "$cache/disk.vhd")" "$(($(date +%s) - t))" \
        >"$cache/image.json"
    echo "$image_key" >"$cache/.done"
else
    log "reusing the image $cache/disk.vhd"
fi

# ---- TLS: one self-signed certificate for 127.0.0.1, used by both servers --------------------
tls=$run/tls
mkdir -p "$tls"
cert=$tls/cert.pem key=$run/secrets/key.pem
make_certificate "$cert" "$key" >"$logs/openssl.log" 2>&1 ||
    die "openssl could not make a certificate: $(tail -n 3 "$logs/openssl.log")"

# ---- the directory (slapd) and heirloom-server ---------------------------------------------
ldap_port=$(free_port)
log "demo directory on ldap://127.0.0.1:$ldap_port"
ldap_started=1
pwfile=$run/secrets/ldap-password
start_demo_directory "$run/ldap" "$ldap_port" "$pwfile" >"$logs/ldap.log" 2>&1 ||
    die "the demo directory did not start: $(tail -n 5 "$logs/ldap.log")"

data=$run/server-data
hport=$(free_port)
hurl=https://127.0.0.1:$hport
serve_heirloom "$server_bin" "$hport" "$data" "$cert" "$key" "$ldap_port" "$pwfile" >"$logs/server.log" 2>&1 &
server_pid=$!
echo "$server_pid" >>"$run/pids"
why=$(wait_http "$hurl/v1/server" "$server_pid" "$cert") || die "heirloom-server $why (see $logs)"
log "heirloom-server on $hurl (pid $server_pid)"

# ---- push the image, assign it to finance, enrol an agent -----------------------------------
export HOME=$run/home
mkdir -p "$HOME"
admin() { "$admin_bin" "$@"; }
HEIRLOOM_PASSWORD=carol-pw admin login --server "$hurl" --user carol --ca-file "$cert" \
    >"$logs/admin-login.log" 2>&1 || die "heirloom-admin login failed: $(tail -n 3 "$logs/admin-login.log")"
log "pushing the image (pack + upload)"
t=$(now)
admin image push payroll "$cache/disk.vhd" --json >"$logs/push.out" 2>"$logs/push.err" ||
    die "heirloom-admin image push failed: $(tail -n 3 "$logs/push.err")"
push_seconds=$(since "$t" 1)
set_payroll_workspace admin >"$logs/workspace.log" 2>&1 ||
    die "workspace set failed: $(tail -n 3 "$logs/workspace.log")"
assign_payroll_to_finance admin >"$logs/assignment.log" 2>&1 ||
    die "assignment set failed: $(tail -n 3 "$logs/assignment.log")"

token=$run/secrets/agent-token
enrol_endpoint "$cert" "$hurl" alice alice-pw bench "$run/secrets" 2>"$logs/enrol.err" ||
    die "enrolment failed: $(tail -c 300 "$logs/enrol.err")"

repo_dir=$data/images/payroll/repo
[[ -d $repo_dir/chunks ]] || die "no chunks under $repo_dir after the push"
paths=$run/paths.txt
(cd "$repo_dir" && find chunks -type f -name '[0-9a-f]*' | LC_ALL=C sort) >"$paths"
chunk_stats=$(cd "$repo_dir" && python3 -c '
import json, os, statistics, sys
sizes = [os.path.getsize(p.strip()) for p in open(sys.argv[1]) if p.strip()]
print(json.dumps({"chunks": len(sizes), "bytes": sum(sizes), "mean_bytes": round(statistics.mean(sizes)),
                  "median_bytes": round(statistics.median(sizes)), "max_bytes": max(sizes)}))' "$paths")
log "image pushed in $push_seconds s: $chunk_stats"
# Both servers then read from the page cache: the measurement is of serving, not of the disk.
(cd "$repo_dir" && xargs -a "$paths" cat >/dev/null)

# ---- nginx on the same files ---------------------------------------------------------------
ngx=$run/nginx
mkdir -p "$ngx/tmp"
nport=$(free_port)
nurl=https://127.0.0.1:$nport
http_tuning=$(cat <<EOF
access_log $ngx/access.log combined buffer=256k flush=5s;
tcp_nodelay on;
keepalive_timeout 65s;
keepalive_requests 1000;
# The same request deadlines as heirloom-server's defaults (nginx's own are 60 s).
client_header_timeout 10s;
client_body_timeout 10s;
send_timeout 30s;
open_file_cache max=20000 inactive=60s;
open_file_cache_valid 60s;
ssl_session_timeout 1h;
EOF
)
nginx_conf "$ngx" "$nport" "$repo_dir" "$cert" "$key" \
    "worker_processes auto; worker_rlimit_nofile 16384; events { worker_connections 8192; }" \
    "$http_tuning" >"$ngx/nginx.conf"
serve_nginx "$ngx" >"$logs/nginx.log" 2>&1 &
nginx_pid=$!
echo "$nginx_pid" >>"$run/pids"
why=$(wait_http "$nurl/" "$nginx_pid" "$cert") || die "nginx $why (see $logs)"
log "nginx on $nurl (pid $nginx_pid), root $repo_dir"

# The same object from both servers must be the file itself.
probe=$(head -n 1 "$paths")
curl -sS --fail --cacert "$cert" -H "@$run/secrets/auth-header" -o "$run/probe-heirloom" \
    "$hurl/v1/images/payroll/repo/$probe" 2>"$logs/probe.err" || die "heirloom-server did not serve $probe: $(cat "$logs/probe.err")"
curl -sS --fail --cacert "$cert" -o "$run/probe-nginx" "$nurl/$probe" 2>>"$logs/probe.err" ||
    die "nginx did not serve $probe: $(cat "$logs/probe.err")"
if ! cmp -s "$run/probe-heirloom" "$repo_dir/$probe" || ! cmp -s "$run/probe-nginx" "$repo_dir/$probe"; then
    die "the servers' copies of $probe differ from the file"
fi
rm -f "$run/probe-heirloom" "$run/probe-nginx"

versions=$(rp versions wrk="wrk -v" nginx="nginx -v" openssl="openssl version" python3="python3 --version")
git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
rp record "$results" tool=bench scenario=setup quick="$quick" cpus="$(nproc)" wrk_threads="$threads" \
    duration_s="$duration" connections="$connections" slow_connections="$slow_connections" \
    attack_connections="$attack_connections" flood_connections="$flood_connections" push_seconds="$push_seconds" git="$git_rev" \
    image:="$(cat "$cache/image.json")" repo:="$chunk_stats" versions:="$versions"

# ---- measuring ------------------------------------------------------------------------------
lua=$here/tools/load.lua
server_pids() { # SERVER: the processes whose CPU and memory count for it
    if [[ $1 == heirloom ]]; then echo "$server_pid"; return; fi
    nginx_pids "$nginx_pid"
}
# wrk_run SERVER CONNECTIONS SECONDS LABEL [ATTACKER_PID]: runs wrk against SERVER, output in
# $wrk_out, while load_report.py samples the server's CPU, memory and threads into $sample_out.
wrk_run() {
    local server=$1 conns=$2 secs=$3 label=$4 attacker=${5:-0} url args=() pids rc=0
    if [[ $server == heirloom ]]; then
        url=$hurl
        args=("$paths" /v1/images/payroll/repo/ "$token")
    else
        url=$nurl
        args=("$paths" /)
    fi
    wrk_out=$logs/$label.wrk
    sample_out=$logs/$label.sample.json
    read -ra pids < <(server_pids "$server" | tr '\n' ' ')
    wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 5s --latency -s "$lua" "$url" -- "${args[@]}" \
        >"$wrk_out" 2>&1 &
    wrk_pid=$!
    lr sample "$sample_out" "$wrk_pid" "$attacker" $$ "${pids[@]}" &
    sampler_pid=$!
    wait "$wrk_pid" || rc=$?
    wrk_pid=""
    wait "$sampler_pid" || true
    sampler_pid=""
    return "$rc"
}
fail_record() { # SERVER SCENARIO CONNECTIONS MESSAGE
    failures=$((failures + 1))
    rp record "$results" tool="$1" scenario="$2" connections="$3" error="$4"
    log "$1 $2 ($3 connections): FAILED: $4"
}
record_wrk() { # SERVER SCENARIO CONNECTIONS [extra fields...]
    local server=$1 scenario=$2 conns=$3
    shift 3
    lr wrk "$results" "$wrk_out" "$sample_out" tool="$server" scenario="$scenario" connections="$conns" \
        threads="$threads" duration_s="$duration" "$@" ||
        fail_record "$server" "$scenario" "$conns" "wrk printed no result: $(tail -n 3 "$wrk_out" | tr '\n' ' ')"
}
check_alive() {
    kill -0 "$server_pid" 2>/dev/null || die "heirloom-server died (see $logs/server.log): $(tail -n 5 "$logs/server.log")"
    kill -0 "$nginx_pid" 2>/dev/null || die "nginx died (see $ngx/error.log)"
}

log "warming up both servers (${warmup} s each)"
for s in heirloom nginx; do
    wrk_run "$s" 64 "$warmup" "warmup-$s" || true
done

IFS=, read -ra conn_list <<<"$connections"
for c in "${conn_list[@]}"; do
    for s in heirloom nginx; do
        log "$s: $c connections, $duration s"
        if wrk_run "$s" "$c" "$duration" "load-$s-$c"; then
            record_wrk "$s" load "$c"
        else
            fail_record "$s" load "$c" "wrk failed: $(tail -n 3 "$wrk_out" | tr '\n' ' ')"
        fi
        check_alive
    done
done

# ---- slowloris during a wrk run -------------------------------------------------------------
# attack SERVER SCENARIO SLOW_CONNECTIONS: slowloris.py opens its connections, then wrk runs with
# $attack_connections connections while they trickle; both are recorded.
attack() {
    local s=$1 scenario=$2 slow=$3 port spath ready opened wrk_ok=1 _
    if [[ $s == heirloom ]]; then port=$hport spath=/v1/images/payroll/repo/$probe; else port=$nport spath=/$probe; fi
    ready=$run/$scenario-$s.ready
    log "$s: slowloris with $slow connections, then wrk with $attack_connections connections"
    python3 "$here/tools/slowloris.py" --port "$port" --tls --ca-file "$cert" \
        --connections "$slow" --seconds $((duration + 120)) --interval 3 --path "$spath" \
        --ready-file "$ready" >"$logs/$scenario-$s.json" 2>"$logs/$scenario-$s.err" &
    slow_pid=$!
    for _ in $(seq 1 900); do
        [[ -s $ready ]] && break
        kill -0 "$slow_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ ! -s $ready ]]; then
        stop_pid "$slow_pid"
        slow_pid=""
        fail_record "$s" "$scenario" "$attack_connections" "slowloris did not open its connections: $(tail -n 3 "$logs/$scenario-$s.err")"
        return
    fi
    opened=$(rp get "$ready" open)
    wrk_run "$s" "$attack_connections" "$duration" "$scenario-$s" "$slow_pid" || wrk_ok=0
    kill -TERM "$slow_pid" 2>/dev/null || true
    wait "$slow_pid" 2>/dev/null || true
    slow_pid=""
    if ((wrk_ok)); then
        record_wrk "$s" "$scenario" "$attack_connections" slow_connections="$slow" slow_connections_open="$opened"
    else
        fail_record "$s" "$scenario" "$attack_connections" "wrk failed: $(tail -n 3 "$wrk_out" | tr '\n' ' ')"
    fi
    if [[ -s $logs/$scenario-$s.json ]]; then
        rp record "$results" tool=slowloris scenario="$scenario" server="$s" \
            slowloris:="$(tail -n 1 "$logs/$scenario-$s.json")"
    else
        fail_record "$s" "$scenario" "$attack_connections" "slowloris printed no result: $(tail -n 3 "$logs/$scenario-$s.err")"
    fi
    check_alive
}
for s in heirloom nginx; do attack "$s" slowloris "$slow_connections"; done
if ((flood_connections > 0)); then
    for s in heirloom nginx; do attack "$s" slowloris-flood "$flood_connections"; done
fi

lr ratios "$results"
log "done in $(($(date +%s) - t_bench)) s; results in $results"
{
    echo "Server load benchmark: $(nproc) cores shared by wrk ($threads threads) and the server; HTTPS; ${duration} s per run"
    lr summary "$results" | sed 's/^/  /'
} >&2
((failures == 0))
