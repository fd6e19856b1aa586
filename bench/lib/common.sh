# bench/lib/common.sh: what the benchmark scripts share — messages, processes and their cleanup,
# the demo directory, heirloom-server, nginx, TLS, enrolment and the cached image pair.
#
# Source it from a script running under `set -euo pipefail`, after setting:
#   bench_name  the prefix of error messages ("run-load-bench": "run-load-bench: nginx died")
#   bench_tag   the prefix of progress lines ("load-bench": "[load-bench 12:00:00] pushing")
# Functions that start a daemon do not track it: the caller adds its pid to the watchdog's file.
# shellcheck shell=bash

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_repo=$(cd "$bench_dir/.." && pwd)

# ---- messages and small helpers ------------------------------------------------------------

# log MESSAGE...: a progress line on stderr, with the time.
log() { printf '[%s %s] %s\n' "$bench_tag" "$(date +%T)" "$*" >&2; }
# die MESSAGE...: the message on stderr, then exit 1.
die() { echo "$bench_name: $*" >&2; exit 1; }
# rp ARGS...: bench/tools/report.py (records, JSON values, nginx log sums, tool versions).
rp() { python3 "$bench_dir/tools/report.py" "$@"; }
# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# now: the time, for since.
now() { date +%s.%N; }
# since T [DIGITS]: seconds from T (of now) until now, with DIGITS decimals (default 3).
since() { awk -v a="$1" -v b="$(date +%s.%N)" -v d="${2:-3}" 'BEGIN { printf "%." d "f", b - a }'; }

# require_tools TOOL...: dies naming the first TOOL that is not installed (nginx may be in /usr/sbin).
require_tools() {
    local t
    [[ -x /usr/sbin/nginx && :$PATH: != *:/usr/sbin:* ]] && PATH=$PATH:/usr/sbin
    for t in "$@"; do
        command -v "$t" >/dev/null || die "$t is not installed (bash installer/install-deps.sh)"
    done
}

# find_bin_dir DIR PROGRAM...: prints the first of DIR (when not empty), build/bin and
# build-bench/bin of the repository that holds every PROGRAM; fails when none does.
find_bin_dir() {
    local first=$1 d p
    shift
    for d in "$first" "$bench_repo/build/bin" "$bench_repo/build-bench/bin"; do
        [[ -n $d ]] || continue
        for p in "$@"; do [[ -x $d/$p ]] || continue 2; done
        echo "$d"
        return 0
    done
    return 1
}

# ---- processes -----------------------------------------------------------------------------

