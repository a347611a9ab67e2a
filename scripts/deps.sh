#!/bin/sh
# Installs the Debian packages that building and testing ktls need, and
# only those missing.  Idempotent; run by `make`, `make test`, `make demo`,
# `make bench` (wrk, python3-matplotlib: bench only).
set -eu
PKGS="build-essential meson ninja-build pkg-config libssl-dev openssl
python3 python3-cryptography iproute2
nginx curl wget gnutls-bin util-linux
libipsec-mb-dev
clang libclang-rt-14-dev
wrk python3-matplotlib
qemu-system-x86 busybox-static cpio kmod"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
