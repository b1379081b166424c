#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs every test
# (pure tests, then end to end against a private mosquitto, pseudo-terminals and umockdev),
# then the receiving Django app's tests against a private PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/django-venv.sh
swift build --build-tests -Xswiftc -warnings-as-errors
# The backend sync tests serve the Django app over this private PostgreSQL.
source scripts/postgres.sh
swift test --skip-build
./scripts/test-django.sh
# The systemd unit, the Debian package, and fuzzing.
./scripts/test-deploy.sh
