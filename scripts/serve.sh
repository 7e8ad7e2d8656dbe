#!/usr/bin/env bash
# Command 1 of the quick start: create the virtualenv, install, migrate the database (SQLite in
# instance/ unless DATABASE_URL says otherwise), seed the built-in templates, and serve with
# gunicorn on 127.0.0.1:8000 (BIND and WEB_CONCURRENCY change that).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .

export FLASK_APP=wsgi
.venv/bin/flask db upgrade
.venv/bin/flask seed
exec .venv/bin/gunicorn -c gunicorn.conf.py wsgi:app
