#!/usr/bin/env bash
# run-agent-bench.sh [--size-gib N] [--runs N] [--same-priority] [--work DIR] [--pair-cache DIR]
#                    [--bin-dir DIR] [--keep]
#
# The agent sync benchmark: heirloom-agent syncing an image through heirloom-server (HTTPS, agent
# token, policy and key), next to `heirloom-image sync` of the SAME repository straight from
# nginx (HTTPS, same certificate) and from heirloom-server, in the SAME run: first syncs to v1,
# then updates to v2. Starts the demo directory (slapd), the server, the agent (in a private
# HOME) and nginx; prints one JSON object per measurement on stdout and a human summary on
# stderr. Every process it starts is stopped at exit (a watchdog does it if it is killed).
# See bench/README.md, "Agent sync through the server", for what the numbers mean.
#
#   --size-gib N       disk size of the image pair (default 1)
#   --runs N           measurements of each tool and scenario (default 5; the ratios use the
#                      medians); each run takes the tools in a different order
#   --same-priority    run heirloom-image at the agent's priority (nice 10, idle I/O class)
#                      instead of the normal one
#   --work DIR         work folder (default /var/tmp/heirloom-bench/agent); its run/ is emptied
#                      at start
#   --pair-cache DIR   where make-image-pair.sh keeps pair-<N>g/ (default /var/tmp/heirloom-bench,
#                      shared with run-sync-bench.sh)
#   --bin-dir DIR      heirloom-server, heirloom-admin, heirloom-image, heirloom-agent, heirloom
#                      (default build/bin of this repository; copied into the run folder at
#                      start, so a rebuild during the run does not change them)
#   --keep             keep the whole run folder (server data, stores, agent home); otherwise only
#                      run/results.jsonl and run/logs/ stay
# Exit status: 0 when every step ran and the stores exported identical to the VHDs; 1 when a
# step failed (the message names it and shows the tail of its log); 2 for bad usage.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

size_gib=1
work=/var/tmp/heirloom-bench/agent
pair_cache=/var/tmp/heirloom-bench
bin_dir=$repo/build/bin
keep=0
runs=5
same_priority=0
while (($#)); do
    case "$1" in
    --size-gib) size_gib=${2:?}; shift 2 ;;
    --work) work=${2:?}; shift 2 ;;
    --pair-cache) pair_cache=${2:?}; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    --runs) runs=${2:?}; shift 2 ;;
    --same-priority) same_priority=1; shift ;;
    -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "run-agent-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $size_gib =~ ^[1-9][0-9]*$ ]] || { echo "run-agent-bench: --size-gib takes a whole number of GiB" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run-agent-bench: --runs takes a whole number" >&2; exit 2; }

# Passwords reach heirloom-admin and heirloom only through HEIRLOOM_PASSWORD set for that one
# command; no other process (the agent daemon above all) inherits one from the caller.
unset HEIRLOOM_PASSWORD
workspace_id=payroll-ws
image=payroll
sync_workers=8 # the agent's setting and heirloom-image's --workers: raw speed, both the same
# The agent syncs at nice 10 in the idle I/O class; heirloom-image runs normally unless asked.
direct_prefix=() direct_priority=normal
if ((same_priority)); then
    direct_prefix=(nice -n 10 ionice -c 3) direct_priority=nice10-idle-io
fi

bench_name=run-agent-bench bench_tag=agent-bench
# shellcheck source=lib/common.sh
source "$here/lib/common.sh"
ar() { python3 "$here/tools/agent_report.py" "$@"; }

require_tools python3 nginx openssl curl qemu-img awk timeout ionice /usr/bin/time

mkdir -p "$work" "$pair_cache"
work=$(cd "$work" && pwd)
pair_cache=$(cd "$pair_cache" && pwd)
pair=$pair_cache/pair-${size_gib}g
run=$work/run
fresh_run "$run"
mkdir -p "$run/bin"
logs=$run/logs
results=$run/results.jsonl
secrets=$run/secrets
t_bench=$(date +%s)

