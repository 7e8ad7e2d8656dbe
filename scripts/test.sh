#!/usr/bin/env bash
# Command 2 of the quick start: install what is needed, then run the whole suite twice —
# on SQLite and on a real PostgreSQL 15 — with a real Redis for the shared rate-limit tests.
# PostgreSQL and Redis are installed from Debian packages if missing, initialised in a temporary
# folder, started on free loopback ports (PostgreSQL as an ordinary user) and stopped afterwards,
# whatever the outcome.  Extra arguments go to pytest:  scripts/test.sh -k health -x
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

cleanup() { status=$?; set +e; stop_services; exit $status; }
trap cleanup EXIT INT TERM

ensure_venv
ensure_packages
start_services

log "lint: ruff check, ruff format --check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

log "test suite on SQLite"
env -u TEST_DATABASE_URL .venv/bin/python -m pytest "$@"

log "test suite on PostgreSQL"
TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest "$@"

log "all green"
