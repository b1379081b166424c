#!/usr/bin/env bash
# The receiving Django app's own tests (deploy/django), with Django's test runner, against a
# private PostgreSQL. Installs Django and the rest from requirements.txt into a venv under .build.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/django-venv
./scripts/django-venv.sh
# A cluster of its own unless the caller (scripts/test.sh) has one running.
[ -n "${PGPORT:-}" ] || source scripts/postgres.sh
cd deploy/django
"../../$venv/bin/python" manage.py makemigrations --check --dry-run wiregate_events >/dev/null \
  || { echo "wiregate_events: the models changed without a migration (manage.py makemigrations)" >&2; exit 1; }
"../../$venv/bin/python" manage.py test wiregate_events --noinput -v 1