# ---- failing: which step, and the tail of its log ---------------------------------------------
# fail_step STEP LOG WHY [LOG2]: prints the step, why, the tail of LOG (and LOG2), records
# {"tool":"bench","scenario":"failed",...} and exits 1.
fail_step() {
    local step=$1 file=$2 why=$3 extra=${4:-} f
    {
        echo "run-agent-bench: step '$step' failed: $why"
        for f in "$file" "$extra"; do
            [[ -n $f ]] || continue
            echo "  last lines of $f:"
            tail -n 20 "$f" 2>/dev/null | sed 's/^/  | /'
        done
    } >&2
    rp record "$results" tool=bench scenario=failed step="$step" error="$why" log="$file" || true
    exit 1
}
# step NAME LOG CMD...: runs CMD with stdout and stderr to LOG; stops the bench if it fails.
step() {
    local name=$1 file=$2 rc=0
    shift 2
    "$@" >"$file" 2>&1 </dev/null || rc=$?
    ((rc == 0)) || fail_step "$name" "$file" "exit status $rc"
}

# ---- cleanup: every process this script starts ----------------------------------------------
server_pid="" nginx_pid="" agent_pid="" watchdog_pid="" child_pid="" sampler_pid="" ldap_started=0
# The agent gets SIGTERM and up to 15 s (it gives a running round 5 s); its exit status is kept.
agent_exit=""
stop_agent() {
    local _ rc=0
    [[ -n $agent_pid ]] || return 0
    kill -TERM "$agent_pid" 2>/dev/null || { agent_pid=""; return 0; }
    for _ in $(seq 1 150); do
        kill -0 "$agent_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$agent_pid" 2>/dev/null; then
        kill -KILL "$agent_pid" 2>/dev/null || true
        agent_exit=killed
    fi
    wait "$agent_pid" 2>/dev/null || rc=$?
    [[ -n $agent_exit ]] || agent_exit=$rc
    agent_pid=""
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM ERR
    set +e # stop everything, whatever fails on the way
    [[ -n $watchdog_pid ]] && kill "$watchdog_pid" 2>/dev/null
    # A measurement cut short: its timeout (and the sync it runs) and the sampler.
    [[ -n $child_pid ]] && { pkill -TERM -P "$child_pid" 2>/dev/null; stop_pid "$child_pid"; }
    stop_pid "$sampler_pid"
    stop_agent
    for p in "$nginx_pid" "$server_pid"; do stop_pid "$p"; done
    ((ldap_started)) && stop_demo_directory "$run/ldap"
    rm -rf "$secrets" "$run/trash"
    ((keep)) || prune_run "$run"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Any other command that fails stops the bench (set -e): say which.
trap 'echo "run-agent-bench: unexpected failure (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
start_watchdog "$run/pids"
watchdog_pid=$!

# ---- programs: a private copy, so a rebuild during the run cannot change them -----------------
programs=(heirloom-server heirloom-admin heirloom-image heirloom-agent heirloom)
for p in "${programs[@]}"; do
    [[ -x $bin_dir/$p ]] || die "$bin_dir/$p is missing: build it (cmake --build BUILD --target $p) or pass --bin-dir"
    cp "$bin_dir/$p" "$run/bin/$p"
    "$run/bin/$p" --help >/dev/null 2>&1 || die "$bin_dir/$p does not run ($run/bin/$p --help failed)"
done
bin=$run/bin
binaries=$(cd "$bin_dir" && python3 -c '
import json, os, sys, time
print(json.dumps({p: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(p))) for p in sys.argv[1:]}))' "${programs[@]}")

# ---- the image pair (make-image-pair.sh, cached like run-sync-bench.sh's) ---------------------
log "image pair $pair (made once by make-image-pair.sh, then reused)"
t=$(now)
step "image pair (make-image-pair.sh)" "$logs/pair.log" make_image_pair "$pair" "$size_gib" "$bin_dir"
pair_seconds=$(since "$t")

# ---- TLS: one self-signed certificate for 127.0.0.1, used by heirloom-server and nginx --------
tls=$run/tls
mkdir -p "$tls"
cert=$tls/cert.pem key=$secrets/key.pem
step "TLS certificate (openssl)" "$logs/openssl.log" make_certificate "$cert" "$key"

# ---- the directory (slapd) and heirloom-server ----------------------------------------------
ldap_port=$(free_port)
log "demo directory on ldap://127.0.0.1:$ldap_port"
ldap_started=1
pwfile=$secrets/ldap-password
step "demo directory (installer/demo-directory.sh)" "$logs/ldap.log" \
    start_demo_directory "$run/ldap" "$ldap_port" "$pwfile"

data=$run/server-data
hport=$(free_port)
hurl=https://127.0.0.1:$hport
serve_heirloom "$bin/heirloom-server" "$hport" "$data" "$cert" "$key" "$ldap_port" "$pwfile" \
    </dev/null >"$logs/server.log" 2>&1 &
