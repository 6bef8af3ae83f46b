#!/bin/sh
# Installs everything vpnguard-bpf needs to build, package (make deb), test, demo and benchmark, from Debian's packages.
# Idempotent: packages already present are left as they are.
set -eu

pkgs="make gcc clang llvm libclang-rt-14-dev pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
      libcurl4-openssl-dev libmnl-dev libjson-c-dev libcmocka-dev libinih-dev libsystemd-dev
      iproute2 wireguard-tools wireguard-go nftables
      iputils-ping python3 openssl procps util-linux systemd
      docker.io busybox-static iperf3
      qbittorrent-nox transmission-daemon opentracker python3-libtorrent python3-pytest chromium
      libmicrohttpd-dev prometheus xxd
      debhelper dpkg-dev scdoc lintian bash-completion debootstrap systemd-container"

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing; run as root to install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
