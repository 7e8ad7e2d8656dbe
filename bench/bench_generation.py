"""Benchmark the generation engine on a 30-field template.

Uses the built-in "classic-fantasy-hero" template (30 fields: dice, switches, derived modifiers,
picks, a grammar) and measures, in this process:

* compiling the definition (``compile_definition``), budget < 5 ms;
* generating one character from the compiled form (``generate``), budget < 1 ms;
* generating with locks and rerolls, a 50-item preview batch, and re-validating a PATCH
  (``validate_attributes`` with a stored base).

Each figure is the median of several rounds (and the best round), per call; the ratio column is
the figure divided by its budget (below 1.0 is within budget).

Usage (from the repository root)::

    .venv/bin/python bench/bench_generation.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO_ROOT))

from app.generation import (  # noqa: E402
    batch_seed,
    compile_definition,
    generate,
    validate_attributes,
)

TEMPLATE = _REPO_ROOT / "seeds" / "templates" / "classic-fantasy-hero.json"


def per_call(function: Callable[[int], object], calls: int, rounds: int) -> tuple[float, float]:
    """Median and best seconds per call over ``rounds`` rounds of ``calls`` calls."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for index in range(calls):
            function(index)
        results.append((time.perf_counter() - start) / calls)
    return statistics.median(results), min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    template = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    definition = template["definition"]
    compiled = compile_definition(definition)
    size = len(json.dumps(definition, separators=(",", ":")).encode())
    print(f"template: {template['slug']}, {len(compiled.keys)} fields, {size} bytes")
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds\n")

    base = generate(compiled, 1).attributes
    locks = {"klass": "Wizard", "con": 16, "name": "Zed"}
    rerolls = {"str": 2, "hook": 1}
    rows = [
        ("compile_definition", lambda i: compile_definition(definition), 200, 5e-3),
        ("generate", lambda i: generate(compiled, i), 5000, 1e-3),
        (
            "generate + locks + rerolls",
            lambda i: generate(compiled, i, locks=locks, rerolls=rerolls),
            5000,
            1e-3,
        ),
        (
            "validate_attributes (PATCH)",
            lambda i: validate_attributes(
                compiled, {"klass": "Rogue", "hit_points": None}, 1, base=base
            ),
            5000,
            1e-3,
        ),
        (
            "preview batch of 50",
            lambda i: [generate(compiled, batch_seed(i, index)) for index in range(50)],
            50,
            50e-3,
        ),
    ]
    print(f"{'operation':32} {'median':>10} {'best':>10} {'budget':>10} {'ratio':>7}")
    for label, function, calls, budget in rows:
        function(0)  # warm up
        median, best = per_call(function, calls, args.rounds)
        print(
            f"{label:32} {median * 1e3:8.3f}ms {best * 1e3:8.3f}ms "
            f"{budget * 1e3:8.1f}ms {median / budget:7.3f}"
        )
    median, _ = per_call(lambda i: generate(compiled, i), 5000, args.rounds)
    print(f"\ncharacters per second (one core): {1 / median:,.0f}")


if __name__ == "__main__":
    main()
