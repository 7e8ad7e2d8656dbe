"""Generation, locks, rerolls and validation of edits (API.md sections 4 and 5)."""

from __future__ import annotations

import ast
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from app.generation import (
    GENERATOR_VERSION,
    MAX_SEED,
    SUPPORTED_GENERATOR_VERSIONS,
    AttributesError,
    Result,
    compile_definition,
    generate,
    validate_attributes,
)
from app.generation import engine as engine_module

from .helpers import example

COMPILED = compile_definition(example())


def errors_of(call: Any, *args: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(AttributesError) as caught:
        call(*args, **kwargs)
    return caught.value.errors


def seed_where(predicate: Any, **kwargs: Any) -> tuple[int, Result]:
    for seed in range(10_000):
        result = generate(COMPILED, seed, **kwargs)
        if predicate(result.attributes):
            return seed, result
    raise AssertionError("no seed found")


def test_public_constants() -> None:
    assert GENERATOR_VERSION == "1"
    assert GENERATOR_VERSION in SUPPORTED_GENERATOR_VERSIONS
    assert MAX_SEED == 2**53 - 1


def test_result_shape_and_json_types() -> None:
    result = generate(COMPILED, 1234)
    assert isinstance(result, Result)
    assert list(result.attributes) == list(COMPILED.keys)
    assert result.name == result.attributes["name"]
    assert json.loads(json.dumps(result.attributes)) == result.attributes
    attributes = result.attributes
    assert 3 <= attributes["str"] <= 18
    assert attributes["con_mod"] == (attributes["con"] - 10) // 2
    assert type(attributes["left_handed"]) is bool
    assert attributes["hook"].startswith(attributes["name"] + " left ")


def test_same_inputs_same_output() -> None:
    assert generate(COMPILED, 99) == generate(compile_definition(example()), 99)
    assert generate(COMPILED, 99) != generate(COMPILED, 100)


def test_seed_and_version_are_checked() -> None:
    for bad in (-1, MAX_SEED + 1, True, 1.0, "1"):
        with pytest.raises(ValueError, match="seed"):
            generate(COMPILED, bad)  # type: ignore[arg-type]
    generate(COMPILED, MAX_SEED)
    with pytest.raises(ValueError, match="generator version"):
        generate(COMPILED, 1, generator_version="0")


def test_when_false_fields_are_null_and_true_ones_generated() -> None:
    _, fighter = seed_where(lambda a: a["klass"] != "Wizard")
    assert fighter.attributes["spells"] is None
    _, wizard = seed_where(lambda a: a["klass"] == "Wizard")
    spells = wizard.attributes["spells"]
    assert len(spells) == 2 and len(set(spells)) == 2
    assert set(spells) <= {"Shield", "Sleep", "Light"}


def test_switch_selects_dice() -> None:
    for seed in range(300):
        attributes = generate(COMPILED, seed).attributes
        faces = {"Fighter": 10, "Wizard": 6}.get(attributes["klass"], 8)
        low = max(1, 1 + attributes["con_mod"])
        assert low <= attributes["hit_points"] <= max(1, faces + attributes["con_mod"])


def test_locks_fix_values_and_feed_dependents() -> None:
    result = generate(COMPILED, 5, locks={"klass": "Wizard", "con": 18, "name": "Zed"})
    assert result.attributes["klass"] == "Wizard"
    assert result.attributes["con_mod"] == 4
    assert 5 <= result.attributes["hit_points"] <= 10
    assert result.name == "Zed"
    assert result.attributes["hook"].startswith("Zed left ")
    assert result.attributes["spells"] is not None


def test_a_lock_of_null_is_no_lock() -> None:
    assert generate(COMPILED, 5, locks={"klass": None}) == generate(COMPILED, 5)


@pytest.mark.parametrize(
    ("locks", "key", "fragment"),
    [
        ({"nope": 1}, "nope", "Unknown field."),
        ({"str": 19}, "str", "between 3 and 18"),
        ({"str": 2}, "str", "between 3 and 18"),
        ({"str": "12"}, "str", "must be an integer"),
        ({"str": 12.0}, "str", "must be an integer"),
        ({"str": True}, "str", "must be an integer"),
        ({"age": 71}, "age", "between 16 and 70"),
        ({"klass": "Bard"}, "klass", "must be one of 'Fighter', 'Wizard', 'Rogue'"),
        ({"klass": 1}, "klass", "must be one of"),
        ({"con_mod": 3}, "con_mod", "is derived; it cannot be set"),
        (
            {"klass": "Fighter", "spells": ["Shield", "Sleep"]},
            "spells",
            "'when' condition is false",
        ),
        ({"klass": "Wizard", "spells": ["Shield"]}, "spells", "list of 2 distinct values"),
        ({"klass": "Wizard", "spells": ["Shield", "Shield"]}, "spells", "duplicates"),
        (
            {"klass": "Wizard", "spells": ["Shield", "Fireball"]},
            "spells",
            "'Fireball' is not one of",
        ),
        ({"klass": "Wizard", "spells": "Shield"}, "spells", "list of 2"),
        ({"traits": ["brave", 3]}, "traits", "3 is not one of"),
        ({"left_handed": 1}, "left_handed", "true or false"),
        ({"left_handed": "true"}, "left_handed", "true or false"),
        ({"name": ""}, "name", "non-empty string"),
        ({"name": "x" * 101}, "name", "at most 100"),
        ({"motto": "x" * 201}, "motto", "at most 200"),
        ({"hook": 5}, "hook", "at most 10000"),
        ({"klass": "Fighter", "con": 3, "hit_points": 10}, "hit_points", "between 1 and 6"),
    ],
)
def test_invalid_locks(locks: dict, key: str, fragment: str) -> None:
    errors = errors_of(generate, COMPILED, 1, locks=locks)
    assert any(fragment in message for message in errors[key]), errors


def test_every_problem_is_collected() -> None:
    errors = errors_of(generate, COMPILED, 1, locks={"str": 30, "con_mod": 1, "x": 1, "age": "old"})
    assert set(errors) == {"str", "con_mod", "x", "age"}


def test_locks_must_be_an_object() -> None:
    errors = errors_of(generate, COMPILED, 1, locks=["str"])
    assert errors == {"_schema": ["attributes must be an object"]}


def test_plus_and_clamp_bounds_for_locks() -> None:
    # con 18 -> con_mod 4; Fighter 1d10 + 4 -> 5..14
    generate(COMPILED, 1, locks={"klass": "Fighter", "con": 18, "hit_points": 14})
    generate(COMPILED, 1, locks={"klass": "Fighter", "con": 18, "hit_points": 5})
    errors = errors_of(
        generate, COMPILED, 1, locks={"klass": "Fighter", "con": 18, "hit_points": 4}
    )
    assert errors["hit_points"] == ["must be between 5 and 14"]
    # con 3 -> con_mod -4; Wizard 1d6 - 4 -> -3..2, clamped by min 1 -> 1..2
    generate(COMPILED, 1, locks={"klass": "Wizard", "con": 3, "hit_points": 1})
    errors = errors_of(generate, COMPILED, 1, locks={"klass": "Wizard", "con": 3, "hit_points": 3})
    assert errors["hit_points"] == ["must be between 1 and 2"]


def test_boolean_locks_must_be_possible() -> None:
    definition = {
        "fields": [
            {"key": "never", "type": "boolean", "chance": [0, 5]},
            {"key": "always", "type": "boolean", "chance": [5, 5]},
        ]
    }
    compiled = compile_definition(definition)
    assert generate(compiled, 1).attributes == {"never": False, "always": True}
    generate(compiled, 1, locks={"never": False, "always": True})
    errors = errors_of(generate, compiled, 1, locks={"never": True, "always": False})
    assert errors == {"never": ["can only be false"], "always": ["can only be true"]}


# ---------------------------------------------------------------------------------------------
# rerolls and stability


def test_reroll_changes_only_the_field_and_its_dependents() -> None:
    base = generate(COMPILED, 42).attributes
    changed = set()
    for number in range(1, 6):
        rerolled = generate(COMPILED, 42, rerolls={"con": number}).attributes
        for key in COMPILED.keys:
            if rerolled[key] != base[key]:
                changed.add(key)
    assert "con" in changed
    assert changed <= {"con"} | COMPILED.dependents("con")
    assert generate(COMPILED, 42, rerolls={"con": 0}).attributes == base


@pytest.mark.parametrize(
    ("rerolls", "key", "fragment"),
    [
        ({"nope": 1}, "nope", "Unknown field"),
        ({"con_mod": 1}, "con_mod", "derived"),
        ({"str": -1}, "str", "integer from 0"),
        ({"str": True}, "str", "integer from 0"),
        ({"str": 1.0}, "str", "integer from 0"),
        ({"str": 2**53}, "str", "integer from 0"),
    ],
)
def test_invalid_rerolls(rerolls: dict, key: str, fragment: str) -> None:
    errors = errors_of(generate, COMPILED, 1, rerolls=rerolls)
    assert any(fragment in message for message in errors[key])


def test_rerolls_must_be_an_object() -> None:
    assert errors_of(generate, COMPILED, 1, rerolls=[1]) == {
        "_schema": ["rerolls must be an object"]
    }


def test_adding_a_field_anywhere_leaves_the_others_unchanged() -> None:
    base = [generate(COMPILED, seed).attributes for seed in range(30)]
    extra = {"key": "zeal", "type": "integer", "dice": "3d6"}
    for position in (0, 4, len(COMPILED.keys)):
        definition = example()
        definition["fields"].insert(position, extra)
        compiled = compile_definition(definition)
        for seed in range(30):
            attributes = generate(compiled, seed).attributes
            assert {key: value for key, value in attributes.items() if key != "zeal"} == base[seed]


# ---------------------------------------------------------------------------------------------
# names


def test_name_falls_back_to_template_name_and_number() -> None:
    compiled = compile_definition({"fields": [{"key": "a", "type": "integer", "dice": "d6"}]})
    names = {generate(compiled, seed, template_name="Guard").name for seed in range(50)}
    for name in names:
        prefix, number = name.split(" #")
        assert prefix == "Guard"
        assert 1 <= int(number) <= 9999
    assert len(names) > 40
    assert generate(compiled, 7).name == generate(compiled, 7).name
    assert generate(compiled, 7).name.startswith("Character #")


def test_null_name_field_falls_back_too() -> None:
    definition = {
        "names": {"n": {"parts": [["Al", "Bo"]]}},
        "fields": [
            {"key": "named", "type": "boolean", "chance": [0, 1]},
            {"key": "name", "type": "name", "generator": "n", "when": "named"},
        ],
    }
    result = generate(compile_definition(definition), 3, template_name="Ghost")
    assert result.attributes["name"] is None
    assert result.name.startswith("Ghost #")


def test_generated_names_are_cleaned_like_the_names_users_send() -> None:
    # a name a client sends is cleaned (NFC, no control characters, trimmed) and 1..100
    # characters: a generated one is too, so that sending it back stores it unchanged
    definition = {
        "names": {"n": {"parts": [[" Al\u0007", "Re\u0301"], ["my", "ric "]]}},
        "grammars": {"g": {"origin": ["[#name#]"]}},
        "fields": [
            {"key": "name", "type": "name", "generator": "n"},
            {"key": "tag", "type": "text", "grammar": "g"},
        ],
    }
    compiled = compile_definition(definition)
    results = [generate(compiled, seed) for seed in range(40)]
    assert {result.name for result in results} == {"Almy", "Alric", "R\u00e9my", "R\u00e9ric"}
    for result in results:
        assert result.attributes["name"] == result.name
        assert result.attributes["tag"] == f"[{result.name}]"  # #name# inserts the cleaned name


def test_a_stored_generator_that_makes_blank_names_gives_the_fallback_name() -> None:
    # refused when saved today, but a template version stored before keeps generating: a name
    # that cleans to nothing is no name, so the field is null and the character gets the
    # template's fallback name
    definition = {
        "names": {"h": {"parts": [["   ", "\u0007\u0007"]]}},
        "fields": [{"key": "n", "type": "name", "generator": "h"}],
    }
    compiled = compile_definition(definition, stored=True)
    for seed in (1, 2):
        result = generate(compiled, seed, template_name="Blank")
        assert result.attributes["n"] is None
        assert result.name.startswith("Blank #")


def test_a_name_that_cleaning_makes_too_long_is_cut() -> None:
    # U+0958 is spelt with two code points in NFC: 60 of them are 120 characters cleaned
    compiled = compile_definition(
        {
            "names": {"h": {"parts": [["\u0958" * 60]]}},
            "fields": [{"key": "n", "type": "name", "generator": "h"}],
        },
        stored=True,
    )
    name = generate(compiled, 1).attributes["n"]
    assert name == unicodedata.normalize("NFC", "\u0958" * 60)[:100]


# ---------------------------------------------------------------------------------------------
# runtime failures and null governing fields


def test_runtime_failures_follow_the_documented_rules() -> None:
    definition = {
        "fields": [
            {"key": "zero", "type": "integer", "range": [0, 0]},
            {"key": "ratio", "type": "derived", "expr": "10 / zero"},
            {"key": "gated", "type": "integer", "range": [1, 6], "when": "10 // zero > 1"},
            {"key": "bonus", "type": "integer", "range": [1, 6], "plus": "10 // zero"},
            {"key": "half", "type": "derived", "expr": "7 / 2"},
            {"key": "whole", "type": "derived", "expr": "8 / 2"},
        ]
    }
    attributes = generate(compile_definition(definition), 1).attributes
    assert attributes["ratio"] is None
    assert attributes["gated"] is None
    assert attributes["bonus"] is None
    assert attributes["half"] == 3.5 and type(attributes["half"]) is float
    assert attributes["whole"] == 4 and type(attributes["whole"]) is int


def test_switch_on_a_null_field() -> None:
    definition = {
        "names": {"n": {"parts": [["Al"]]}},
        "fields": [
            {"key": "magic", "type": "boolean", "chance": [0, 1]},
            {"key": "school", "type": "choice", "options": ["fire", "ice"], "when": "magic"},
            {
                "key": "a",
                "type": "integer",
                "dice": {"switch": "school", "cases": {"fire": "1d6", "ice": "1d4"}},
            },
            {
                "key": "b",
                "type": "integer",
                "dice": {"switch": "school", "cases": {"fire": "1d6"}, "default": "1d2"},
            },
        ],
    }
    compiled = compile_definition(definition)
    attributes = generate(compiled, 1).attributes
    assert attributes["school"] is None
    assert attributes["a"] is None  # no default: the field is null
    assert 1 <= attributes["b"] <= 2  # the default applies
    errors = errors_of(generate, compiled, 1, locks={"a": 3})
    assert "has no value" in errors["a"][0]


def test_integer_overflow_makes_the_field_null() -> None:
    definition = {
        "fields": [
            {"key": "big", "type": "integer", "range": [2**53 - 1, 2**53 - 1]},
            {"key": "more", "type": "integer", "range": [1, 1], "plus": "big"},
            {"key": "capped", "type": "integer", "range": [1, 1], "plus": "big", "max": 10},
        ]
    }
    attributes = generate(compile_definition(definition), 1).attributes
    assert attributes["more"] is None
    assert attributes["capped"] == 10


def test_integer_values_beyond_the_safe_range_are_refused() -> None:
    # every result of `more` is beyond 2**53 - 1 (so it is null): no value can be set for it,
    # and no message names a bound beyond the safe range
    definition = {
        "fields": [
            {"key": "big", "type": "integer", "range": [2**53 - 1, 2**53 - 1]},
            {"key": "more", "type": "integer", "dice": "d6", "plus": "big"},
            {"key": "edge", "type": "integer", "range": [-3, 3], "plus": "big"},
        ]
    }
    compiled = compile_definition(definition)
    errors = errors_of(generate, compiled, 1, locks={"more": 2**53 + 1, "edge": 2**53 + 1})
    assert errors["more"] == ["can have no value here: every result is beyond +-(2**53 - 1)"]
    assert errors["edge"] == [f"must be between {2**53 - 4} and {2**53 - 1}"]
    assert generate(compiled, 1, locks={"edge": 2**53 - 1}).attributes["edge"] == 2**53 - 1


# ---------------------------------------------------------------------------------------------
# validate_attributes: POST with a template and PATCH


def test_missing_keys_are_generated_from_the_seed() -> None:
    generated = generate(COMPILED, 77)
    assert validate_attributes(COMPILED, {}, 77) == generated
    supplied = {key: value for key, value in generated.attributes.items() if key != "con_mod"}
    assert validate_attributes(COMPILED, supplied, 77) == generated


def test_generate_is_validate_attributes_with_locks() -> None:
    locks = {"klass": "Rogue", "str": 10}
    assert generate(COMPILED, 8, locks=locks) == validate_attributes(COMPILED, locks, 8)


def patch(base: dict, changes: dict, seed: int = 11) -> Result:
    return validate_attributes(COMPILED, changes, seed, base=base)


def stored(seed: int = 11, **locks: Any) -> dict:
    return generate(COMPILED, seed, locks=locks).attributes


def test_patch_keeps_stored_values_and_recomputes_derived() -> None:
    base = stored(klass="Fighter", con=12, hit_points=5)
    result = patch(base, {"con": 16})
    assert result.attributes["con_mod"] == 3
    assert result.attributes["hit_points"] == 5  # still valid: 1d10 + 3 -> 4..13
    assert {
        key: value for key, value in result.attributes.items() if key not in ("con", "con_mod")
    } == {key: value for key, value in base.items() if key not in ("con", "con_mod")}


def test_patch_drops_a_field_whose_when_turns_false() -> None:
    base = stored(klass="Wizard")
    assert base["spells"] is not None
    result = patch(base, {"klass": "Rogue", "hit_points": None})
    assert result.attributes["spells"] is None


def test_patch_generates_a_field_whose_when_turns_true() -> None:
    base = stored(klass="Rogue")
    result = patch(base, {"klass": "Wizard", "hit_points": None})
    assert (
        result.attributes["spells"]
        == generate(COMPILED, 11, locks={"klass": "Wizard"}).attributes["spells"]
    )


def test_patch_reports_a_stored_value_the_change_makes_invalid() -> None:
    base = stored(klass="Fighter", con=10, hit_points=10)
    errors = errors_of(patch, base, {"klass": "Wizard"})
    assert list(errors) == ["hit_points"]
    assert "no longer valid" in errors["hit_points"][0]
    assert "between 1 and 6" in errors["hit_points"][0]
    # the same PATCH may set it, or reset it with null
    assert patch(base, {"klass": "Wizard", "hit_points": 6}).attributes["hit_points"] == 6
    reset = patch(base, {"klass": "Wizard", "hit_points": None}).attributes["hit_points"]
    assert (
        reset
        == generate(COMPILED, 11, locks={"klass": "Wizard", "con": 10}).attributes["hit_points"]
    )


def test_patch_null_resets_to_the_generated_value() -> None:
    base = stored(str=3)
    fresh = generate(COMPILED, 11).attributes["str"]
    assert patch(base, {"str": None}).attributes["str"] == fresh


def test_patch_ignores_stored_derived_values() -> None:
    base = stored()
    base["con_mod"] = 99
    assert patch(base, {}).attributes["con_mod"] == (base["con"] - 10) // 2


def test_patch_with_a_value_for_a_when_false_field_is_an_error() -> None:
    base = stored(klass="Wizard")
    errors = errors_of(
        patch, base, {"klass": "Rogue", "hit_points": None, "spells": ["Shield", "Sleep"]}
    )
    assert list(errors) == ["spells"]


def test_fields_depending_on_an_invalid_value_are_not_judged() -> None:
    errors = errors_of(
        generate, COMPILED, 1, locks={"klass": "Bard", "spells": ["Shield", "Shield"]}
    )
    assert list(errors) == ["klass"]


def test_base_must_be_an_object() -> None:
    errors = errors_of(validate_attributes, COMPILED, {}, 1, base=[1])
    assert errors == {"_schema": ["stored attributes must be an object"]}


def test_the_engine_imports_only_the_standard_library() -> None:
    package = Path(engine_module.__file__).parent
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in sys.stdlib_module_names, f"{path.name} imports {root}"
                assert root != "random", f"{path.name} imports random"
