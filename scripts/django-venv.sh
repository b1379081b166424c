#!/usr/bin/env bash
# The Django app's pinned Python packages (deploy/django/requirements.txt) in .build/django-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/django-venv
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install -q -r deploy/django/requirements.txt
