#!/usr/bin/env bash
# A throwaway OpenLDAP directory (slapd) with the demo users and groups, for the tests, the demo
# and the benchmarks. Everything lives in DIR: the configuration, the database, the pid file
# and slapd's log. It runs as the current user on 127.0.0.1 only; each start rebuilds it from
# installer/demo-directory/*.ldif. See installer/demo-directory/README.md for its contents.
#
# Usage:
#   demo-directory.sh start DIR PORT [--tls-cert CERT --tls-key KEY] [--stop-with PID]
#       ldap://127.0.0.1:PORT (StartTLS offered when a certificate is given), and
#       ldaps://127.0.0.1:PORT+1 with a certificate. --stop-with stops the directory once
#       process PID has exited (so a crashed test leaves no slapd behind).
#   demo-directory.sh stop DIR
#
# Exit codes: 0 done, 1 failed, 2 bad usage, 3 slapd or ldap-utils not installed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ldif_dir=$here/demo-directory
module_dir=${HEIRLOOM_SLAPD_MODULE_DIR:-/usr/lib/ldap}
schema_dir=${HEIRLOOM_SLAPD_SCHEMA_DIR:-/etc/ldap/schema}

usage() {
  sed -n '7,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "demo-directory: $*" >&2
  exit 1
}

# Finds a program on PATH or in the sbin folders, which are often not on a user's PATH.
find_program() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return 0
  fi
  for dir in /usr/local/sbin /usr/sbin /sbin; do
    if [ -x "$dir/$name" ]; then
      echo "$dir/$name"
      return 0
    fi
  done
  return 1
}

need_programs() {
  local name
  for name in slapd slapadd slappasswd ldapsearch; do
    if ! find_program "$name" >/dev/null; then
      echo "demo-directory: $name is not installed; install it with:" \
        "DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils" >&2
      exit 3
    fi
  done
}

# True while process $1 exists and is not a zombie.
alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

# True when process $1 is a slapd (so a recycled pid is never signalled).
is_slapd() {
  alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q slapd
}

