#!/usr/bin/env bash
# Installs the Debian packages wiregate needs to build and test, when missing.
set -euo pipefail
packages=(libmosquitto-dev libudev-dev libsqlite3-dev mosquitto mosquitto-clients coreutils procps e2fsprogs mount umockdev libumockdev-dev python3-gi gir1.2-umockdev-1.0 postgresql python3-venv zlib1g-dev libssl-dev libcrypt-dev whois openssl lintian dpkg-dev fakeroot systemd python3-seccomp debootstrap iproute2 util-linux binutils prometheus python3-aiosmtpd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install the Swift 6 toolchain (see README)" >&2; exit 1; }
