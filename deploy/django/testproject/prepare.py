"""Creates the database of one end-to-end test (PGDATABASE), migrates it, and prints the
token bound to the gateway id given (wiregate_gateway). Run from deploy/django with the venv's python."""
import os
import sys

import psycopg

name = os.environ["PGDATABASE"]
with psycopg.connect(dbname="postgres", autocommit=True) as connection:
    connection.execute(f'CREATE DATABASE "{name}"')

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)
call_command("wiregate_gateway", sys.argv[1] if len(sys.argv) > 1 else "test-gw")
