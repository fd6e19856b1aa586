#!/usr/bin/env bash
# The main job on embedded defaults: installs what it needs, builds Heirloom, makes a guest-like
# ext4 disk as a VHD, packs it into an encrypted, signed repository, serves that repository
# from a plain static HTTP server on 127.0.0.1, syncs an endpoint store from it, rolls out an
# update by block deltas, seeds a new endpoint from its own files (Trim Transfer) and from a
# USB-style media folder, and exports the result back to a VHD that qemu-img compares equal.
# Then the central server: a throwaway directory (slapd) with demo users, heirloom-server over
# HTTPS bound to it, an admin pushing both versions with heirloom-admin (only what the server
# lacks), a workspace assigned to a group, and an endpoint of user alice enrolling, receiving
# her signed policy and syncing the image through the server, while a user without the
# assignment is refused. Finally the workspace VM: the demo guest image (Debian, Xpra, X11 apps,
# Wine with the Win32 program Payroll that the build makes with mingw-w64, heirloom-guest; built
# once and cached in build/guest-wine) pushed and published, synced by alice's agent, and
# xclock, then the Windows programs Payroll and Wine's Notepad launched from it as seamless
# windows: on your display when DISPLAY works, else on a private Xvfb, with a screenshot saved
# either way.
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
ninja -C build heirloom-image heirloom-server heirloom-admin heirloom-agent heirloom heirloom-guest \
  payroll_exe >/dev/null
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

step "Directory: a throwaway OpenLDAP (slapd) with demo users and groups"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ldap_port=$(free_port)
bash "$root/installer/demo-directory.sh" start "$work/directory" "$ldap_port" --stop-with $$
trap 'kill $server 2>/dev/null || true; kill $hserver 2>/dev/null || true; bash "$root/installer/demo-directory.sh" stop "$work/directory"' EXIT

step "Server: heirloom-server init (keys, a self-signed certificate, the directory checked), then serve"
rm -rf server home && mkdir -p server home
hport=$(free_port)
HEIRLOOM_PASSWORD=service-secret "$bin/heirloom-server" init --no-ask --config server/server.json \
  --data-dir "$work/server/data" --listen "127.0.0.1:$hport" --self-signed 127.0.0.1 \
  --ldap-uri "ldap://127.0.0.1:$ldap_port" --ldap-tls plain --ldap-base-dn dc=heirloom,dc=test \
  --ldap-bind-dn cn=heirloom-server,ou=services,dc=heirloom,dc=test --check-user alice
ca=$work/server/data/tls/server.crt
"$bin/heirloom-server" serve --config server/server.json 2>server/server.log &
hserver=$!
hurl=https://127.0.0.1:$hport
for _ in $(seq 100); do curl -sf --cacert "$ca" "$hurl/v1/server" >/dev/null && break; sleep 0.1; done

step "Admin: carol logs in and pushes v1, then v2 (only the objects the server lacks)"
admin() { HOME=$work/home XDG_CONFIG_HOME= XDG_CACHE_HOME= HEIRLOOM_PASSWORD=carol-pw "$bin/heirloom-admin" "$@"; }
admin login --server "$hurl" --user carol --ca-file "$ca"
admin image push legacy-apps v1.vhd
admin image push legacy-apps v2.vhd
admin image list

step "Admin: a workspace, assigned to group finance and to staff (the most restrictive wins)"
echo '{"display_name":"Legacy apps","image":"legacy-apps","persistence":"revertible","memory_mib":512,"network":{"mode":"nat"}}' \
  | admin workspace set legacy --file -
echo '{"workspace":"legacy","principal":{"kind":"group","name":"finance"},"controls":{"clipboard":"both","file_transfer":"both","printing":"on","removable_media":"read-only"},"expires_at":0,"offline_limit":604800,"on_expiry":"stop","overriding":false}' \
  | admin assignment set finance-legacy --file -
echo '{"workspace":"legacy","principal":{"kind":"group","name":"staff"},"controls":{"clipboard":"host-to-guest","file_transfer":"off","printing":"on","removable_media":"off"},"expires_at":0,"offline_limit":86400,"on_expiry":"stop","overriding":false}' \
  | admin assignment set staff-legacy --file -
admin effective alice | python3 -c 'import json,sys; d=json.load(sys.stdin); w=d["workspaces"][0]; print("alice gets", w["workspace"]["id"], "with", w["controls"], "decided by", w["decided_by"]["clipboard"], "for the clipboard")'

# Where the legacy app's window will show: the user's display when there is one that answers,
# else a private Xvfb (stopped at exit).
xvfb_pid=""
if [ -n "${DISPLAY:-}" ] && xdpyinfo >/dev/null 2>&1; then
  demo_display=$DISPLAY
