#!/usr/bin/env bash
# The proof of issue 8: the proof tests and the benchmarks, on a throw-away PostgreSQL 15 and
# Redis (started here, stopped whatever the outcome).
#
#   1. pytest tests/proof tests/test_fuzz.py on PostgreSQL (they also run in CI);
#   2. bench/bench_http.py: wrk against gunicorn on PostgreSQL, every scenario as a fraction of a
#      tiny Flask app under the same gunicorn settings (installs the Debian package wrk if needed);
#   3. bench/bench_scale.py: list latencies with 10,000 and 1,000,000 characters (COPY-loaded);
#   4. bench/bench_generation.py, bench/bench_preview_bounds.py and bench/bench_portrait.py
#      (in-process).
#
# Every step runs even when an earlier one failed; the script exits non-zero if any failed.
# Options for the HTTP benchmark go in BENCH_HTTP_ARGS:  BENCH_HTTP_ARGS="--rounds 7" scripts/proof.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh

cleanup() { status=$?; set +e; stop_services; exit $status; }
trap cleanup EXIT INT TERM

failures=()
# step NAME COMMAND…: run one step, remember a failure and go on.
step() {
  local name=$1
  shift
  log "$name"
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    failures+=("$name (exit $rc)")
  fi
}

ensure_venv
ensure_packages wrk
start_services

step "proof tests on PostgreSQL: fuzzing, faults, two instances" \
  env TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest tests/proof tests/test_fuzz.py -q

read -r -a bench_http_args <<<"${BENCH_HTTP_ARGS:-}"
step "HTTP load benchmark (wrk, gunicorn, PostgreSQL)" \
  env BENCH_DATABASE_URL="$PG_URL" .venv/bin/python bench/bench_http.py "${bench_http_args[@]}"
step "scale: lists at 10,000 and 1,000,000 characters" \
  env BENCH_DATABASE_URL="$PG_URL" .venv/bin/python bench/bench_scale.py
step "generation engine benchmark" .venv/bin/python bench/bench_generation.py
step "costliest previews benchmark" .venv/bin/python bench/bench_preview_bounds.py
step "portrait processing benchmark" .venv/bin/python bench/bench_portrait.py

if [ ${#failures[@]} -gt 0 ]; then
  log "proof FAILED: ${failures[*]}"
  exit 1
fi
log "proof passed"
