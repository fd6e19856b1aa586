#!/usr/bin/env bash
# A real Active Directory domain controller (Samba) for tests: HEIRLOOM.TEST, NetBIOS domain
# HEIRLOOM, base DN DC=heirloom,DC=test, with the users and groups below. Provisioning takes
# tens of seconds, so it is done once into a template folder that each test copies.
#
# Usage:
#   samba-ad.sh template DIR
#       Provisions the domain into DIR (once: a DIR made by this same script is kept).
#   samba-ad.sh start DIR TEMPLATE ADDRESS [--stop-with PID]
#       Copies TEMPLATE into DIR, makes a test CA and a certificate for ADDRESS and
#       dc.heirloom.test (DIR/tls/ca.pem), and runs samba on ADDRESS only (a loopback address
#       such as 127.88.1.2: ldap 389 with StartTLS, ldaps 636, kerberos 88). --stop-with stops
#       it once process PID has exited (so a crashed test leaves no samba behind).
#   samba-ad.sh keytab DIR FILE
#       Exports the keys of HTTP/127.0.0.1@HEIRLOOM.TEST (the server's SPN) to FILE.
#   samba-ad.sh stop DIR
#
# Contents (every password below; the domain lets simple passwords through):
#   Administrator           Admin-Secret1
#   heirloom-svc            Service-Secret1    the server's service account (a plain user),
#                                              holding the SPN HTTP/127.0.0.1 (AES keys) for
#                                              Kerberos single sign-on (samba-ad.sh keytab)
#   alice                   Alice-Secret1      in Heirloom-Admins; "Alice Example"
#   bob                     Bob-Secret1        in Payroll, which is a member of Finance
#   carol                   Carol-Secret1      in no group of ours (Domain Users only)
#   dave                    Dave-Secret1       disabled
#   erin                    Erin-Secret1       account expired
#   frank                   Frank-Secret1      must change the password at next logon
#   lucy                    Lucy-Secret1       locks after 3 wrong passwords (domain policy)
#   WS01$                   a computer account
#   bulk0001 … bulk1100     Bulk-Secret1       1,100 plain users (for paged searches)
#
# Exit codes: 0 done, 1 failed, 2 bad usage, 3 samba not installed.
set -euo pipefail

usage() {
  sed -n '6,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "samba-ad.sh: $*" >&2
  exit 1
}

realm=HEIRLOOM.TEST
base='DC=heirloom,DC=test'
bulk_users=1100

need_programs() {
  local p
  for p in samba samba-tool ldbadd ldbmodify openssl; do
    command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || {
      echo "samba-ad.sh: $p is not installed (installer/install-deps.sh installs it)" >&2
      exit 3
    }
  done
  [ -d /usr/share/samba/setup/ad-schema ] || {
    echo "samba-ad.sh: samba-ad-provision is not installed" >&2
    exit 3
  }
}

# A template made by another version of make_template is made anew: raise this with any
# change to what it makes.
template_version=1
stamp() { echo "samba-ad template $template_version"; }

tool() { samba-tool "$@" -H "$work/private/sam.ldb" >>"$work/provision.log" 2>&1; }

user() { # NAME PASSWORD [samba-tool user create options]
  local name=$1 password=$2
  shift 2
  tool user create "$name" "$password" "$@"
}