server_pid=$!
echo "$server_pid" >>"$run/pids"
why=$(wait_http "$hurl/v1/server" "$server_pid" "$cert") ||
    fail_step "start heirloom-server" "$logs/server.log" "heirloom-server $why"
log "heirloom-server on $hurl (pid $server_pid)"
check_server() {
    kill -0 "$server_pid" 2>/dev/null || fail_step "$1" "$logs/server.log" "heirloom-server died"
}

# ---- the admin (carol, in her own HOME): push v1, the workspace ------------------------------
admin_home=$run/admin-home
mkdir -p "$admin_home"
admin() { env -u XDG_CONFIG_HOME -u XDG_CACHE_HOME HOME="$admin_home" "$bin/heirloom-admin" "$@"; }
HEIRLOOM_PASSWORD=carol-pw step "heirloom-admin login (carol)" "$logs/admin-login.log" \
    admin login --server "$hurl" --user carol --ca-file "$cert"

# push VERSION FILE: heirloom-admin image push, timed and recorded.
push() {
    local v=$1 file=$2 t secs
    log "pushing $(basename "$file") as $image v$v (pack + upload)"
    t=$(now)
    admin image push "$image" "$file" --json </dev/null >"$logs/push-v$v.out" 2>"$logs/push-v$v.err" ||
        fail_step "heirloom-admin image push $image v$v" "$logs/push-v$v.err" "exit status $?" "$logs/server.log"
    secs=$(since "$t")
    rp record "$results" tool=admin scenario="push-v$v" version="$v" seconds="$secs" \
        repo_bytes="$(du -sb "$data/images/$image/repo" | cut -f1)" push@="$logs/push-v$v.out"
    log "pushed v$v in $secs s"
}
push 1 "$pair/v1.vhd"
repo_dir=$data/images/$image/repo
[[ -d $repo_dir/chunks && -f $repo_dir/images/$image/latest ]] ||
    fail_step "image repository after the push" "$logs/server.log" "no chunks or latest pointer under $repo_dir"
set_payroll_workspace admin >"$logs/workspace.log" 2>&1 ||
    fail_step "heirloom-admin workspace set $workspace_id" "$logs/workspace.log" "exit status $?"

git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=false
[[ -z $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]] || git_dirty=true
versions=$(rp versions nginx="nginx -v" openssl="openssl version" curl="curl --version")
rp record "$results" tool=bench scenario=setup size_gib="$size_gib" cpus="$(nproc)" runs="$runs" \
    sync_workers="$sync_workers" direct_priority="$direct_priority" agent_priority=nice10-idle-io \
    git="$git_rev" git_dirty="$git_dirty" pair_seconds="$pair_seconds" \
    v1_vhd_bytes="$(stat -c %s "$pair/v1.vhd")" v2_vhd_bytes="$(stat -c %s "$pair/v2.vhd")" \
    loadavg="$(cut -d' ' -f1-3 /proc/loadavg)" pair:="$(cat "$pair/pair.json")" \
    binaries:="$binaries" versions:="$versions"

