#!/usr/bin/env bash
# Command 2 of the quick start: install what is needed, then run the whole suite twice —
# on SQLite and on a real PostgreSQL 15 — with a real Redis for the shared rate-limit tests.
# PostgreSQL and Redis are installed from Debian packages if missing, initialised in a temporary
# folder, started on free loopback ports (PostgreSQL as an ordinary user) and stopped afterwards,
# whatever the outcome.  Extra arguments go to pytest:  scripts/test.sh -k health -x
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Python environment -----------------------------------------------------------------------
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
log "installing the project and its [dev] extra"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# --- System packages: PostgreSQL 15 and Redis ---------------------------------------------------
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/initdb" ] || ! command -v redis-server >/dev/null; then
  log "installing postgresql and redis-server (Debian packages)"
  # Do not let the package create and start its own cluster: this script runs its own.
  as_root mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
fi
PG_BIN=$(pg_bindir)

# --- Temporary servers -----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/character-forge-test.XXXXXX")
chmod 755 "$WORK"
PG_USER=$(id -un)
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: use an unprivileged system account.
  PG_USER=cf-postgres
  id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
fi
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cleanup() {
  status=$?
  set +e
  if [ -f "$WORK/pg/data/postmaster.pid" ]; then
    run_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -f "$WORK/redis.pid" ]; then kill "$(cat "$WORK/redis.pid")" 2>/dev/null; fi
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT INT TERM

log "starting PostgreSQL ($PG_BIN) in $WORK/pg"
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown "$PG_USER" "$WORK/pg"
PG_PORT=$(free_port)
run_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 60 start \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null

log "starting Redis"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
for _ in $(seq 50); do [ -f "$WORK/redis.pid" ] && break; sleep 0.1; done

export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export TEST_PG_BIN="$PG_BIN" TEST_PG_DATA="$WORK/pg/data" TEST_PG_USER="$PG_USER"
PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"

log "lint: ruff check, ruff format --check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

log "test suite on SQLite"
env -u TEST_DATABASE_URL .venv/bin/python -m pytest "$@"

log "test suite on PostgreSQL"
TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest "$@"

log "all green"