# stop_pid PID: TERM, up to 10 s for it to exit, then KILL; nothing when PID is empty or gone.
stop_pid() {
    local pid=$1 _
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# start_watchdog PIDS: empties the file PIDS and starts (pid in $!) a process that, once this
# script has exited — even by kill -9, without running its trap — sends TERM to each pid in it.
start_watchdog() {
    local pids=$1
    : >"$pids"
    (
        trap - EXIT
        while kill -0 $$ 2>/dev/null; do sleep 2; done
        while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$pids"
    ) </dev/null >/dev/null 2>&1 &
}

# fresh_run RUN: RUN emptied, with logs/ and a private secrets/ (mode 700) in it.
fresh_run() {
    rm -rf "$1"
    mkdir -p "$1/logs" "$1/secrets"
    chmod 700 "$1/secrets"
}

# prune_run RUN: removes everything in the run folder RUN but logs/ and results.jsonl.
prune_run() { find "$1" -mindepth 1 -maxdepth 1 ! -name logs ! -name results.jsonl -exec rm -rf {} +; }

# ---- TLS, the demo directory, heirloom-server ------------------------------------------------

# make_certificate CERT KEY: a self-signed P-256 certificate for 127.0.0.1 (2 days) and its key
# (mode 600); openssl's messages on stdout and stderr.
make_certificate() {
    local cert=$1 key=$2
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$key" -out "$cert" || return
    chmod 600 "$key"
}

# start_demo_directory DIR PORT PASSWORD_FILE: slapd with the demo users on ldap://127.0.0.1:PORT
# (stopped when this script exits), and the password of heirloom-server's service account in
# PASSWORD_FILE (mode 600).
start_demo_directory() {
    (umask 077 && printf '%s' service-secret >"$3")
    bash "$bench_repo/installer/demo-directory.sh" start "$1" "$2" --stop-with $$
}

# stop_demo_directory DIR: stops the directory start_demo_directory started in DIR.
stop_demo_directory() { bash "$bench_repo/installer/demo-directory.sh" stop "$1" >/dev/null 2>&1; }

# serve_heirloom SERVER_BIN PORT DATA_DIR CERT KEY LDAP_PORT PASSWORD_FILE [ARGS...]: becomes
# heirloom-server on https://127.0.0.1:PORT, users from the demo directory; run it with &.
serve_heirloom() {
    local server_bin=$1 port=$2 data=$3 cert=$4 key=$5 ldap_port=$6 pwfile=$7
    shift 7
    exec "$server_bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --tls-cert "$cert" --tls-key "$key" \
        --ldap-uri "ldap://127.0.0.1:$ldap_port" --ldap-tls plain --ldap-base-dn dc=heirloom,dc=test \
        --ldap-bind-dn cn=heirloom-server,ou=services,dc=heirloom,dc=test \
        --ldap-bind-password-file "$pwfile" "$@"
}

# wait_http URL PID [CACERT]: until URL answers (any HTTP status; over TLS checked with CACERT)
# while process PID lives; otherwise prints why it gave up and fails.
wait_http() {
    local url=$1 pid=$2 tls=() _
    [[ -z ${3:-} ]] || tls=(--cacert "$3")
    for _ in $(seq 1 150); do
        curl -s -o /dev/null "${tls[@]}" --max-time 2 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || { echo "exited during startup"; return 1; }
        sleep 0.2
    done
    echo "did not answer on $url within 30 s"
    return 1
}

# set_payroll_workspace ADMIN...: with ADMIN (a logged-in heirloom-admin command), the workspace
# payroll-ws: the image payroll, persistent, 512 MiB, NAT.
set_payroll_workspace() {
    echo '{"display_name":"Payroll","image":"payroll","persistence":"persistent","memory_mib":512,"network":{"mode":"nat"}}' |
        "$@" workspace set payroll-ws --file -
}

# assign_payroll_to_finance ADMIN...: with ADMIN, the assignment fin of payroll-ws to the group
# finance (alice is in it), every control off, no expiry.
assign_payroll_to_finance() {
    echo '{"workspace":"payroll-ws","principal":{"kind":"group","name":"finance"},"controls":{"clipboard":"off","file_transfer":"off","printing":"off","removable_media":"off"},"expires_at":0,"offline_limit":86400,"on_expiry":"stop","overriding":false}' |
        "$@" assignment set fin --file -
}

# enrol_endpoint CACERT SERVER_URL USER PASSWORD HOSTNAME SECRETS: enrols an endpoint (POST
# /v1/enrol) and writes its agent token to SECRETS/agent-token and the header line
# "Authorization: Bearer TOKEN" to SECRETS/auth-header (mode 600). The password goes through a
# mode-600 file, never a command line; curl's messages and a refusal go to stderr.
enrol_endpoint() {
    local cacert=$1 url=$2 user=$3 password=$4 hostname=$5 secrets=$6 rc=0
    (umask 077 && printf '{"user":"%s","password":"%s","hostname":"%s"}' "$user" "$password" "$hostname" \
        >"$secrets/enrol-body.json")
    (
        umask 077
        curl -sS --fail-with-body --cacert "$cacert" -H 'Content-Type: application/json' \
            --data-binary "@$secrets/enrol-body.json" -o "$secrets/enrol.json" "$url/v1/enrol"
    ) || rc=$?
    rm -f "$secrets/enrol-body.json"
    if ((rc != 0)); then
        tail -c 300 "$secrets/enrol.json" >&2 2>/dev/null
        rm -f "$secrets/enrol.json"
        return "$rc"
    fi
    python3 - "$secrets/enrol.json" "$secrets/agent-token" "$secrets/auth-header" <<'EOF' || rc=$?
import json, os, sys
t = json.load(open(sys.argv[1]))["agent_token"]
for path, text in ((sys.argv[2], t + "\n"), (sys.argv[3], "Authorization: Bearer " + t + "\n")):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
EOF
    rm -f "$secrets/enrol.json"
    return "$rc"
}

# ---- nginx -----------------------------------------------------------------------------------

# nginx_conf DIR PORT ROOT CERT KEY MAIN HTTP: prints an nginx.conf serving the files under ROOT
# on 127.0.0.1:PORT — over HTTPS with CERT and KEY, plain HTTP when CERT is empty — with its pid,
# error log and temporary files in DIR. MAIN and HTTP are the benchmark's own directives for the
# main and the http block (workers, events, access log, timeouts, caches).
nginx_conf() {
    local dir=$1 port=$2 root=$3 cert=$4 key=$5 main=$6 http=$7
    if ((EUID == 0)); then echo "user root root;"; fi # workers must read the benchmark's files
    cat <<EOF
$main
pid $dir/nginx.pid;
error_log $dir/error.log warn;
http {
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
$(sed 's/^/    /' <<<"$http")
    server {
EOF
    if [[ -n $cert ]]; then
        cat <<EOF
        listen 127.0.0.1:$port ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
EOF
    else
        echo "        listen 127.0.0.1:$port;"
    fi
    cat <<EOF
        root $root;
        location / { try_files \$uri =404; }
    }
}
EOF
}

# serve_nginx DIR: becomes nginx in the foreground with DIR/nginx.conf (see nginx_conf); run it with &.
serve_nginx() { exec nginx -c "$1/nginx.conf" -p "$1" -e "$1/error.log" -g 'daemon off;'; }

# nginx_pids PID: nginx's master PID and its workers.
nginx_pids() {
    echo "$1"
    pgrep -P "$1" || true
}

# ---- the image pair --------------------------------------------------------------------------

# make_image_pair PAIR SIZE_GIB BIN_DIR [ARGS...]: makes (or reuses) the image pair of
# make-image-pair.sh in PAIR, with heirloom-bench-vhd-reorder from BIN_DIR when it is there;
# fails when v1.vhd, v2.vhd or pair.json is missing afterwards.
make_image_pair() {
    local pair=$1 size_gib=$2 bin_dir=$3 f
    shift 3
    local args=("$pair" --size-gib "$size_gib" "$@")
    if [[ -n $bin_dir && -x $bin_dir/heirloom-bench-vhd-reorder ]]; then args+=(--bin-dir "$bin_dir"); fi
    "$bench_dir/make-image-pair.sh" "${args[@]}" || return
    for f in v1.vhd v2.vhd pair.json; do
        [[ -s $pair/$f ]] || { echo "$pair/$f is missing after make-image-pair.sh" >&2; return 1; }
    done
}
