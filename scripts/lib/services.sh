# Shared by scripts/test.sh and scripts/proof.sh (sourced, not run): the virtualenv, and a
# throw-away PostgreSQL 15 cluster and Redis server on free loopback ports, installed from
# Debian packages when missing and stopped again by `stop_services` (call it from a trap).

log() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_venv() {
  PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
  fi
  log "installing the project and its [dev] extra"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# ensure_packages [extra Debian packages…]: PostgreSQL and Redis, plus anything else asked for.
ensure_packages() {
  local missing=()
  { [ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/initdb" ]; } || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  local extra
  for extra in "$@"; do command -v "$extra" >/dev/null || missing+=("$extra"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (Debian packages)"
  # The package may create (and try to start) its own default cluster; it is left alone: this
  # script runs a throw-away cluster of its own on a free port.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/dev/null
}

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_services: sets WORK, PG_URL and exports TEST_REDIS_URL, TEST_PG_BIN, TEST_PG_USER.
start_services() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/character-forge.XXXXXX")
  chmod 755 "$WORK"
  PG_BIN=$(pg_bindir)
  PG_USER=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: use an unprivileged system account.
    PG_USER=cf-postgres
    id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  fi
  log "starting PostgreSQL ($PG_BIN) in $WORK/pg"
  mkdir -p "$WORK/pg"
  if [ "$(id -u)" = 0 ]; then chown "$PG_USER" "$WORK/pg"; fi
  PG_PORT=$(free_port)
  run_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust --encoding=UTF8 \
    --no-locale --lc-ctype=C.UTF-8 >/dev/null  # C order; lower() folds every letter
  run_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -t 60 start \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
  PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"

  log "starting Redis"
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"
  for _ in $(seq 50); do [ -f "$WORK/redis.pid" ] && break; sleep 0.1; done

  export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  export TEST_PG_BIN="$PG_BIN" TEST_PG_USER="$PG_USER"
}

run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }

stop_services() {
  [ -n "${WORK:-}" ] || return 0
  if [ -f "$WORK/pg/data/postmaster.pid" ]; then
    run_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -f "$WORK/redis.pid" ]; then kill "$(cat "$WORK/redis.pid")" 2>/dev/null; fi
  rm -rf "$WORK"
}
