#!/usr/bin/env bash
# run-vm-bench.sh [--image VHD] [--runs N] [--accel auto|kvm|tcg] [--work DIR] [--bin-dir DIR]
#                 [--only export|launch] [--keep]   (--image build/guest-wine/guest.vhd: Windows too)
#
# The workspace VM benchmark, on the guest image (installer/guest/build-guest-image.sh):
#   export   read throughput of the decrypting NBD export a VM boots from (every 4 KiB block
#            authenticated, decrypted and tag-checked) against reading the same disk as a
#            plaintext raw file directly, and through qemu-nbd (the NBD transport without the
#            crypto), all with `qemu-img bench` (sequential 1 MiB reads, queue depth 4, warm
#            page cache), in the same run; the ratios are export / plaintext and / qemu-nbd.
#   launch   the whole stack: the demo directory, heirloom-server, the image pushed, an agent
#            on a private Xvfb display: cold start to window (`heirloom launch` with no VM
#            running, until the app's window is on the display), warm launch to window (VM
#            running), suspend to disk, and resume from suspend to window (`heirloom launch`
#            after `heirloom suspend`), each --runs times; KVM or TCG named. On an image built
#            with --windows-apps (the default when build/guest-wine/guest.vhd exists), the same
#            three for the Win32 program PAYROLL.EXE under Wine, in the same run, next to the
#            X11 app's (each record names its app).
#   images   the guest images' build time (cold tree, disk) and size, with and without Wine,
#            from the guest.json beside each image.
# Prints one JSON object per measurement on stdout and a summary on stderr.
#
#   --image VHD     the guest image (default build/guest-wine/guest.vhd when built, else
#                   build/guest/guest.vhd)
#   --runs N        measurements of each (default 3)
#   --accel A       the agent's VM acceleration (default auto: KVM when it really works)
#   --work DIR      work folder (default /var/tmp/heirloom-bench/vm); its run/ is emptied
#   --bin-dir DIR   the programs (default build/bin of this repository)
#   --only WHAT     only the export or only the launch measurements
#   --keep          keep the whole run folder
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
image=$repo/build/guest/guest.vhd
[[ -f $repo/build/guest-wine/guest.vhd ]] && image=$repo/build/guest-wine/guest.vhd
runs=3
accel=auto
work=/var/tmp/heirloom-bench/vm
bin_dir=$repo/build/bin
only=""
keep=0
while (($#)); do
    case "$1" in
    --image) image=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --accel) accel=${2:?}; shift 2 ;;
    --work) work=${2:?}; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "run-vm-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "run-vm-bench: --runs takes a whole number" >&2; exit 2; }
[[ $accel =~ ^(auto|kvm|tcg)$ ]] || { echo "run-vm-bench: --accel is auto, kvm or tcg" >&2; exit 2; }
[[ -z $only || $only =~ ^(export|launch)$ ]] || { echo "run-vm-bench: --only export or launch" >&2; exit 2; }
unset HEIRLOOM_PASSWORD

bench_name=run-vm-bench bench_tag=vm-bench
# shellcheck source=lib/common.sh
source "$here/lib/common.sh"
require_tools python3 qemu-img qemu-nbd qemu-system-x86_64 openssl curl Xvfb xdotool xpra awk
[[ -f $image ]] || die "no guest image at $image: bash installer/guest/build-guest-image.sh --out build/guest --guest-agent build/bin/heirloom-guest"
for p in heirloom-image heirloom-bench-nbd-export heirloom-server heirloom-admin heirloom-agent heirloom; do
    [[ -x $bin_dir/$p ]] || die "$bin_dir/$p is missing: build it (cmake --build build --target $p)"
done