# ---- the agent: a private HOME, its own runtime folder, settings for raw speed ----------------
agent_home=$run/agent-home
agent_rt=$run/agent-runtime
mkdir -p "$agent_home/.config/heirloom" "$agent_rt"
chmod 700 "$agent_home" "$agent_rt"
sock=$agent_rt/heirloom/agent.sock
((${#sock} < 100)) || die "the agent's socket path $sock is too long for a Unix socket: use a shorter --work"
# A long policy_refresh_seconds: no timed round syncs anything between the measurements; every
# sync measured is one that `heirloom sync --now` asked for.
printf '{"sync_workers": %d, "policy_refresh_seconds": 86400}\n' "$sync_workers" \
    >"$agent_home/.config/heirloom/agent.json"
agent_env=(env -u XDG_DATA_HOME -u XDG_CONFIG_HOME -u HEIRLOOM_STATE_DIR -u HEIRLOOM_RUNTIME_DIR
    HOME="$agent_home" XDG_RUNTIME_DIR="$agent_rt")
agent_store=$agent_home/.local/share/heirloom/images/$image
sync_timeout=$((600 + 300 * size_gib))

"${agent_env[@]}" "$bin/heirloom-agent" </dev/null >"$logs/agent.log" 2>&1 &
agent_pid=$!
echo "$agent_pid" >>"$run/pids"
for _ in $(seq 1 150); do
    "${agent_env[@]}" "$bin/heirloom" status --json </dev/null >"$logs/agent-status-start.json" 2>&1 && break
    kill -0 "$agent_pid" 2>/dev/null || fail_step "start heirloom-agent" "$logs/agent.log" "heirloom-agent exited during startup"
    sleep 0.2
done
"${agent_env[@]}" "$bin/heirloom" status --json </dev/null >"$logs/agent-status-start.json" 2>&1 ||
    fail_step "start heirloom-agent" "$logs/agent-status-start.json" "heirloom status did not answer within 30 s" "$logs/agent.log"
log "heirloom-agent running (pid $agent_pid, HOME $agent_home)"

check_agent() {
    kill -0 "$agent_pid" 2>/dev/null || fail_step "$1" "$logs/agent.log" "heirloom-agent died"
}

# The user logs in before the assignment exists: the round that login starts finds no
# workspace, so the first sync measured below is the whole transfer of v1 and nothing else.
HEIRLOOM_PASSWORD=alice-pw step "heirloom login (alice)" "$logs/agent-login.log" \
    timeout 120 "${agent_env[@]}" "$bin/heirloom" login --server "$hurl" --user alice \
    --ca-file "$cert" --hostname bench-agent
# heirloom ARGS...: the agent's command line, in the agent's environment.
hl=("${agent_env[@]}" "$bin/heirloom")
# Lets the round that login started finish (and one more): nothing runs when the clock starts.
step "heirloom sync --now --wait before the assignment" "$logs/agent-settle.json" \
    timeout 300 "${hl[@]}" sync --now --wait --json
ar check-enrolled "$logs/agent-settle.json" 0 >"$logs/agent-settle.check" 2>&1 ||
    fail_step "agent enrolled, policy fetched, no workspace yet" "$logs/agent-settle.check" \
        "unexpected agent status" "$logs/agent.log"
check_agent "heirloom login (alice)"
log "alice logged in; the agent holds her policy (no workspace yet)"

assign_payroll_to_finance admin >"$logs/assignment.log" 2>&1 ||
    fail_step "heirloom-admin assignment set fin" "$logs/assignment.log" "exit status $?"

# ---- the image key and the server's signing key, for heirloom-image -------------------------
# A second endpoint enrolled for alice: its token fetches the key the way the agent does
# (GET /v1/agent/images/NAME/key) and lets heirloom-image sync from the server too. Secrets go
# through mode-600 files (enrol_endpoint, curl -H @file), never the command line.
token=$secrets/agent-token
enrol_endpoint "$cert" "$hurl" alice alice-pw bench-direct "$secrets" >"$logs/enrol.log" 2>&1 ||
    fail_step "enrol a second endpoint for heirloom-image (POST /v1/enrol)" "$logs/enrol.log" "enrolment failed"
(
    umask 077
    curl -sS --fail-with-body --cacert "$cert" -H "@$secrets/auth-header" \
        -o "$secrets/image-key.json" "$hurl/v1/agent/images/$image/key" &&
        curl -sS --fail-with-body --cacert "$cert" -o "$run/server-info.json" "$hurl/v1/server"
) >"$logs/keys.log" 2>&1 || fail_step "image key and signing key (GET /v1/agent/images/$image/key, /v1/server)" "$logs/keys.log" "curl failed"
keys=$secrets/keys
python3 - "$secrets/image-key.json" "$run/server-info.json" "$keys" <<'PY' >>"$logs/keys.log" 2>&1 ||
import json, os, sys
secret = json.load(open(sys.argv[1]))["family_secret"]
public = json.load(open(sys.argv[2]))["signing_public_key"]
os.makedirs(sys.argv[3], mode=0o700)
for name, text, mode in (("family.key", secret, 0o600), ("signing.pub", public, 0o644)):
    fd = os.open(os.path.join(sys.argv[3], name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, (text + "\n").encode())
    os.close(fd)
PY
    fail_step "write the keys folder for heirloom-image" "$logs/keys.log" "bad key answers"
rm -f "$secrets/image-key.json"

# ---- nginx on the server's repository folder, same certificate ------------------------------
ngx=$run/nginx
mkdir -p "$ngx/tmp"
nport=$(free_port)
nurl=https://127.0.0.1:$nport
alog=$ngx/access.log
# No open_file_cache: it would serve the replaced latest pointer for up to a minute.
http_tuning=$(cat <<NGX
log_format bench '\$msec \$request_method \$uri \$status \$body_bytes_sent \$bytes_sent \$request_length';
access_log $alog bench;
tcp_nodelay on;
keepalive_timeout 65s;
keepalive_requests 100000;
NGX
)
nginx_conf "$ngx" "$nport" "$repo_dir" "$cert" "$key" \
    "worker_processes auto; events { worker_connections 1024; }" "$http_tuning" >"$ngx/nginx.conf"
serve_nginx "$ngx" </dev/null >"$logs/nginx.log" 2>&1 &
nginx_pid=$!
echo "$nginx_pid" >>"$run/pids"
why=$(wait_http "$nurl/" "$nginx_pid" "$cert") || fail_step "start nginx" "$ngx/error.log" "nginx $why"
curl -sS --fail --cacert "$cert" -o "$run/latest-nginx" "$nurl/images/$image/latest" 2>"$logs/probe.err" ||
    fail_step "nginx serves the repository" "$logs/probe.err" "GET /images/$image/latest failed" "$ngx/error.log"
cmp -s "$run/latest-nginx" "$repo_dir/images/$image/latest" ||
    fail_step "nginx serves the repository" "$logs/probe.err" "nginx's latest pointer differs from the file"
log "nginx on $nurl (pid $nginx_pid), root $repo_dir"

# ---- measuring ------------------------------------------------------------------------------
# timed LABEL CMD...: runs CMD (stdout and stderr to logs/LABEL.out and .err) while
# agent_report.py samples the CPU used outside this benchmark (logs/LABEL.sample.json); sets
# m_secs (wall clock around CMD) and m_rc (its exit status).
timed() {
    local label=$1 t
    shift
    m_rc=0
    t=$(now)
    "$@" </dev/null >"$logs/$label.out" 2>"$logs/$label.err" &
    child_pid=$!
    ar sample "$logs/$label.sample.json" "$child_pid" $$ &
    sampler_pid=$!
    wait "$child_pid" || m_rc=$?
    m_secs=$(since "$t")
    child_pid=""
    wait "$sampler_pid" || true
    sampler_pid=""
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
# Stores measured before are moved aside, not deleted, until the end of the bench: ext4 skips
# inodes deleted in the last minutes when it allocates new ones (recently_deleted), and a sync
# creating thousands of files next to thousands just deleted spent up to 1 s more CPU in the
# kernel doing so (perf), which made the runs after the first slower.
trash=$run/trash
trash_n=0
discard() { # STORE
    [[ -e $1 ]] || return 0
    mkdir -p "$trash"
    trash_n=$((trash_n + 1))
    mv "$1" "$trash/$trash_n"
}
# restore SNAPSHOT STORE: STORE becomes a copy of SNAPSHOT, on disk before the next measurement.
restore() {
    discard "$2"
    cp -a "$1" "$2"
    sync -f "$2"
}

# agent_sync SCENARIO VERSION RUN: `heirloom sync --now --wait --json`; the workspace must then be
# ready at VERSION. bytes = the workspace's bytes_network (what that sync took from the server).
agent_sync() {
    local scenario=$1 version=$2 n=$3 label=agent-$1-$3 c0 s0
    log "agent: $scenario (heirloom sync --now --wait) to v$version, run $n"
    c0=$(ar cpu "$agent_pid")
    s0=$(ar cpu "$server_pid")
    timed "$label" timeout "$sync_timeout" "${hl[@]}" sync --now --wait --json
    ((m_rc == 0)) || fail_step "agent $scenario run $n (heirloom sync --now --wait)" "$logs/$label.err" \
        "exit status $m_rc" "$logs/agent.log"
    c0=$(minus "$(ar cpu "$agent_pid")" "$c0")
    s0=$(minus "$(ar cpu "$server_pid")" "$s0")
    check_agent "agent $scenario run $n"
    check_server "agent $scenario run $n"
    ar workspace "$logs/$label.out" "$workspace_id" >"$logs/$label.workspace.json" 2>"$logs/$label.check" ||
        fail_step "agent $scenario run $n: the status" "$logs/$label.check" "no workspace $workspace_id" "$logs/agent.log"
    ar check-workspace "$logs/$label.workspace.json" "$version" 2>"$logs/$label.check" ||
        fail_step "agent $scenario run $n: the workspace after the sync" "$logs/$label.check" \
            "not ready at v$version" "$logs/agent.log"
    rp record "$results" tool=agent scenario="$scenario" version="$version" run="$n" runs="$runs" \
        seconds="$m_secs" bytes="$(rp get "$logs/$label.workspace.json" bytes_network)" \
        bytes_seeds="$(rp get "$logs/$label.workspace.json" bytes_seeds)" \
        client_cpu_seconds="$c0" server_cpu_seconds="$s0" \
        other_cpu_seconds="$(rp get "$logs/$label.sample.json" other_cpu_seconds)" \
        loadavg="$(rp get "$logs/$label.sample.json" loadavg)" \
        agent_peak_rss_kb="$(ar peak-rss "$agent_pid")" workers="$sync_workers" priority=nice10-idle-io \
        workspace@="$logs/$label.workspace.json"
}

# direct_sync TOOL SCENARIO VERSION RUN STORE FROM [ARGS...]: heirloom-image sync --json
# (/usr/bin/time for its CPU and peak memory); bytes = its bytes_fetched.
direct_sync() {
    local tool=$1 scenario=$2 version=$3 n=$4 store=$5 from=$6 label=$1-$2-$4 s0 mark=0 cross=null
    local pids user sys rss
    shift 6
    log "$tool: $scenario (heirloom-image sync) to v$version, run $n"
    if [[ $tool == direct-nginx ]]; then
        mapfile -t pids < <(nginx_pids "$nginx_pid")
        mark=$(rp lines "$alog")
    else
        pids=("$server_pid")
    fi
    s0=$(ar cpu "${pids[@]}")
    timed "$label" /usr/bin/time -f '%e %U %S %M' -o "$logs/$label.time" \
        timeout "$sync_timeout" "${direct_prefix[@]}" "$bin/heirloom-image" sync --from "$from" --name "$image" \
        --store "$store" --keys "$keys" --ca-file "$cert" --workers "$sync_workers" --json -q "$@"
    ((m_rc == 0)) || fail_step "$tool $scenario run $n (heirloom-image sync)" "$logs/$label.err" "exit status $m_rc"
    s0=$(minus "$(ar cpu "${pids[@]}")" "$s0")
    check_server "$tool $scenario run $n"
    read -r _ user sys rss < <(tail -n 1 "$logs/$label.time") # wall clock, user, system, peak RSS
    rp last-json "$logs/$label.out" >"$logs/$label.json" ||
        fail_step "$tool $scenario run $n: the sync's JSON" "$logs/$label.out" "heirloom-image sync printed no JSON"
    [[ $(rp get "$logs/$label.json" version) == "$version" && $(rp get "$logs/$label.json" changed) == True ]] ||
        fail_step "$tool $scenario run $n: the version synced" "$logs/$label.json" "expected a change to v$version"
    if [[ $tool == direct-nginx ]]; then
        sleep 0.3 # nginx logs a request just after its last byte: let the line land
        cross=$(rp nginx "$alog" "$mark" /)
    fi
    rp record "$results" tool="$tool" scenario="$scenario" version="$version" run="$n" runs="$runs" \
        seconds="$m_secs" bytes="$(rp get "$logs/$label.json" bytes_fetched)" \
        requests="$(rp get "$logs/$label.json" requests)" \
        client_cpu_seconds="$(awk -v a="$user" -v b="$sys" 'BEGIN { printf "%.2f", a + b }')" \
        server_cpu_seconds="$s0" other_cpu_seconds="$(rp get "$logs/$label.sample.json" other_cpu_seconds)" \
        loadavg="$(rp get "$logs/$label.sample.json" loadavg)" peak_rss_kb="$rss" workers="$sync_workers" \
        priority="$direct_priority" nginx:="$cross" sync@="$logs/$label.json"
}

store_nginx=$run/store-direct-nginx
store_server=$run/store-direct-server
snap=$run/snapshots-v1
# measure TOOL SCENARIO RUN: one sync of TOOL from the state the scenario starts from (no store
# for first-sync; the v1 store, as left by the first sync, for update).
measure() {
    local tool=$1 scenario=$2 n=$3 store
    case $tool in
    agent) store=$agent_store ;;
    direct-nginx) store=$store_nginx ;;
    direct-server) store=$store_server ;;
    esac
    if [[ $scenario == first-sync ]]; then
        discard "$store" # the agent keeps its image key: only the first run fetches it
    elif ((n > 1)); then
        restore "$snap/$tool" "$store"
    fi
    case $tool in
    agent) agent_sync "$scenario" "$version" "$n" ;;
    direct-nginx) direct_sync direct-nginx "$scenario" "$version" "$n" "$store" "$nurl" ;;
    direct-server) direct_sync direct-server "$scenario" "$version" "$n" "$store" "$hurl/v1/images/$image/repo" \
        --token-file "$token" ;;
    esac
}
tools=(agent direct-nginx direct-server)
# Each run takes the tools in a different order, so none is always first or last.
measure_all() { # SCENARIO VERSION
    local scenario=$1 n i
    version=$2
    for ((n = 1; n <= runs; n++)); do
        for ((i = 0; i < ${#tools[@]}; i++)); do
            measure "${tools[(i + n - 1) % ${#tools[@]}]}" "$scenario" "$n"
        done
    done
}

# Every run's store stays (in run/trash) until the end: about 2 x runs x 3 stores of the size
# of the repository, plus the server's and the admin's copies and the snapshots.
need=$(($(du -sb "$repo_dir" | cut -f1) * (6 * runs + 8) * 11 / 10))
avail=$(df --output=avail -B1 "$run" | tail -n 1)
((avail > need)) || die "not enough free space under $run: about $((need / 1000000000 + 1)) GB needed for --runs $runs, $((avail / 1000000000)) GB free (use fewer --runs, or another --work)"
[[ ! -e $agent_store ]] || fail_step "agent first sync" "$logs/agent.log" "the agent has a store ($agent_store) before its first sync"
measure_all first-sync 1
# The v1 stores, to start every update run from.
mkdir -p "$snap"
cp -a "$agent_store" "$snap/agent"
cp -a "$store_nginx" "$snap/direct-nginx"
cp -a "$store_server" "$snap/direct-server"

push 2 "$pair/v2.vhd"
check_server "push v2"
measure_all update 2

ar ratios "$results"

# ---- what the agent holds is the image: its store exported = v1.vhd and v2.vhd ---------------
failures=0
exports=$run/exports
mkdir -p "$exports"
export_check() { # LABEL STORE VERSION VHD
    local label=$1 store=$2 v=$3 vhd=$4 identical=false t secs
    log "check: export $label (v$v) and compare it with $(basename "$vhd")"
    t=$(now)
    if timeout "$sync_timeout" "$bin/heirloom-image" export --store "$store" --name "$image" --version "$v" \
        --keys "$keys" --out "$exports/$label.vhd" -q </dev/null >"$logs/export-$label.log" 2>&1 &&
        qemu-img compare -q -f vpc -F vpc "$vhd" "$exports/$label.vhd" >>"$logs/export-$label.log" 2>&1; then
        identical=true
    else
        failures=$((failures + 1))
        log "check: $label is NOT identical to $(basename "$vhd") (see $logs/export-$label.log)"
    fi
    secs=$(since "$t")
    rm -f "$exports/$label.vhd"
    rp record "$results" tool=check scenario="$label" version="$v" identical="$identical" seconds="$secs"
}
export_check agent-v2 "$agent_store" 2 "$pair/v2.vhd"
export_check agent-v1 "$agent_store" 1 "$pair/v1.vhd"
export_check direct-nginx-v2 "$store_nginx" 2 "$pair/v2.vhd"

# ---- the agent stops on SIGTERM --------------------------------------------------------------
stop_agent
if [[ $agent_exit != 0 ]]; then
    failures=$((failures + 1))
    log "heirloom-agent did not stop cleanly on SIGTERM (exit: $agent_exit; see $logs/agent.log)"
fi
rp record "$results" tool=bench scenario=done seconds="$(($(date +%s) - t_bench))" \
    agent_exit="$agent_exit" agent_log_warnings="$(grep -ciE 'warn|error' "$logs/agent.log" || true)" \
    loadavg="$(cut -d' ' -f1-3 /proc/loadavg)" failures="$failures"

log "done in $(($(date +%s) - t_bench)) s; results in $results"
{
    echo "Agent sync benchmark: ${size_gib} GiB pair, $(nproc) cores, HTTPS on 127.0.0.1, $sync_workers workers," \
        "heirloom-image at $direct_priority priority, median of $runs runs (min-max), git $git_rev"
    ar summary "$results" | sed 's/^/  /'
} >&2
((failures == 0))