# Escapes a value for the replacement side of a sed s||| command.
sed_value() {
  printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

hash_password() {
  "$slappasswd" -h '{SSHA}' -s "$1"
}

stop_directory() {
  local dir=$1 pid
  [ -f "$dir/slapd.pid" ] || return 0
  pid=$(cat "$dir/slapd.pid" 2>/dev/null || true)
  if is_slapd "$pid"; then
    # A paused (SIGSTOP) slapd only acts on SIGTERM once it runs again.
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      echo "demo-directory: slapd $pid did not stop within 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/slapd.pid"
}

start_directory() {
  local dir=$1 port=$2 cert=$3 key=$4 owner=$5
  need_programs
  slappasswd=$(find_program slappasswd)
  local slapd slapadd ldapsearch
  slapd=$(find_program slapd)
  slapadd=$(find_program slapadd)
  ldapsearch=$(find_program ldapsearch)

  case $port in '' | *[!0-9]*) die "PORT must be a number, not '$port'" ;; esac
  if [ -n "$cert" ] || [ -n "$key" ]; then
    if [ -z "$cert" ] || [ -z "$key" ]; then
      die "--tls-cert and --tls-key go together"
    fi
    [ -r "$cert" ] || die "cannot read the certificate $cert"
    [ -r "$key" ] || die "cannot read the private key $key"
    cert=$(cd "$(dirname "$cert")" && pwd)/$(basename "$cert")
    key=$(cd "$(dirname "$key")" && pwd)/$(basename "$key")
  fi

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  stop_directory "$dir"
  rm -rf "$dir/conf" "$dir/data"
  mkdir -p "$dir/conf" "$dir/data"

  local admin_hash service_hash
  admin_hash=$(hash_password admin-secret)
  service_hash=$(hash_password service-secret)
  local tls_filter=(-e '/@TLS_/d')
  if [ -n "$cert" ]; then
    tls_filter=(-e "s|@TLS_CERT@|$(sed_value "$cert")|" -e "s|@TLS_KEY@|$(sed_value "$key")|")
  fi
  sed -e "s|@DIR@|$(sed_value "$dir")|g" \
    -e "s|@MODULE_DIR@|$(sed_value "$module_dir")|g" \
    -e "s|@SCHEMA_DIR@|$(sed_value "$schema_dir")|g" \
    -e "s|@ADMIN_HASH@|$(sed_value "$admin_hash")|g" \
    "${tls_filter[@]}" "$ldif_dir/config.ldif" >"$dir/config.ldif"
  sed -e "s|@SERVICE_HASH@|$(sed_value "$service_hash")|" \
    -e "s|@ALICE_HASH@|$(sed_value "$(hash_password alice-pw)")|" \
    -e "s|@BOB_HASH@|$(sed_value "$(hash_password bob-pw)")|" \
    -e "s|@CAROL_HASH@|$(sed_value "$(hash_password carol-pw)")|" \
    -e "s|@DAVE_HASH@|$(sed_value "$(hash_password dave-pw)")|" \
    -e "s|@MALLORY_HASH@|$(sed_value "$(hash_password mallory-pw)")|" \
    -e "s|@ZOE_HASH@|$(sed_value "$(hash_password zoe-pw)")|" \
    "$ldif_dir/data.ldif" >"$dir/data.ldif"

  "$slapadd" -n 0 -F "$dir/conf" -l "$dir/config.ldif" >"$dir/slapadd.log" 2>&1 ||
    die "slapadd could not build the configuration:"$'\n'"$(tail -n 20 "$dir/slapadd.log")"
  "$slapadd" -q -n 1 -F "$dir/conf" -l "$dir/data.ldif" >>"$dir/slapadd.log" 2>&1 ||
    die "slapadd could not load the demo entries:"$'\n'"$(tail -n 20 "$dir/slapadd.log")"

  local urls="ldap://127.0.0.1:$port/"
  if [ -n "$cert" ]; then
    urls="$urls ldaps://127.0.0.1:$((port + 1))/"
  fi
  # -d none keeps slapd in the foreground and logs only its errors, to slapd.log; it is
  # detached from this script's terminal and output. slapd writes slapd.pid itself once its
  # listeners are bound, so an answer on the port with the pid file there comes from this
  # slapd, not from another server that already held the port.
  rm -f "$dir/slapd.pid"
  setsid "$slapd" -F "$dir/conf" -h "$urls" -d none </dev/null >"$dir/slapd.log" 2>&1 &
  local launched=$! pid='' answered=0
  for _ in $(seq 100); do
    pid=$(cat "$dir/slapd.pid" 2>/dev/null || true)
    if [ -z "$pid" ] && ! alive "$launched"; then
      break
    fi
    if [ -n "$pid" ] && alive "$pid" &&
      "$ldapsearch" -x -LLL -o nettimeout=2 -H "ldap://127.0.0.1:$port/" -b '' -s base \
        namingContexts >/dev/null 2>&1; then
      answered=1
      break
    fi
    sleep 0.1
  done
  if [ "$answered" != 1 ]; then
    local why="did not answer within 10 s"
    if is_slapd "$launched"; then
      kill -KILL "$launched" 2>/dev/null || true
    else
      why="exited"
    fi
    rm -f "$dir/slapd.pid"
    die "slapd $why on ldap://127.0.0.1:$port/; its log ($dir/slapd.log) ends with:"$'\n'"$(tail -n 20 "$dir/slapd.log")"
  fi

  if [ -n "$owner" ]; then
    # Stops slapd once the owner has gone, unless it was stopped already.
    (
      while alive "$owner" && alive "$pid"; do sleep 1; done
      if is_slapd "$pid" && [ "$(cat "$dir/slapd.pid" 2>/dev/null)" = "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        kill -CONT "$pid" 2>/dev/null || true
      fi
    ) </dev/null >/dev/null 2>&1 &
    disown
  fi
  disown "$pid" 2>/dev/null || true
  echo "slapd $pid serves dc=heirloom,dc=test on $urls"
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
start)
  [ $# -ge 2 ] || usage
  dir=$1 port=$2
  shift 2
  cert='' key='' owner=''
  while [ $# -gt 0 ]; do
    case $1 in
    --tls-cert) [ $# -ge 2 ] || usage; cert=$2; shift 2 ;;
    --tls-key) [ $# -ge 2 ] || usage; key=$2; shift 2 ;;
    --stop-with) [ $# -ge 2 ] || usage; owner=$2; shift 2 ;;
    *) usage ;;
    esac
  done
  start_directory "$dir" "$port" "$cert" "$key" "$owner"
  ;;
stop)
  [ $# -eq 1 ] || usage
  stop_directory "$1"
  ;;
*) usage ;;
esac
