"""The built-in templates under seeds/templates: well formed, valid and rich enough."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.generation import compile_definition, generate, validate_attributes

SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "templates"
FILES = sorted(SEEDS.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_at_least_five_templates_covering_every_field_type() -> None:
    assert len(FILES) >= 5
    types = {field["type"] for path in FILES for field in load(path)["definition"]["fields"]}
    assert types == {"integer", "choice", "pick", "boolean", "text", "name", "derived"}


def test_slugs_are_unique_and_match_file_names() -> None:
    slugs = [load(path)["slug"] for path in FILES]
    assert len(set(slugs)) == len(slugs)
    for path in FILES:
        assert load(path)["slug"] == path.stem


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_template_file_shape(path: Path) -> None:
    template = load(path)
    assert set(template) == {"slug", "name", "description", "tags", "definition"}
    assert re.fullmatch(r"[a-z0-9-]{1,64}", template["slug"])
    assert 1 <= len(template["name"]) <= 100
    assert len(template["description"]) <= 2000
    assert len(template["tags"]) <= 10
    assert all(re.fullmatch(r"[a-z0-9-]{1,30}", tag) for tag in template["tags"])


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_compiles_and_generates_1000_characters(path: Path) -> None:
    template = load(path)
    compiled = compile_definition(template["definition"])
    names = set()
    for seed in range(1000):
        result = generate(compiled, seed, template_name=template["name"])
        names.add(result.name)
        assert 1 <= len(result.name) <= 100
        json.dumps(result.attributes)
        if seed % 100 == 0:
            editable = {key: value for key, value in result.attributes.items() if value is not None}
            derived = {
                field["key"]
                for field in template["definition"]["fields"]
                if field["type"] == "derived"
            }
            supplied = {key: value for key, value in editable.items() if key not in derived}
            assert (
                validate_attributes(compiled, supplied, seed, template_name=template["name"])
                == result
            )
    assert len(names) > 500, "names should be varied"
