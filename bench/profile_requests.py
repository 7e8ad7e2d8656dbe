"""Where the time of one request goes: the bench_http.py scenarios, in-process, profiled.

Same database, data and production configuration as ``bench_http.py`` (a fresh database on the
server of ``BENCH_DATABASE_URL``, migrated and seeded; the reader owns 45 characters), but the
requests go through Flask's test client in this process, so there is no gunicorn, socket or wrk
in the figures: only the app, its libraries and the waits on PostgreSQL.

For each scenario it prints:

* the time per request without a profiler (wall, and this process's CPU: the difference is
  mostly waiting for PostgreSQL);
* with ``cProfile``: the self time grouped by where it is spent (the app, SQLAlchemy, the
  PostgreSQL round trips, marshmallow, JWT, Flask/werkzeug, …), then the top functions by
  cumulative time. ``--pyinstrument`` prints pyinstrument's call tree instead, if installed.

Usage (from the repository root)::

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/profile_requests.py [--scenarios read,list,generate] [-n 500]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent
# this tree's app, even where an editable install of the project points at another checkout
sys.path[:0] = [str(_BENCH.parent), str(_BENCH)]

import bench_http  # noqa: E402

# (label, substrings of a profiled function's file or name); first match wins.
GROUPS = [
    ("PostgreSQL round trips (psycopg2)", ("psycopg2",)),  # the wait, and the driver
    ("JWT (PyJWT, flask-jwt-extended)", ("/jwt/", "flask_jwt_extended")),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("marshmallow, webargs, flask-smorest", ("marshmallow", "webargs", "flask_smorest")),
    ("flask-limiter, limits", ("flask_limiter", "/limits/")),
    ("prometheus_client", ("prometheus_client",)),
    ("logging", ("/logging/", "pythonjsonlogger")),
    ("json", ("/json/",)),
    ("Flask, werkzeug", ("/flask/", "werkzeug", "flask_sqlalchemy")),
    ("argon2", ("argon2",)),
    ("app: generation engine", ("/app/generation/",)),
    ("app: other", ("/app/",)),
]


OTHER = "other (stdlib, test client)"


def group_of(filename: str, name: str) -> str:
    where = f"{filename} {name}"
    for label, needles in GROUPS:
        if any(needle in where for needle in needles):
            return label
    return OTHER


def by_group(stats: pstats.Stats) -> dict[str, float]:
    """Self time per group; builtins and stdlib are charged to the group that called them."""
    totals: dict[str, float] = defaultdict(float)
    table = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in table.items():
        group = group_of(filename, name)
        if group != OTHER or not callers:
            totals[group] += tottime
            continue
        for (caller_file, _caller_line, caller_name), caller_stats in callers.items():
            totals[group_of(caller_file, caller_name)] += caller_stats[2]
    return dict(totals)


def test_client_caller(client: Any) -> bench_http.Caller:
    def call(method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.open(path, method=method, json=body, headers=headers)
        return response.status_code, response.get_json(silent=True)

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="read,list,generate")
    parser.add_argument("-n", "--requests", type=int, default=500, help="per scenario (500)")
    parser.add_argument("--top", type=int, default=25, help="functions listed (25)")
    parser.add_argument("--pyinstrument", action="store_true", help="pyinstrument's call tree")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        parser.error("set BENCH_DATABASE_URL (or --database-url) to a PostgreSQL server URL")
    keys = [key.strip() for key in args.scenarios.split(",") if key.strip()]

    with bench_http.fresh_database(args.database_url, keep=False) as (url, _name):
        env = bench_http.server_env(url, None)
        bench_http.migrate_and_seed(env)
        os.environ.update(env)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cf-profile-metrics-")
        from app import create_app
        from app.extensions import db

        app = create_app()
        client = app.test_client()
        call = test_client_caller(client)
        try:
            data = bench_http.set_up_data(call)
            chosen = [s for s in bench_http.scenarios(data) if s.key in keys]
            for scenario in chosen:
                profile_scenario(scenario, client, args)
        finally:
            with app.app_context():
                db.engine.dispose()
    return 0


def profile_scenario(scenario: bench_http.Scenario, client: Any, args: argparse.Namespace) -> None:
    headers = dict(scenario.headers)
    kwargs: dict[str, Any] = {"method": scenario.method, "headers": headers}
    if scenario.body is not None:
        kwargs["data"] = scenario.body

    def one() -> None:
        response = client.open(scenario.path, **kwargs)
        if response.status_code >= 300:
            raise bench_http.BenchError(f"{scenario.key}: {response.status_code}")

    for _ in range(min(100, args.requests)):
        one()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.requests):
        one()
    wall = (time.perf_counter() - wall) / args.requests * 1e3
    cpu = (time.process_time() - cpu) / args.requests * 1e3
    print(f"\n=== {scenario.key}: {scenario.label}")
    print(f"no profiler: {wall:.3f} ms wall, {cpu:.3f} ms CPU per request (in-process)")

    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
        for _ in range(args.requests):
            one()
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False))
        return

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.requests):
        one()
    profile.disable()
    stats = pstats.Stats(profile)
    total = sum(by_group(stats).values())
    print(f"cProfile: self time by group (profiler overhead included, {total:.2f} s in all)")
    for label, seconds in sorted(by_group(stats).items(), key=lambda item: -item[1]):
        share = seconds / total if total else 0.0
        print(f"  {label:38} {share:6.1%} {seconds / args.requests * 1e3:8.3f} ms/req")
    if args.top:
        stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    sys.exit(main())
