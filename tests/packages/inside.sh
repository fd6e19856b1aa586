#!/usr/bin/env bash
# Runs inside a fresh Debian 12 root (made by test-packages.sh): installs the older packages,
# sets the server up against the host's throwaway directory, runs it as its service user,
# upgrades to the newer packages, then removes and purges them, checking at each step.
# Environment: OLD_VERSION, NEW_VERSION, LDAP_URI, SERVER_PORT.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
debs=/tmp/heirloom-debs
packages=(heirloom-server heirloom-agent heirloom-image heirloom-admin)
[ -n "$(ls "$debs"/old/heirloom-console_*.deb 2>/dev/null)" ] && packages+=(heirloom-console)

check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    echo "  ok    $what"
  else
    echo "  FAIL  $what" >&2
    exit 1
  fi
}
installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
status_of() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | tr -d ' '; }
no_missing_libraries() { ! ldd "$1" | grep -q 'not found'; }
owner_mode() { stat -c '%U:%G %a' "$1"; }

echo "--- install $OLD_VERSION"
apt-get -q update >/dev/null
apt-get install -y -q --no-install-recommends "$debs"/old/*.deb >/tmp/apt-install.log 2>&1 ||
  { cat /tmp/apt-install.log >&2; exit 1; }
for p in "${packages[@]}"; do
  check "$p $OLD_VERSION installed" test "$(installed_version "$p")" = "$OLD_VERSION"
done
for program in heirloom-server heirloom-admin heirloom-image heirloom heirloom-agent heirloom-open; do
  check "$program --help runs" sh -c "$program --help >/dev/null"
done
for program in /usr/bin/heirloom-tray /usr/bin/heirloom-console /usr/lib/heirloom/heirloom-guest; do
  [ -e "$program" ] && check "$program finds all its libraries" no_missing_libraries "$program"
done
check "service user heirloom exists" sh -c "getent passwd heirloom >/dev/null"
check "data folder owned by heirloom, mode 750" \
  test "$(owner_mode /var/lib/heirloom-server)" = "heirloom:heirloom 750"
check "server unit enabled" test -L /etc/systemd/system/multi-user.target.wants/heirloom-server.service
check "agent user unit enabled for every user" \
  test -L /etc/systemd/user/default.target.wants/heirloom-agent.service
check "tray starts with the session" test -f /etc/xdg/autostart/heirloom-tray.desktop
check "default config installed" test -f /etc/heirloom/server.json
out=$(heirloom-server serve --config /etc/heirloom/server.json 2>&1) && exit 1
check "the unset-up server refuses to start and says why" grep -q "heirloom-server init" <<<"$out"

echo "--- heirloom-server init"
HEIRLOOM_PASSWORD=service-secret heirloom-server init --no-ask --listen "127.0.0.1:$SERVER_PORT" \
  --ldap-uri "$LDAP_URI" --ldap-tls plain --ldap-base-dn dc=heirloom,dc=test \
  --ldap-bind-dn cn=heirloom-server,ou=services,dc=heirloom,dc=test --self-signed localhost
check "keys belong to the service user" \
  test "$(owner_mode /var/lib/heirloom-server/keys/signing.key)" = "heirloom:heirloom 600"
check "TLS key belongs to the service user" \
  test "$(owner_mode /var/lib/heirloom-server/tls/server.key)" = "heirloom:heirloom 600"

echo "--- the server runs as its service user"
runuser -u heirloom -- heirloom-server serve --config /etc/heirloom/server.json \
  >/tmp/server.log 2>&1 &
server=$!
answer=
for _ in $(seq 100); do
  answer=$(curl -sf --cacert /var/lib/heirloom-server/tls/server.crt \
    "https://localhost:$SERVER_PORT/v1/server" 2>/dev/null) && break
  sleep 0.1
done
kill "$server"
wait "$server" || true
check "it answers over TLS with the certificate init made" grep -q heirloom-server <<<"$answer" ||
  { cat /tmp/server.log >&2; exit 1; }
echo "site data" >/var/lib/heirloom-server/site-marker
keys_before=$(sha256sum /var/lib/heirloom-server/keys/signing.key)
uid_before=$(id -u heirloom)

echo "--- upgrade to $NEW_VERSION"
apt-get install -y -q --no-install-recommends "$debs"/new/*.deb >/tmp/apt-upgrade.log 2>&1 ||
  { cat /tmp/apt-upgrade.log >&2; exit 1; }
for p in "${packages[@]}"; do
  check "$p upgraded to $NEW_VERSION" test "$(installed_version "$p")" = "$NEW_VERSION"
done
check "the configuration init wrote is kept" grep -q "$LDAP_URI" /etc/heirloom/server.json
check "keys kept" test "$(sha256sum /var/lib/heirloom-server/keys/signing.key)" = "$keys_before"
check "data kept" test -f /var/lib/heirloom-server/site-marker
check "same service user" test "$(id -u heirloom)" = "$uid_before"
check "server unit still enabled" \
  test -L /etc/systemd/system/multi-user.target.wants/heirloom-server.service

echo "--- remove"
files=$(dpkg -L "${packages[@]}" | sort -u)
apt-get remove -y -q "${packages[@]}" >/tmp/apt-remove.log 2>&1 ||
  { cat /tmp/apt-remove.log >&2; exit 1; }
for p in "${packages[@]}"; do
  check "$p removed" test "$(status_of "$p")" = rc -o "$(status_of "$p")" = un -o -z "$(status_of "$p")"
done
check "programs gone" test ! -e /usr/bin/heirloom-server -a ! -e /usr/bin/heirloom
check "configuration kept until purge" test -f /etc/heirloom/server.json

echo "--- purge"
# Packages without configuration files are gone already; the others wait in state rc.
to_purge=()
for p in "${packages[@]}"; do
  [ "$(status_of "$p")" = rc ] && to_purge+=("$p")
done
check "heirloom-server waits for purge with its configuration" \
  sh -c "echo ' ${to_purge[*]} ' | grep -q ' heirloom-server '"
apt-get purge -y -q "${to_purge[@]}" >/tmp/apt-purge.log 2>&1 ||
  { cat /tmp/apt-purge.log >&2; exit 1; }
for p in "${packages[@]}"; do
  check "$p purged" test -z "$(status_of "$p")" -o "$(status_of "$p")" = un
done
check "configuration gone" test ! -e /etc/heirloom/server.json
check "unit links gone" test ! -e /etc/systemd/system/multi-user.target.wants/heirloom-server.service \
  -a ! -e /etc/systemd/user/default.target.wants/heirloom-agent.service
left=
while read -r f; do
  [ -f "$f" ] || [ -L "$f" ] && left+="$f "
done <<<"$files"
check "no file of the packages left behind${left:+: $left}" test -z "$left"
check "images, keys and metadata kept (never deleted by the package)" \
  test -f /var/lib/heirloom-server/keys/signing.key
echo "--- all package checks passed"