else
  for n in $(seq 70 199); do
    [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || { demo_display=:$n; break; }
  done
  Xvfb "$demo_display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb_pid=$!
  for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X${demo_display#:}" ] && break; sleep 0.1; done
fi

step "Endpoint: alice's agent (heirloom-agent) logs in and syncs her workspace in the background"
rm -rf agent && mkdir -p agent/home/.config/heirloom agent/run && chmod 700 agent agent/run
# Her endpoint already holds the application's files: Trim Transfer reuses them.
# The VM runs under TCG unless HEIRLOOM_ACCEL says kvm or auto: on some machines KVM passes the
# agent's probe and then stops the guest's boot loader (docs/vm.md, "Acceleration").
printf '{"sync_workers": 4, "seeds": {"legacy": ["%s/tree"]}, "accel": "%s"}\n' "$work" \
  "${HEIRLOOM_ACCEL:-tcg}" > agent/home/.config/heirloom/agent.json
as_alice() { env -i HOME="$work/agent/home" XDG_RUNTIME_DIR="$work/agent/run" PATH=/usr/bin:/bin LANG=C.UTF-8 DISPLAY="$demo_display" "$@"; }
# Started without the function, so that $! is the agent itself (env execs it) and the trap
# below stops it, and with it the VM.
env -i HOME="$work/agent/home" XDG_RUNTIME_DIR="$work/agent/run" PATH=/usr/bin:/bin LANG=C.UTF-8 \
  DISPLAY="$demo_display" "$bin/heirloom-agent" 2>agent/agent.log &
agent_pid=$!
# The agent stops its VMs when it stops: give it the time to.
trap 'kill $agent_pid 2>/dev/null && timeout 20 tail --pid=$agent_pid -f /dev/null; kill $server 2>/dev/null || true; kill $hserver 2>/dev/null || true; [ -z "$xvfb_pid" ] || kill $xvfb_pid 2>/dev/null; bash "$root/installer/demo-directory.sh" stop "$work/directory"' EXIT
for _ in $(seq 100); do as_alice "$bin/heirloom" status >/dev/null 2>&1 && break; sleep 0.1; done
as_alice env HEIRLOOM_PASSWORD=alice-pw "$bin/heirloom" login --server "$hurl" --user alice --ca-file "$ca"
as_alice "$bin/heirloom" sync --now --wait
as_alice "$bin/heirloom" workspaces

step "Access control: a contractor's endpoint is refused the image and its key"
curl -sf --cacert "$ca" -X POST "$hurl/v1/enrol" \
  -d '{"user":"bob","password":"wrong","hostname":"x"}' >/dev/null && { echo "a wrong password enrolled!"; exit 1; }
echo "wrong password refused: $(curl -s --cacert "$ca" -X POST "$hurl/v1/enrol" -d '{"user":"bob","password":"wrong","hostname":"x"}')"
mallory_token=$(curl -sf --cacert "$ca" -X POST "$hurl/v1/enrol" \
  -d '{"user":"m*a(l)lo\\ry","password":"mallory-pw","hostname":"contractor-pc"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent_token"])')
printf 'header = "Authorization: Bearer %s"\n' "$mallory_token" > agent/mallory-auth
echo "contractor asks for the key: HTTP $(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" -K agent/mallory-auth "$hurl/v1/agent/images/legacy-apps/key")"
admin endpoints
admin report | tail -n 5

step "The demo guest image: Debian 12, Xpra, X11 apps, Wine with Payroll, heirloom-guest (cached in build/guest-wine)"
bash "$root/installer/guest/build-guest-image.sh" --out "$root/build/guest-wine" \
  --guest-agent "$bin/heirloom-guest" --windows-apps "$root/build/windows-apps"

step "Admin: pushes the guest image as 'desk' and publishes a clock, a terminal and two Windows programs"
admin image push desk "$root/build/guest-wine/guest.vhd"
echo '{"display_name":"Legacy Desk","image":"desk","persistence":"revertible","memory_mib":512,"frame_colour":"#cc3300","network":{"mode":"nat"}}' \
  | admin workspace set desk --file -
echo '{"workspace":"desk","display_name":"Clock","command":["/usr/bin/xclock"],"icon":"xclock","file_types":[],"url_patterns":[]}' \
  | admin app set clock --file -
echo '{"workspace":"desk","display_name":"Terminal","command":["/usr/bin/xterm"],"icon":"xterm","file_types":[],"url_patterns":[]}' \
  | admin app set terminal --file -
# Windows programs are published by their Windows path; they run under Wine in the guest.
echo '{"workspace":"desk","display_name":"Payroll","command":["C:\\Apps\\Payroll\\PAYROLL.EXE"],"icon":"payroll","file_types":["text/plain"],"url_patterns":[]}' \
  | admin app set payroll --file -
echo '{"workspace":"desk","display_name":"Notepad","command":["C:\\windows\\notepad.exe"],"icon":"wine-notepad","file_types":[],"url_patterns":[]}' \
  | admin app set notepad --file -
echo '{"workspace":"desk","principal":{"kind":"group","name":"finance"},"controls":{"clipboard":"host-to-guest","file_transfer":"off","printing":"off","removable_media":"off"},"expires_at":0,"offline_limit":604800,"on_expiry":"stop","overriding":false}' \
  | admin assignment set finance-desk --file -

step "Endpoint: alice's agent picks the new workspace up and syncs its image"
as_alice "$bin/heirloom" sync --now --wait >/dev/null
as_alice "$bin/heirloom" apps
echo "alice's application menu, Heirloom submenu ($work/agent/home/.local/share/applications):"
for entry in "$work"/agent/home/.local/share/applications/heirloom-desk-*.desktop; do
  [ -f "$entry" ] && sed -n 's/^Name=/  /p; s/^Exec=/    runs: /p' "$entry"
done

# wait_window PATTERN: waits (up to 3 minutes) for a visible window whose title matches.
wait_window() {
  local w
  for _ in $(seq 1800); do
    w=$(DISPLAY=$demo_display xdotool search --onlyvisible --name "$1" 2>/dev/null | head -n 1)
    [ -n "$w" ] && { echo "$w"; return 0; }
    sleep 0.1
  done
  return 1
}

step "Launching the published app 'clock': its VM boots (hidden), its window appears on $demo_display"
as_alice "$bin/heirloom" launch clock
window=$(wait_window 'Legacy Desk.*xclock') ||
  { echo "no window of the workspace appeared (see $work/agent/run/heirloom/vms/desk/)"; exit 1; }
echo "window on $demo_display: \"$(DISPLAY=$demo_display xdotool getwindowname "$window")\""
printf 'the window is up %.1fs after the demo started\n' "$(echo "$(date +%s.%N) - $t0" | bc)"

step "Launching the Windows programs 'payroll' (built with mingw-w64) and Wine's 'notepad' in the running VM"
position=0
for app in payroll:Payroll notepad:Notepad; do
  t_app=$(date +%s.%N)
  as_alice "$bin/heirloom" launch "${app%%:*}"
  window=$(wait_window "Legacy Desk.*${app#*:}") ||
    { echo "no ${app#*:} window appeared (see $work/agent/run/heirloom/vms/desk/)"; exit 1; }
  printf 'window on %s: "%s", %.1fs after the launch\n' "$demo_display" \
    "$(DISPLAY=$demo_display xdotool getwindowname "$window")" "$(echo "$(date +%s.%N) - $t_app" | bc)"
  # The private Xvfb has no window manager: every window opens at the top left. Spread them
  # out so the screenshot shows each.
  position=$((position + 1))
  [ -z "$xvfb_pid" ] || DISPLAY=$demo_display xdotool windowmove "$window" $((position * 220)) $((position * 120))
done
echo "alice's menu entry for Payroll (its icon comes from PAYROLL.EXE, as the guest reported it):"
sed -n 's/^Name=/  /p; s/^Icon=/    icon: /p' "$work"/agent/home/.local/share/applications/heirloom-desk-payroll.desktop
sleep 2 # let them paint
DISPLAY=$demo_display import -window root "$work/screenshot.png"
echo "screenshot: $work/screenshot.png"
as_alice "$bin/heirloom" status | sed -n '/Legacy Desk/,$p'

step "Done"
printf 'Total %.1fs. Everything is in %s.\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$work"
if [ -z "$xvfb_pid" ] && [ -t 0 ]; then
  read -r -p "The apps run on your display. Press Enter to stop the demo (its VM stops too). "
fi
cat <<NEXT

Try next:
  $bin/heirloom-image --help
  $bin/heirloom-image sync --help
  $bin/heirloom-image sync --from $work/repo --name legacy-apps --store /tmp/s --keys $work/keys --json
  bash bench/run-sync-bench.sh --size-gib 1     # bytes on the wire next to rdiff, casync, zsync
  $bin/heirloom-admin --help                    # the server's admin command line (docs/api.md)
  $bin/heirloom --help                          # the endpoint's command line (docs/agent.md)
  bash bench/run-vm-bench.sh                    # VM: export throughput, cold and warm launch (docs/vm.md)
NEXT
