"""Golden files: exact outputs that must never change under the same generator version.

Each file under golden/ holds (definition, seed, locks, rerolls) and the exact result. If one of
these tests fails, the change altered what existing seeds produce: keep the old behaviour for
generator version "1" and put the new algorithm under a new version instead of editing the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.generation import SUPPORTED_GENERATOR_VERSIONS, batch_seed, compile_definition, generate
from app.generation.rng import stream_v1

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(
    path for path in GOLDEN.glob("[0-9]*.json") if "expected" in json.loads(path.read_text())
)


def canonical(value: object) -> str:
    """JSON text that tells 4 from 4.0 and keeps key order."""
    return json.dumps(value, ensure_ascii=False)


def test_there_are_at_least_ten_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_golden_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case["generator_version"] in SUPPORTED_GENERATOR_VERSIONS
    result = generate(
        compile_definition(case["definition"]),
        case["seed"],
        locks=case["locks"],
        rerolls=case["rerolls"],
        template_name=case["template_name"],
        generator_version=case["generator_version"],
    )
    assert result.name == case["expected"]["name"]
    assert canonical(result.attributes) == canonical(case["expected"]["attributes"])


def test_golden_batch() -> None:
    case = json.loads((GOLDEN / "13-batch.json").read_text(encoding="utf-8"))
    compiled = compile_definition(case["definition"])
    for index, expected in enumerate(case["expected_batch"]):
        seed = batch_seed(case["seed"], index)
        assert seed == expected["seed"]
        result = generate(compiled, seed, generator_version=case["generator_version"])
        assert result.name == expected["name"]
        assert canonical(result.attributes) == canonical(expected["attributes"])
    assert case["expected_batch"][0]["seed"] == case["seed"]


def test_golden_streams() -> None:
    data = json.loads((GOLDEN / "rng-v1.json").read_text(encoding="utf-8"))
    for item in data["streams"]:
        stream = stream_v1(item["seed"], item["key"], item["reroll"])
        assert [str(stream.next64()) for _ in range(6)] == item["words"]
        stream = stream_v1(item["seed"], item["key"], item["reroll"])
        draws = (
            [stream.below(6) for _ in range(6)]
            + [stream.between(-10, 10) for _ in range(6)]
            + [stream.below(2**64) for _ in range(2)]
        )
        assert [str(draw) for draw in draws] == item["draws"]
    batch = data["batch_seeds"]
    assert [batch_seed(batch["seed"], index) for index in range(8)] == batch["seeds"]


def test_the_docs_first_example_output_is_current() -> None:
    """docs/templates.md shows the character that its first example makes from seed 0."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "templates.md").read_text(
        encoding="utf-8"
    )
    section = docs.split("## A first template", 1)[1]
    definition = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    shown = section.split("generator version 1) is\n`", 1)[1].split("` —", 1)[0]
    result = generate(compile_definition(definition), 0)
    assert canonical(result.attributes) == canonical(json.loads(shown.replace("\n", " ")))
