#!/usr/bin/env bash
# A real Home Assistant 2024.3.3 in .build/ha-venv, for the interop tests that run it against a
# private mosquitto (scripts/homeassistant/prepare.py writes its config; start it with
# `.build/ha-venv/bin/hass -c DIR --skip-pip`).
#
# 2024.3.3 is the newest release that runs on Python 3.11 (Debian 12's /usr/bin/python3). It is
# installed with that release's own homeassistant/package_constraints.txt as pip constraints, or pip
# pulls today's versions of its unpinned dependencies (josepy 2 breaks the cloud integration).
# --skip-pip means HA installs nothing itself, so what the integrations it loads import is installed
# here (pins from their manifest.json in 2024.3.3):
#   mqtt: paho-mqtt; file_upload (dep of mqtt, frontend): janus; frontend: home-assistant-frontend;
#   analytics (dep of onboarding) imports recorder: SQLAlchemy, fnv-hash-fast, psutil-home-assistant;
#   image_upload (dep of person): Pillow; backup: securetar; hardware: psutil-home-assistant;
#   camera/stream (imported by mqtt's camera and image platforms): PyTurboJPEG, numpy.
# The constraints do not pin josepy, and josepy 2 breaks hass_nabucasa (the cloud integration):
#   AttributeError: module 'josepy' has no attribute 'ComparableX509'
# No Debian packages are needed beyond python3-venv (scripts/install-deps.sh has it); the tests also
# need mosquitto and mosquitto-clients, which install-deps.sh installs too.
# Idempotent: a stamp holding this file's hash skips pip entirely when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/ha-venv
version=2024.3.3
extras=(
  paho-mqtt==1.6.1
  janus==1.0.0
  home-assistant-frontend==20240307.0
  SQLAlchemy==2.0.27
  fnv-hash-fast==0.5.0
  psutil-home-assistant==0.0.1
  Pillow==10.2.0
  securetar==2024.2.1
  PyTurboJPEG==1.7.1
  numpy==1.26.0
  'josepy<2'
)
stamp="$venv/.wiregate-stamp"
want="$(sha256sum scripts/homeassistant-venv.sh | cut -d' ' -f1)"
if [ -x "$venv/bin/hass" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
rm -f "$stamp"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# First the package alone, to read its own constraints file; then everything under those constraints.
"${pip[@]}" install --no-deps "homeassistant==$version"
constraints="$("$venv/bin/python" -c 'import homeassistant, os; print(os.path.join(os.path.dirname(homeassistant.__file__), "package_constraints.txt"))')"
# Debian 12's venv pip (23.0) installs four sdists (paho-mqtt, PyTurboJPEG, fnvhash, PyRIC) with the
# legacy `setup.py install` and prints a DEPRECATION line each: harmless. (Adding today's `wheel`
# breaks those builds: "No module named 'packaging'"; --use-pep517 works but was no faster.)
"${pip[@]}" install -c "$constraints" "homeassistant==$version" "${extras[@]}"
"$venv/bin/python" -c 'import homeassistant.const as c; assert c.__version__ == "'"$version"'", c.__version__'
echo "$want" > "$stamp"
