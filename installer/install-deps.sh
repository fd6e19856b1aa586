#!/usr/bin/env bash
# Installs every Debian 12 package Heirloom needs to build, test and benchmark.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang-format clang-16 libclang-rt-16-dev
  # libraries
  libsodium-dev libssl-dev librsync-dev libzstd-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  catch2 libcpp-httplib-dev libldap-dev libsqlite3-dev qt6-base-dev
  libkrb5-dev # GSSAPI: Kerberos single sign-on between heirloom login and the server
  # tools used by tests and benchmarks
  qemu-utils e2fsprogs python3 curl time bc openssl nginx-light rdiff casync zsync
  # a throwaway OpenLDAP directory for the image server's tests and demo (installer/demo-directory.sh)
  slapd ldap-utils sqlite3
  # a throwaway Active Directory domain controller for the image server's AD tests
  # (tests/support/samba-ad.sh): Samba's DC, its provisioning schema, ldbadd/ldbmodify for the
  # bulk users, and krb5-user (kinit, klist) to check the DC's Kerberos side. winbind is not
  # needed: the DC runs only its ldap and kdc services.
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules ldb-tools krb5-user
  faketime # libfaketime: the agent's lease tests move its clock
  wrk # HTTP load generator for bench/run-load-bench.sh
  # the guest image recipe (installer/guest/build-guest-image.sh): the root tree, the SYSLINUX
  # boot partition and the MBR disk, all without mounting anything
  mmdebstrap syslinux syslinux-common mtools dosfstools fdisk
  fakeroot uidmap # the same recipe run without root (mmdebstrap --mode=unshare)
  # running the guest VM and showing its windows on the host (demo, VM tests): QEMU, the Xpra
  # client (it paints nothing without python3-gi-cairo; lz4 and PIL for speed and icons), and
  # a throwaway X display to look at (Xvfb, xwininfo, xdotool, ImageMagick's import)
  qemu-system-x86 xpra python3-gi-cairo python3-lz4 python3-pil xvfb x11-utils xdotool imagemagick
  xclip # the VM tests read and set the host display's clipboard
  # shell integration (docs/shell-integration.md): libpng decodes guests' icons; the tests check
  # every menu entry with desktop-file-validate, dispatch files and links through the real
  # xdg-open and gio (libglib2.0-bin), and screenshot lxpanel's XDG menu under Xvfb;
  # notify-send tells a user launching from the menu why a launch was refused
  libpng-dev desktop-file-utils xdg-utils libglib2.0-bin lxpanel libnotify-bin
  # Windows programs: heirloom-guest writes the PNGs of their icons with zlib, linked from its
  # static archive (agent/pe_icon.cmake); the tests build small Windows programs and the Win32
  # test program PAYROLL.EXE with mingw-w64 (32-bit); the Wine guest image strips Wine's DLLs
  # with binutils' strip (docs/guest-image.md)
  zlib1g-dev g++-mingw-w64-i686 binutils
)

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# sudo drops the environment: pass DEBIAN_FRONTEND through, so slapd's package does not ask for
# an admin password (it configures a system directory that Heirloom does not use).
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