make_template() {
  local dir=$1
  if [ -f "$dir/ready" ] && [ "$(cat "$dir/ready")" = "$(stamp)" ]; then
    return 0
  fi
  need_programs
  mkdir -p "$(dirname "$dir")"
  work=$(mktemp -d "$dir.new.XXXXXX")
  # Provisioning writes only into --targetdir; the address is replaced by start.
  samba-tool domain provision --realm "$realm" --domain HEIRLOOM --server-role dc \
    --dns-backend NONE --use-rfc2307 --host-name dc --host-ip 127.0.0.1 \
    --adminpass Admin-Secret1 --targetdir "$work" >"$work/provision.log" 2>&1 ||
    die "samba-tool domain provision failed: $(tail -5 "$work/provision.log")"
  tool domain passwordsettings set --complexity=off --min-pwd-length=1 --history-length=0 \
    --min-pwd-age=0 --max-pwd-age=0 --account-lockout-threshold=3 \
    --account-lockout-duration=30 --reset-account-lockout-after=30 ||
    die "setting the password policy failed: $(tail -5 "$work/provision.log")"
  user heirloom-svc Service-Secret1
  user alice Alice-Secret1
  user bob Bob-Secret1
  user carol Carol-Secret1
  user dave Dave-Secret1
  user erin Erin-Secret1
  user frank Frank-Secret1 --must-change-at-next-login
  user lucy Lucy-Secret1
  tool user disable dave
  tool computer create WS01
  for group in Heirloom-Admins Payroll Finance; do tool group add "$group"; done
  tool group addmembers Heirloom-Admins alice
  tool group addmembers Payroll bob
  tool group addmembers Finance Payroll
  tool spn add HTTP/127.0.0.1 heirloom-svc
  # displayName, and an account that expired in 2009 (accountExpires is in 100 ns since 1601).
  ldbmodify -H "$work/private/sam.ldb" >>"$work/provision.log" 2>&1 <<EOF || die "ldbmodify failed"
dn: CN=alice,CN=Users,$base
changetype: modify
replace: displayName
displayName: Alice Example

dn: CN=erin,CN=Users,$base
changetype: modify
replace: accountExpires
accountExpires: 128900000000000000

dn: CN=heirloom-svc,CN=Users,$base
changetype: modify
replace: msDS-SupportedEncryptionTypes
msDS-SupportedEncryptionTypes: 24
EOF
  # Bulk users straight into the database: enabled (512), each with a password.
  local password i
  password=$(printf '"Bulk-Secret1"' | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
  for i in $(seq -f '%04g' 1 "$bulk_users"); do
    printf 'dn: CN=bulk%s,CN=Users,%s\nobjectClass: user\nsAMAccountName: bulk%s\n' \
      "$i" "$base" "$i"
    printf 'userPrincipalName: bulk%s@heirloom.test\nuserAccountControl: 512\n' "$i"
    printf 'unicodePwd:: %s\n\n' "$password"
  done >"$work/bulk.ldif"
  ldbadd -H "$work/private/sam.ldb" "$work/bulk.ldif" >>"$work/provision.log" 2>&1 ||
    die "adding the bulk users failed: $(tail -5 "$work/provision.log")"
  stamp >"$work/ready"
  rm -rf "$dir"
  mv "$work" "$dir"
}

write_config() { # DIR ADDRESS
  local dir=$1 address=$2
  mkdir -p "$dir/etc" "$dir/run" "$dir/ncalrpc" "$dir/cache" "$dir/state"
  cat >"$dir/etc/smb.conf" <<EOF
[global]
	netbios name = DC
	realm = $realm
	workgroup = HEIRLOOM
	server role = active directory domain controller
	server services = ldap, kdc
	interfaces = $address/8
	bind interfaces only = yes
	private dir = $dir/private
	lock directory = $dir
	state directory = $dir/state
	cache directory = $dir/cache
	pid directory = $dir/run
	ncalrpc dir = $dir/ncalrpc
	binddns dir = $dir/bind-dns
	log file = $dir/samba.log
	log level = 1
	tls enabled = yes
	tls keyfile = $dir/tls/dc.key
	tls certfile = $dir/tls/dc.pem
	tls cafile = $dir/tls/ca.pem
	idmap_ldb:use rfc2307 = yes
EOF
  cat >"$dir/krb5.conf" <<EOF
[libdefaults]
	default_realm = $realm
	dns_lookup_realm = false
	dns_lookup_kdc = false
	dns_canonicalize_hostname = false
	rdns = false
[realms]
	$realm = {
		kdc = $address
	}
[domain_realm]
	.heirloom.test = $realm
	heirloom.test = $realm
EOF
}

make_certificates() { # DIR ADDRESS
  local tls=$1/tls address=$2
  mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/ca.key" \
    -out "$tls/ca.pem" -days 2 -subj "/CN=Heirloom test AD CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$1/openssl.log"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/dc.key" \
    -out "$tls/dc.csr" -subj "/CN=dc.heirloom.test" 2>>"$1/openssl.log"
  printf 'subjectAltName=IP:%s,DNS:dc.heirloom.test\nextendedKeyUsage=serverAuth\n' \
    "$address" >"$tls/ext"
  openssl x509 -req -in "$tls/dc.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -out "$tls/dc.pem" -days 2 -extfile "$tls/ext" 2>>"$1/openssl.log"
  chmod 600 "$tls/dc.key" "$tls/ca.key"
}

alive() { kill -0 "$1" 2>/dev/null; }

start_dc() { # DIR TEMPLATE ADDRESS OWNER
  local dir=$1 template=$2 address=$3 owner=$4
  need_programs
  [ -f "$template/ready" ] || die "$template is not a template: run samba-ad.sh template first"
  case $address in 127.*) ;; *) die "ADDRESS must be a loopback address, not '$address'" ;; esac
  mkdir -p "$dir"
  cp -a "$template/." "$dir/"
  write_config "$dir" "$address"
  make_certificates "$dir" "$address" || die "openssl failed: $(tail -3 "$dir/openssl.log")"
  local samba
  samba=$(command -v samba || echo /usr/sbin/samba)
  "$samba" -i -M single -s "$dir/etc/smb.conf" </dev/null >>"$dir/samba.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/samba.pid"
  local i
  for i in $(seq 1 300); do
    if ! alive "$pid"; then
      die "samba exited at start: $(tail -5 "$dir/samba.out")"
    fi
    if (exec 3<>"/dev/tcp/$address/636") 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/$address/636") 2>/dev/null || {
    kill -TERM "$pid" 2>/dev/null || true
    die "samba did not listen on $address:636 within 30 s: $(tail -5 "$dir/samba.out")"
  }
  if [ -n "$owner" ]; then
    (
      while alive "$owner" && alive "$pid"; do sleep 1; done
      [ "$(cat "$dir/samba.pid" 2>/dev/null)" = "$pid" ] && kill -TERM "$pid" 2>/dev/null
    ) </dev/null >/dev/null 2>&1 &
    disown
  fi
  disown "$pid" 2>/dev/null || true
}

stop_dc() {
  local dir=$1 pid
  pid=$(cat "$dir/samba.pid" 2>/dev/null) || return 0
  rm -f "$dir/samba.pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for i in $(seq 1 50); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
template)
  [ $# -eq 1 ] || usage
  make_template "$1"
  ;;
start)
  [ $# -ge 3 ] || usage
  dir=$1 template=$2 address=$3
  shift 3
  owner=''
  while [ $# -gt 0 ]; do
    case $1 in
    --stop-with) [ $# -ge 2 ] || usage; owner=$2; shift 2 ;;
    *) usage ;;
    esac
  done
  start_dc "$dir" "$template" "$address" "$owner"
  ;;
keytab)
  [ $# -eq 2 ] || usage
  samba-tool domain exportkeytab "$2" --principal=HTTP/127.0.0.1 -s "$1/etc/smb.conf" \
    >>"$1/keytab.log" 2>&1 || die "exporting the keytab failed: $(tail -3 "$1/keytab.log")"
  ;;
stop)
  [ $# -eq 1 ] || usage
  stop_dc "$1"
  ;;
*) usage ;;
esac