mkdir -p "$work"
work=$(cd "$work" && pwd)
run=$work/run
fresh_run "$run"
logs=$run/logs results=$run/results.jsonl secrets=$run/secrets
export_pid="" qemu_nbd_pid="" server_pid="" agent_pid="" xvfb_pid="" ldap_started=0 watchdog_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [[ -n $watchdog_pid ]] && kill "$watchdog_pid" 2>/dev/null
    stop_pid "$agent_pid"
    for p in "$export_pid" "$qemu_nbd_pid" "$server_pid" "$xvfb_pid"; do stop_pid "$p"; done
    ((ldap_started)) && stop_demo_directory "$run/ldap"
    rm -rf "$secrets"
    ((keep)) || prune_run "$run"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_watchdog "$run/pids"
watchdog_pid=$!
# record KEY=VALUE...: one JSON line on stdout and in results.jsonl.
record() { rp record "$results" "$@"; }

# ---- export: the decrypting NBD export against the plaintext file ----------------------------
measure_export() {
    log "packing and syncing $image into an encrypted store"
    "$bin_dir/heirloom-image" keygen --out "$run/keys" >"$logs/keygen.log" 2>&1
    "$bin_dir/heirloom-image" pack "$image" --repo "$run/repo" --name guest --keys "$run/keys" \
        --no-deltas >"$logs/pack.log" 2>&1
    "$bin_dir/heirloom-image" sync --from "$run/repo" --name guest --store "$run/store" \
        --keys "$run/keys" >"$logs/sync.log" 2>&1
    qemu-img convert -f vpc -O raw "$image" "$run/plain.raw"
    local size
    size=$(stat -c %s "$run/plain.raw")
    "$bin_dir/heirloom-bench-nbd-export" --store "$run/store" --image guest --keys "$run/keys" \
        --socket "$run/guest.nbd" >"$logs/export.log" 2>&1 &
    export_pid=$!
    echo "$export_pid" >>"$run/pids"
    for _ in $(seq 1 100); do [[ -S $run/guest.nbd ]] && break; sleep 0.1; done
    [[ -S $run/guest.nbd ]] || die "the export did not start (see $logs/export.log)"
    # The same plaintext file behind QEMU's own NBD server: the transport without the crypto.
    qemu-nbd --read-only --persistent --shared=4 -f raw -x guest --socket="$run/plain.nbd" \
        "$run/plain.raw" >"$logs/qemu-nbd.log" 2>&1 &
    qemu_nbd_pid=$!
    echo "$qemu_nbd_pid" >>"$run/pids"
    for _ in $(seq 1 100); do [[ -S $run/plain.nbd ]] && break; sleep 0.1; done
    local count=$((size / 1048576)) uri="nbd+unix:///guest?socket=$run/guest.nbd" i what target t secs
    # Warm both: the page cache holds the chunk files and the plaintext file alike.
    cat "$run/plain.raw" "$run"/store/chunks/*/* >/dev/null 2>&1 || true
    for ((i = 1; i <= runs; i++)); do
        for what in plaintext qemu-nbd export; do
            case $what in
            plaintext) target=$run/plain.raw ;;
            qemu-nbd) target="nbd+unix:///guest?socket=$run/plain.nbd" ;;
            export) target=$uri ;;
            esac
            t=$(now)
            qemu-img bench -f raw -c "$count" -d 4 -s 1M -S 1M "$target" >>"$logs/qemu-img-bench.log" 2>&1 ||
                die "qemu-img bench on $what failed (see $logs/qemu-img-bench.log)"
            secs=$(since "$t")
            record tool="$what" scenario=read-throughput run="$i" bytes="$((count * 1048576))" \
                seconds="$secs" mb_per_s="$(awk -v b=$((count * 1048576)) -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')"
        done
    done
    stop_pid "$export_pid"
    stop_pid "$qemu_nbd_pid"
    export_pid="" qemu_nbd_pid=""
}

# ---- launch: the whole stack on a private display --------------------------------------------
measure_launch() {
    local display n
    for n in $(seq 60 200); do
        [[ -e /tmp/.X11-unix/X$n || -e /tmp/.X$n-lock ]] || { display=:$n; break; }
    done
    Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$logs/xvfb.log" 2>&1 &
    xvfb_pid=$!
    echo "$xvfb_pid" >>"$run/pids"

    mkdir -p "$run/tls"
    make_certificate "$run/tls/cert.pem" "$secrets/key.pem" >"$logs/openssl.log" 2>&1
    local ldap_port hport url
    ldap_port=$(free_port)
    ldap_started=1
    start_demo_directory "$run/ldap" "$ldap_port" "$secrets/ldap-password" >"$logs/ldap.log" 2>&1
    hport=$(free_port)
    url=https://127.0.0.1:$hport
    serve_heirloom "$bin_dir/heirloom-server" "$hport" "$run/server-data" "$run/tls/cert.pem" \
        "$secrets/key.pem" "$ldap_port" "$secrets/ldap-password" </dev/null >"$logs/server.log" 2>&1 &
    server_pid=$!
    echo "$server_pid" >>"$run/pids"
    wait_http "$url/v1/server" "$server_pid" "$run/tls/cert.pem" >/dev/null || die "heirloom-server did not start (see $logs/server.log)"

    # The admin (carol) pushes the image and publishes two apps to finance.
    local admin=(env HOME="$run/carol" "$bin_dir/heirloom-admin")
    HEIRLOOM_PASSWORD=carol-pw "${admin[@]}" login --server "$url" --user carol --ca-file "$run/tls/cert.pem" >"$logs/admin.log" 2>&1
    log "pushing the guest image"
    "${admin[@]}" image push legacy "$image" >>"$logs/admin.log" 2>&1
    echo '{"display_name":"Legacy Desk","image":"legacy","persistence":"revertible","memory_mib":512,"network":{"mode":"nat"}}' |
        "${admin[@]}" workspace set legacy-ws --file - >>"$logs/admin.log" 2>&1
    echo '{"workspace":"legacy-ws","display_name":"Clock","command":["/usr/bin/xclock"],"icon":"app","file_types":[],"url_patterns":[]}' |
        "${admin[@]}" app set clock --file - >>"$logs/admin.log" 2>&1
    echo '{"workspace":"legacy-ws","display_name":"Terminal","command":["/usr/bin/xterm"],"icon":"app","file_types":[],"url_patterns":[]}' |
        "${admin[@]}" app set terminal --file - >>"$logs/admin.log" 2>&1
    if ((wine)); then
        echo '{"workspace":"legacy-ws","display_name":"Payroll","command":["C:\\Apps\\Payroll\\PAYROLL.EXE"],"icon":"payroll","file_types":[],"url_patterns":[]}' |
            "${admin[@]}" app set payroll --file - >>"$logs/admin.log" 2>&1
    fi
    echo '{"workspace":"legacy-ws","principal":{"kind":"group","name":"finance"},"controls":{"clipboard":"off","file_transfer":"off","printing":"off","removable_media":"off"},"expires_at":0,"offline_limit":86400,"on_expiry":"stop","overriding":false}' |
        "${admin[@]}" assignment set fin --file - >>"$logs/admin.log" 2>&1

    # Alice's agent on the display.
    local home=$run/alice
    mkdir -p "$home/.config/heirloom" "$run/alice-run"
    chmod 700 "$run/alice-run"
    printf '{"vm_boot_timeout_seconds": 900, "accel": "%s"}\n' "$accel" >"$home/.config/heirloom/agent.json"
    local as_alice=(env -i HOME="$home" XDG_RUNTIME_DIR="$run/alice-run" PATH=/usr/bin:/bin LANG=C.UTF-8 DISPLAY="$display")
    "${as_alice[@]}" "$bin_dir/heirloom-agent" >"$logs/agent.log" 2>&1 &
    agent_pid=$!
    echo "$agent_pid" >>"$run/pids"
    for _ in $(seq 1 100); do [[ -S $run/alice-run/heirloom/agent.sock ]] && break; sleep 0.1; done
    "${as_alice[@]}" HEIRLOOM_PASSWORD=alice-pw "$bin_dir/heirloom" login --server "$url" --user alice \
        --ca-file "$run/tls/cert.pem" >"$logs/login.log" 2>&1
    log "alice's agent syncs the image"
    "${as_alice[@]}" "$bin_dir/heirloom" sync --now --wait >"$logs/sync-agent.log" 2>&1 ||
        die "the agent's sync failed (see $logs/sync-agent.log)"

    # window_after START PATTERN: seconds from START until a window matching PATTERN shows.
    window_after() {
        local start=$1 pattern=$2
        for _ in $(seq 1 3000); do
            if DISPLAY=$display xdotool search --onlyvisible --name "$pattern" >/dev/null 2>&1; then
                since "$start"
                return 0
            fi
            sleep 0.05
        done
        return 1
    }
    # launch_to_window SCENARIO APP PATTERN [resumed]: one launch of APP, timed until its window
    # shows, recorded as SCENARIO.
    launch_to_window() {
        local scenario=$1 app=$2 pattern=$3 t out secs
        t=$(now)
        out=$("${as_alice[@]}" "$bin_dir/heirloom" launch "$app" --json 2>>"$logs/launch.log") ||
            die "$scenario of $app failed (see $logs/launch.log and $logs/agent.log)"
        if [[ ${4:-} == resumed && $out != *'"resumed": true'* ]]; then
            die "the launch of $app after a suspend did not resume: $out"
        fi
        secs=$(window_after "$t" "$pattern") || die "no $app window on $display"
        vm_accel=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["accel"])' "$out")
        record tool=heirloom scenario="$scenario" app="$app" run="$i" seconds="$secs" accel="$vm_accel"
    }
    # cycle APP PATTERN: cold start, suspend to disk and resume, for one app.
    cycle() {
        local app=$1 pattern=$2 t
        "${as_alice[@]}" "$bin_dir/heirloom" stop legacy-ws >/dev/null 2>&1 || true
        launch_to_window cold-start-to-window "$app" "$pattern"
        t=$(now)
        "${as_alice[@]}" "$bin_dir/heirloom" suspend legacy-ws >>"$logs/launch.log" 2>&1 ||
            die "suspend failed (see $logs/launch.log and $logs/agent.log)"
        record tool=heirloom scenario=suspend-to-disk app="$app" run="$i" seconds="$(since "$t")" \
            state_bytes="$(stat -c %s "$home/.local/share/heirloom/overlays/legacy-ws.state")"
        launch_to_window resume-from-suspend-to-window "$app" "$pattern" resumed
    }
    local i vm_accel
    for ((i = 1; i <= runs; i++)); do
        cycle clock 'xclock'
        launch_to_window warm-launch-to-window terminal 'xterm'
        if ((wine)); then
            launch_to_window warm-launch-to-window payroll '] Payroll'
            cycle payroll '] Payroll'
        fi
    done
}

# ---- images: build time and size of the guest images, with and without Wine -----------------
measure_images() {
    local variant json
    for variant in guest guest-wine; do
        json=$repo/build/$variant/guest.json
        [[ -f $json ]] || { log "no $json: build-guest-image.sh has not built $variant"; continue; }
        python3 - "$json" "$variant" "$results" <<'PY'
import json, sys
doc, variant, results = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
row = {"bench": "run-vm-bench", "tool": "build-guest-image", "scenario": "guest-image",
       "variant": "wine" if doc.get("wine") else "default",
       "tree_build_seconds": doc["build_seconds"]["tree"],
       "disk_build_seconds": doc["build_seconds"]["disk"],
       "vhd_bytes": doc["sizes"]["vhd_bytes"], "virtual_bytes": doc["sizes"]["virtual_bytes"],
       "root_used_bytes": doc["sizes"]["root_used_bytes"], "packages": doc["package_count"]}
line = json.dumps(row)
print(line)
open(results, "a").write(line + "\n")
PY
    done
}

wine=0
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("wine") else 1)' \
    "${image%.vhd}.json" 2>/dev/null && wine=1
measure_images
[[ $only == launch ]] || measure_export
[[ $only == export ]] || measure_launch
python3 "$here/tools/vm_report.py" "$results" >&2
