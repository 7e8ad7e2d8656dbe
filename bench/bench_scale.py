"""Scale run: list latencies with 10,000 vs 1,000,000 characters in PostgreSQL.

Bulk-loads users and characters with COPY (not through the API) into two fresh databases on
the server at BENCH_DATABASE_URL — a small one (10,000 characters, 100 users) and a large one
(1,000,000 characters, 10,000 users; 100 characters per user in both, half of them public) —
then times the list endpoints in-process through the app (Flask's test client, so HTTP and
worker noise stay out of the figures) and prints each scenario's median latency at both sizes
and the ratio. Target: every ratio ≤ 2.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/bench_scale.py [--rounds 5] [--repeat 5] [--keep | --reuse] \
        [--sweep N]

``--sweep N`` also times searches for N random name fragments, from rare to common, and prints
how their ratios are spread: one fixed fragment per scenario could be a lucky one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYLLABLES = [
    "al", "an", "bar", "bel", "cor", "da", "el", "fin", "gar", "hal", "is", "jor", "ka", "lin",
    "mor", "na", "or", "pel", "quin", "ra", "sil", "tor", "ul", "val", "wen", "xan", "yr", "zor",
]  # fmt: skip
PER_USER = 100
RARE_NAMES = 5
SECRET = "scale-benchmark-secret-key-0123456789abcdefghij"


def connect(url: str):
    parsed = make_url(url)
    return psycopg2.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    )


def create_database(server_url: str, name: str) -> str:
    conn = connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    conn = connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def make_app(database_url: str):
    from app import create_app

    return create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": SECRET,
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            "INSTANCE_PATH": tempfile.mkdtemp(prefix="cf-scale-"),
            "METRICS_ENABLED": "false",
            "DB_STATEMENT_TIMEOUT_MS": "60000",
        }
    )


def migrate(database_url: str) -> None:
    from flask_migrate import upgrade

    app = make_app(database_url)
    with app.app_context():
        upgrade()
        from app.extensions import db

        db.engine.dispose()


def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_value(value) for value in row))
        buffer.write("\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def _copy_value(value) -> str:
    if value is None:
        return r"\N"
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def load(database_url: str, users: int, seed: int = 7) -> dict:
    """Users and their characters, COPYed in batches; returns ids the scenarios use."""
    from argon2 import PasswordHasher

    rng = random.Random(seed)
    password_hash = PasswordHasher().hash("benchmark password")
    now = datetime.now(UTC)
    user_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(users)]
    conn = connect(database_url)
    with conn, conn.cursor() as cursor:
        copy_rows(
            cursor,
            "users",
            ["id", "email", "username", "username_key", "password_hash", "display_name", "bio",
             "role", "is_active", "created_at", "updated_at", "row_version"],
            (
                (uid, f"user{i}@example.com", f"user{i}", f"user{i}", password_hash, f"User {i}",
                 "", "user", "t", now.isoformat(), now.isoformat(), 1)
                for i, uid in enumerate(user_ids)
            ),
        )  # fmt: skip
        batch = []
        for index, owner in enumerate(user_ids):
            for _ in range(PER_USER):
                name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).title()
                created = now - timedelta(seconds=rng.randint(0, 365 * 86400))
                batch.append(
                    (
                        uuid.UUID(int=rng.getrandbits(128), version=4),
                        owner,
                        name,
                        json.dumps({"level": rng.randint(1, 20), "klass": rng.choice(["A", "B"])}),
                        "",
                        "t" if rng.random() < 0.5 else "f",
                        created.isoformat(),
                        created.isoformat(),
                        1,
                    )
                )
            if index < RARE_NAMES:  # the same few rare names at every size: "a specific name"
                batch[-1] = (batch[-1][0], owner, f"Zyxwyvern {index}", *batch[-1][3:5], "t",
                             *batch[-1][6:])  # fmt: skip
            if len(batch) >= 100_000 or index == len(user_ids) - 1:
                copy_rows(
                    cursor,
                    "characters",
                    ["id", "owner_id", "name", "attributes", "backstory", "is_public",
                     "created_at", "updated_at", "row_version"],
                    batch,
                )  # fmt: skip
                batch = []
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    conn.close()
    return {"user_id": user_ids[0]}


def login_token(app, user_id) -> str:
    from flask_jwt_extended import create_access_token

    from app.auth.models import LoginSession
    from app.extensions import db

    with app.app_context():
        session = LoginSession(
            user_id=user_id,
            refresh_jti=uuid.uuid4(),
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
        db.session.add(session)
        db.session.commit()
        with app.test_request_context():
            return create_access_token(
                identity=str(user_id), additional_claims={"sid": str(session.id)}
            )


SCENARIOS = {
    "public, page 1": "/api/v1/characters?scope=public",
    "public, page 50": "/api/v1/characters?scope=public&page=50",
    "public, deepest page": "/api/v1/characters?scope=public&page={deepest}",
    "public, sort=name": "/api/v1/characters?scope=public&sort=name",
    "public, q a specific name": "/api/v1/characters?scope=public&q=zyxwyvern",
    "public, q in 0.3% of names": "/api/v1/characters?scope=public&q=quinzor",
    "public, q in 20% of names": "/api/v1/characters?scope=public&q=an",
    "public, q two letters, no match": "/api/v1/characters?scope=public&q=xq",
    "public, q one letter, no match": "/api/v1/characters?scope=public&q=%C3%BC",
    "own list": "/api/v1/characters",
    "own list, q": "/api/v1/characters?q=or",
}


class Target:
    """One loaded database, with an app and a token to query it."""

    def __init__(self, database_url: str, user_id) -> None:
        self.app = make_app(database_url)
        self.client = self.app.test_client()
        self.headers = {"Authorization": f"Bearer {login_token(self.app, user_id)}"}
        first = self.client.get(SCENARIOS["public, page 1"], headers=self.headers)
        self.deepest = json.loads(first.headers["X-Pagination"])["last_page"]

    def time_url(self, url: str, repeat: int) -> tuple[float, dict]:
        timings = []
        response = None
        for _ in range(repeat):
            started = time.perf_counter()
            response = self.client.get(url, headers=self.headers)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.get_json())
        return statistics.median(timings), json.loads(response.headers["X-Pagination"])

    def close(self) -> None:
        from app.extensions import db

        with self.app.app_context():
            db.engine.dispose()


def interleave(
    small: Target, large: Target, urls: dict[str, str], rounds: int, repeat: int
) -> dict[str, dict]:
    """Each round times every URL on both sizes back to back, so the noise of this machine hits
    both alike. Per name: the timings at each size, the per-round ratios and the last
    X-Pagination at 1M. A URL may name ``{deepest}``, each size's deepest page served."""
    results: dict[str, dict] = {name: {"small": [], "large": [], "ratio": []} for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            small_ms, _ = small.time_url(url.format(deepest=small.deepest), repeat)
            large_ms, meta = large.time_url(url.format(deepest=large.deepest), repeat)
            entry = results[name]
            entry["small"].append(small_ms)
            entry["large"].append(large_ms)
            entry["ratio"].append(large_ms / small_ms)
            entry["meta"] = meta
    return results


def measure(small: Target, large: Target, rounds: int, repeat: int) -> dict[str, dict]:
    """The scenarios, interleaved; reported as medians over rounds and the median ratio."""
    return interleave(small, large, SCENARIOS, rounds, repeat)


def sweep(small: Target, large: Target, count: int, repeat: int, seed: int = 11) -> list[tuple]:
    """Searches for ``count`` random fragments of two and of three syllables, half each (a fixed
    share of the names at both sizes: about 0.003% to 0.3%), interleaved over 3 rounds:
    (fragment, 10k ms, 1M ms, ratio, X-Pagination at 1M), worst ratio first."""
    rng = random.Random(seed)
    pairs = [a + b for a in SYLLABLES for b in SYLLABLES]
    fragments = rng.sample(pairs, count - count // 2)
    fragments += [a + b + c for a, b, c in (rng.sample(SYLLABLES, 3) for _ in range(count // 2))]
    urls = {fragment: f"/api/v1/characters?scope=public&q={fragment}" for fragment in fragments}
    timings = interleave(small, large, urls, 3, repeat)
    rows = [
        (
            fragment,
            statistics.median(entry["small"]),
            statistics.median(entry["large"]),
            statistics.median(entry["ratio"]),
            entry["meta"],
        )
        for fragment, entry in timings.items()
    ]
    return sorted(rows, key=lambda row: row[3], reverse=True)


def print_sweep(rows: list[tuple]) -> None:
    ratios = sorted(row[3] for row in rows)
    over = sum(ratio > 2 for ratio in ratios)
    p90 = ratios[min(len(ratios) - 1, int(0.9 * len(ratios)))]
    print(
        f"\nsweep: {len(rows)} fragments of 2-3 syllables, public, q=…: ratio median "
        f"{statistics.median(ratios):.2f}, p90 {p90:.2f}, max {ratios[-1]:.2f}; over 2x: {over}"
    )
    print(f"{'fragment':14} {'10k ms':>8} {'1M ms':>8} {'ratio':>6}  total at 1M  (worst 8)")
    for fragment, small, large, ratio, meta in rows[:8]:
        total = f"{meta['total']:,}" + ("" if meta.get("total_exact", True) else " (estimate)")
        print(f"{fragment:14} {small:8.2f} {large:8.2f} {ratio:6.2f}  {total}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="requests per scenario per round")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse databases kept by --keep")
    parser.add_argument(
        "--sweep", type=int, default=0, metavar="N", help="also time N random search fragments"
    )
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL")
    if not server:
        print("set BENCH_DATABASE_URL to a PostgreSQL server URL", file=sys.stderr)
        return 2
    targets = {}
    for label, characters in (("small", args.small), ("large", args.large)):
        name = f"cf_scale_{label}"
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        if not args.reuse:
            url = create_database(server, name)
            migrate(url)
            started = time.perf_counter()
            load(url, users=max(1, characters // PER_USER))
            elapsed = time.perf_counter() - started
            print(f"{label}: loaded {characters:,} characters in {elapsed:.0f} s")
        else:
            migrate(url)  # databases kept by an older release: bring the schema up to date
        conn = connect(url)
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM users ORDER BY email LIMIT 1")
            user_id = cursor.fetchone()[0]
        conn.close()
        targets[label] = Target(url, user_id)
    results = measure(targets["small"], targets["large"], args.rounds, args.repeat)
    swept = sweep(targets["small"], targets["large"], args.sweep, args.repeat) if args.sweep else []
    for target in targets.values():
        target.close()
    if not (args.keep or args.reuse):
        for label in targets:
            drop_database(server, f"cf_scale_{label}")

    print()
    print(f"{args.rounds} rounds x {args.repeat} requests, interleaved; medians")
    print(f"{'scenario':30} {'10k ms':>8} {'1M ms':>8} {'ratio':>6}  total at 1M")
    worst = 0.0
    for scenario, entry in results.items():
        small = statistics.median(entry["small"])
        large = statistics.median(entry["large"])
        ratio = statistics.median(entry["ratio"])
        worst = max(worst, ratio)
        meta = entry["meta"]
        total = f"{meta['total']:,}" + ("" if meta.get("total_exact", True) else " (estimate)")
        flag = "" if ratio <= 2 else "  <- over 2x"
        print(f"{scenario:30} {small:8.2f} {large:8.2f} {ratio:6.2f}  {total}{flag}")
    if swept:
        print_sweep(swept)
    print(f"\nworst ratio {worst:.2f} (target <= 2.0): {'PASS' if worst <= 2 else 'FAIL'}")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
