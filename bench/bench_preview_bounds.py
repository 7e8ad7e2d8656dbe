"""What the costliest definitions within the documented limits cost a 50-item preview.

A definition is at most 64 KiB, 200 fields, 1,000 options per list and a grammar of at most
5,000 expansion steps, yet what it makes can be far larger than itself. For each definition
below, built to cost the most of one kind, this script asks `POST /templates/{id}/preview` for
`count=50` and prints the status, the wall time, the response's size and the process's peak
memory (each definition in a fresh process, so peaks do not carry over):

* ``builtin``: the built-in 30-field "classic-fantasy-hero" (the everyday case);
* ``picks``: 199 `pick` fields each taking all 1,000 options of one shared table (~10 MB of
  attributes per character);
* ``grammar``: 199 `text` fields whose grammar takes ~4,700 steps, each writing 100 characters;
* ``grammar-short``: the same, each step writing one character;
* ``grammar-empty``: the same, each step writing nothing (all work, no size);
* ``grammar-cut``: 199 `text` fields of `max_length` 1 whose grammar would write ~195 MB each
  in 4,991 steps (expansion stops at `max_length`);
* ``dice``: 199 `integer` fields of twelve exploding `100d1000!` terms (all work, no size);
* ``names``: 199 `name` fields of a generator of 9,099 part lists (all work, no size).

The service refuses a character over 1 MiB and a preview over 4 MiB of attributes, and a
preview whose characters could cost more than 2,000,000 units of work in all (a die thrown, a
grammar step, a name part, an option weighed: ``CompiledTemplate.cost``), with a 422 at `count`
naming the largest count that fits (``app.character_templates.service``). When the 422 names
one, the script asks again with that count, so the second table shows the costliest preview
the service answers for each definition. The app runs in this process (Flask's test client) on
a fresh SQLite database; no server is needed.

Usage (from the repository root)::

    .venv/bin/python bench/bench_preview_bounds.py [--only picks,dice]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(_BENCH.parent), str(_BENCH)]

import bench_http  # noqa: E402

FIELDS = 199  # and the name field the app adds nothing for: the limit is 200
BUILTIN = "Classic Fantasy Hero"


def _fan_out(literal: str) -> dict[str, list[str]]:
    """A grammar of 1 + 8 + 64 + 512 + 4096 = 4,681 steps (the limit is 5,000)."""
    return {
        "origin": ["#a#" * 8],
        "a": ["#b#" * 8],
        "b": ["#c#" * 8],
        "c": ["#d#" * 8],
        "d": [literal],
    }


def definitions() -> dict[str, dict[str, Any] | None]:
    table = [f"{index:04d}{'x' * 41}" for index in range(1000)]
    return {
        "builtin": None,
        "picks": {
            "tables": {"t": table},
            "fields": [
                {"key": f"f{i}", "type": "pick", "table": "t", "count": 1000} for i in range(FIELDS)
            ],
        },
        "grammar": {
            "grammars": {"g": _fan_out("x" * 100)},
            "fields": [{"key": f"f{i}", "type": "text", "grammar": "g"} for i in range(FIELDS)],
        },
        "grammar-short": {
            "grammars": {"g": _fan_out("x")},
            "fields": [{"key": f"f{i}", "type": "text", "grammar": "g"} for i in range(FIELDS)],
        },
        "grammar-empty": {
            "grammars": {"g": _fan_out("")},
            "fields": [{"key": f"f{i}", "type": "text", "grammar": "g"} for i in range(FIELDS)],
        },
        "grammar-cut": {
            "grammars": {"g": {"origin": ["#b#" * 4990], "b": ["x" * 39022]}},
            "fields": [
                {"key": f"f{i}", "type": "text", "grammar": "g", "max_length": 1}
                for i in range(FIELDS)
            ],
        },
        "names": {
            # a name must be able to be non-empty: one list of "b", then 9,098 that may add
            # nothing (each list is drawn from even when it has one part)
            "names": {"n": {"parts": [["b"]] + [["", "a"]] * 98 + [[""]] * 9000}},
            "fields": [{"key": f"f{i}", "type": "name", "generator": "n"} for i in range(FIELDS)],
        },
        "dice": {
            "fields": [
                {"key": f"f{i}", "type": "integer", "dice": "+".join(["100d1000!"] * 12)}
                for i in range(FIELDS)
            ]
        },
    }


def measure(key: str, database_url: str) -> dict[str, Any]:
    """Run in a fresh process: one preview of 50 from definition ``key``."""
    os.environ.update(bench_http.server_env(database_url, None))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cf-bench-metrics-")
    from profile_requests import test_client_caller

    from app import create_app

    client = create_app().test_client()
    call = test_client_caller(client)
    token, _ = bench_http.create_user(call, f"preview-{key}")
    definition = definitions()[key]
    if definition is None:
        listed = bench_http.expect(
            *call("GET", "/api/v1/templates?page_size=100", None, token), 200, "templates"
        )
        template_id = next(t["id"] for t in listed if t["name"] == BUILTIN)
        size = None
    else:
        body = {"name": f"worst {key}", "definition": definition}
        created = bench_http.expect(*call("POST", "/api/v1/templates", body, token), 201, key)
        template_id = created["id"]
        size = len(json.dumps(definition, separators=(",", ":")))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def preview(count: int) -> dict[str, Any]:
        start = time.perf_counter()
        response = client.post(
            f"/api/v1/templates/{template_id}/preview",
            json={"seed": 1, "count": count},
            headers={"Authorization": f"Bearer {token}"},
        )
        wall = time.perf_counter() - start
        errors = {}
        if response.status_code != 200:
            errors = response.get_json().get("errors", {}).get("json", {})
        return {
            "count": count,
            "status": response.status_code,
            "seconds": wall,
            "response_mb": len(response.get_data()) / 1e6,
            "errors": {member: text[0] for member, text in errors.items()},
        }

    asked = preview(50)
    fits = re.search(r"ask for at most (\d+)", asked["errors"].get("count", ""))
    answered = preview(int(fits[1])) if fits else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "key": key,
        "definition_bytes": size,
        "asked": asked,
        "answered": answered,
        "peak_rss_mib": peak / 1024,
        "rss_growth_mib": (peak - before) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(definitions()), help="comma-separated keys")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure in this process
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.database_url)))
        return 0

    keys = [key for key in args.only.split(",") if key]
    unknown = set(keys) - set(definitions())
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    rows = []
    for key in keys:
        with tempfile.TemporaryDirectory(prefix="cf-bench-preview-") as directory:
            url = f"sqlite:///{directory}/bench.sqlite"
            bench_http.migrate_and_seed(bench_http.server_env(url, None))
            result = subprocess.run(
                [sys.executable, __file__, "--one", key, "--database-url", url],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                raise SystemExit(f"{key} failed:\n{result.stdout}\n{result.stderr}")
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))

    print("\nPOST /templates/{id}/preview, seed=1 (in-process, SQLite)\n")
    print(
        "| definition | its size | count=50: status, seconds, MB "
        "| the count it names: status, seconds, MB | peak RSS MiB | grew MiB |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        size = f"{row['definition_bytes'] / 1024:.1f} KiB" if row["definition_bytes"] else "-"
        print(
            f"| {row['key']} | {size} | {_shown(row['asked'])} | {_shown(row['answered'])} "
            f"| {row['peak_rss_mib']:.0f} | {row['rss_growth_mib']:.0f} |"
        )
    for row in rows:
        for member, text in row["asked"]["errors"].items():
            print(f"  {row['key']}: {member}: {text}")
    return 0


def _shown(result: dict[str, Any] | None) -> str:
    if result is None:
        return "-"
    where = "".join(f" at {member}" for member in result["errors"])
    return (
        f"{result['count']}: {result['status']}{where}, {result['seconds']:.2f} s, "
        f"{result['response_mb']:.2f} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
