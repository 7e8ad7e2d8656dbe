"""Hypothesis properties of the engine over generated valid definitions."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.generation import (
    MAX_SEED,
    DefinitionError,
    compile_definition,
    generate,
    validate_attributes,
)
from app.generation.dice import parse_dice

from .helpers import name_pattern, option_values, valid_definitions

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
seeds = st.integers(0, MAX_SEED)


def check_value(
    definition: dict[str, Any], field: dict[str, Any], value: object, attributes: dict
) -> None:
    """Independent check of one generated value against the raw field definition."""
    kind = field["type"]
    if value is None:
        return  # when-false, or a documented run-time failure
    if kind == "integer":
        assert type(value) is int
        if "min" in field:
            assert value >= field["min"]
        if "max" in field:
            assert value <= field["max"]
        if "plus" not in field and "min" not in field and "max" not in field:
            if "range" in field:
                low, high = field["range"]
            else:
                dice = field["dice"]
                if isinstance(dice, dict):
                    dice = dice["cases"].get(attributes[dice["switch"]], dice.get("default"))
                parsed = parse_dice(dice)
                low, high = parsed.low, parsed.high
            assert low <= value <= high
    elif kind == "choice":
        source = field.get("options", field.get("table"))
        assert value in option_values(definition, source)
    elif kind == "pick":
        source = field.get("options", field.get("table"))
        assert isinstance(value, list)
        assert len(value) == field["count"] == len(set(value))
        assert set(value) <= set(option_values(definition, source))
    elif kind == "boolean":
        assert type(value) is bool
        num, den = field["chance"]
        if num == 0:
            assert value is False
        if num == den:
            assert value is True
    elif kind == "text":
        assert isinstance(value, str)
        assert len(value) <= field.get("max_length", 10_000)
        if "grammar" not in field:
            assert value == field.get("default", "")
    elif kind == "name":
        assert isinstance(value, str) and 1 <= len(value) <= 100
        assert name_pattern(definition["names"][field["generator"]]).fullmatch(value)
    else:
        assert type(value) in (int, float, bool, str)


@SETTINGS
@given(valid_definitions(), seeds)
def test_every_value_obeys_its_fields_rules(definition: dict[str, Any], seed: int) -> None:
    compiled = compile_definition(definition)
    result = generate(compiled, seed)
    assert list(result.attributes) == [field["key"] for field in definition["fields"]]
    for field in definition["fields"]:
        check_value(definition, field, result.attributes[field["key"]], result.attributes)
    # every generated value is accepted back as an edit, and nothing changes
    supplied = {
        field["key"]: result.attributes[field["key"]]
        for field in definition["fields"]
        if field["type"] != "derived" and result.attributes[field["key"]] is not None
    }
    assert validate_attributes(compiled, supplied, seed) == result
    assert validate_attributes(compiled, {}, seed, base=result.attributes) == result


@SETTINGS
@given(valid_definitions(), seeds, st.data())
def test_adding_a_field_anywhere_changes_no_other_value(
    definition: dict[str, Any], seed: int, data: st.DataObject
) -> None:
    before = generate(compile_definition(definition), seed).attributes
    extended = copy.deepcopy(definition)
    position = data.draw(st.integers(0, len(extended["fields"])))
    extra = data.draw(
        st.sampled_from(
            [
                {"key": "zz_new", "type": "integer", "dice": "3d6"},
                {"key": "zz_new", "type": "choice", "options": ["a", "b", "c"]},
                {"key": "zz_new", "type": "boolean", "chance": [1, 3]},
            ]
        )
    )
    extended["fields"].insert(position, extra)
    after = generate(compile_definition(extended), seed).attributes
    del after["zz_new"]
    assert after == before


@SETTINGS
@given(valid_definitions(), seeds, st.data())
def test_reroll_changes_only_the_field_and_its_dependents(
    definition: dict[str, Any], seed: int, data: st.DataObject
) -> None:
    compiled = compile_definition(definition)
    candidates = [field["key"] for field in definition["fields"] if field["type"] != "derived"]
    if not candidates:
        return
    key = data.draw(st.sampled_from(candidates))
    number = data.draw(st.integers(1, 2**53 - 1))
    before = generate(compiled, seed).attributes
    after = generate(compiled, seed, rerolls={key: number}).attributes
    allowed = {key} | compiled.dependents(key)
    assert {name for name in before if before[name] != after[name]} <= allowed


@SETTINGS
@given(valid_definitions(), seeds, st.data())
def test_locks_of_generated_values_reproduce_the_character(
    definition: dict[str, Any], seed: int, data: st.DataObject
) -> None:
    compiled = compile_definition(definition)
    result = generate(compiled, seed)
    lockable = [
        field["key"]
        for field in definition["fields"]
        if field["type"] != "derived" and result.attributes[field["key"]] is not None
    ]
    chosen = data.draw(st.lists(st.sampled_from(lockable), unique=True)) if lockable else []
    locks = {key: result.attributes[key] for key in chosen}
    assert generate(compiled, seed, locks=locks) == result


# ---------------------------------------------------------------------------------------------
# invalid definitions are always rejected with a located error


def _break(definition: dict[str, Any], data: st.DataObject) -> tuple[dict[str, Any], tuple]:
    """Apply one mutation that makes a valid definition invalid; return it and the error path."""
    broken = copy.deepcopy(definition)
    fields = broken["fields"]
    index = data.draw(st.integers(0, len(fields) - 1))
    field = fields[index]
    kind = field["type"]
    mutations = ["unknown member", "bad key", "keyword key", "bad when", "no type", "bad label"]
    mutations.append(
        {
            "integer": "zero dice",
            "choice": "empty options",
            "pick": "big count",
            "boolean": "bad chance",
            "text": "bad max_length",
            "name": "bad generator",
            "derived": "self reference",
        }[kind]
    )
    if len(fields) > 1:
        mutations.append("duplicate key")
    mutation = data.draw(st.sampled_from(mutations))
    if mutation == "unknown member":
        field["surprise"] = 1
        return broken, ("fields", index, "surprise")
    if mutation == "bad key":
        field["key"] = data.draw(
            st.sampled_from(["Upper", "9lives", "has space", "", "k" * 33, "dash-key"])
        )
        return broken, ("fields", index, "key")
    if mutation == "keyword key":
        field["key"] = data.draw(
            st.sampled_from(["class", "def", "lambda", "import", "None", "while"])
        )
        return broken, ("fields", index, "key")
    if mutation == "bad when":
        field["when"] = data.draw(
            st.sampled_from(["undefined_name", "1 +", "__import__('os')", "x.y", "3", "'s'"])
        )
        return broken, ("fields", index, "when")
    if mutation == "no type":
        del field["type"]
        return broken, ("fields", index, "type")
    if mutation == "bad label":
        field["label"] = data.draw(st.sampled_from(["", 5, None, "x" * 101]))
        return broken, ("fields", index, "label")
    if mutation == "duplicate key":
        other = data.draw(st.integers(0, len(fields) - 1).filter(lambda value: value != index))
        field["key"] = fields[other]["key"]
        return broken, ("fields", max(index, other), "key")
    if mutation == "zero dice":
        field.pop("range", None)
        field["dice"] = data.draw(
            st.sampled_from(["0d6", "1d1", "4d6kh5", "d", "2+3", "1d6+", "D6"])
        )
        return broken, ("fields", index, "dice")
    if mutation == "empty options":
        field.pop("table", None)
        field["options"] = []
        return broken, ("fields", index, "options")
    if mutation == "big count":
        field["count"] = 1001
        return broken, ("fields", index, "count")
    if mutation == "bad chance":
        field["chance"] = data.draw(
            st.sampled_from([[2, 1], [0, 0], [1, 2.0], [True, 2], "1/2", [1]])
        )
        return broken, ("fields", index, "chance")
    if mutation == "bad max_length":
        field["max_length"] = data.draw(st.sampled_from([0, 10_001, 1.5, True]))
        return broken, ("fields", index, "max_length")
    if mutation == "bad generator":
        field["generator"] = "no_such_generator"
        return broken, ("fields", index, "generator")
    field["expr"] = f"{field['key']} + 1"
    return broken, ("fields", index)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(valid_definitions(), st.data())
def test_invalid_definitions_are_rejected_with_a_located_error(
    definition: dict[str, Any], data: st.DataObject
) -> None:
    broken, path = _break(definition, data)
    with pytest.raises(DefinitionError) as caught:
        compile_definition(broken)
    paths = [where for where, _ in caught.value.errors]
    assert all(where and all(isinstance(part, str | int) for part in where) for where in paths)
    assert path in paths, caught.value.errors
    assert all(isinstance(message, str) and message for _, message in caught.value.errors)


# ---------------------------------------------------------------------------------------------
# statistics


def test_weighted_choices_follow_their_weights() -> None:
    weights = {"common": 6, "uncommon": 3, "rare": 1}
    compiled = compile_definition(
        {
            "fields": [
                {
                    "key": "c",
                    "type": "choice",
                    "options": [{"value": k, "weight": w} for k, w in weights.items()],
                }
            ]
        }
    )
    draws = 20_000
    counts = Counter(generate(compiled, seed).attributes["c"] for seed in range(draws))
    total = sum(weights.values())
    for value, weight in weights.items():
        p = weight / total
        sigma = (draws * p * (1 - p)) ** 0.5
        assert abs(counts[value] - draws * p) < 5 * sigma, counts


def test_weighted_pick_without_replacement_follows_its_weights() -> None:
    compiled = compile_definition(
        {
            "fields": [
                {
                    "key": "p",
                    "type": "pick",
                    "count": 2,
                    "options": [
                        {"value": "a", "weight": 8},
                        {"value": "b", "weight": 1},
                        {"value": "c", "weight": 1},
                    ],
                }
            ]
        }
    )
    draws = 10_000
    firsts = Counter(generate(compiled, seed).attributes["p"][0] for seed in range(draws))
    # the first draw is a weighted choice: P(a) = 0.8
    assert abs(firsts["a"] / draws - 0.8) < 0.02
    # P(a is picked at all) = 0.8 + 0.2 * 8/9
    picked = sum("a" in generate(compiled, seed).attributes["p"] for seed in range(2000))
    assert abs(picked / 2000 - (0.8 + 0.2 * 8 / 9)) < 0.03


def test_boolean_chance_is_respected() -> None:
    compiled = compile_definition({"fields": [{"key": "b", "type": "boolean", "chance": [1, 10]}]})
    draws = 20_000
    hits = sum(generate(compiled, seed).attributes["b"] for seed in range(draws))
    sigma = (draws * 0.1 * 0.9) ** 0.5
    assert abs(hits - draws * 0.1) < 5 * sigma


def test_4d6kh3_field_range_and_mean_over_20000_seeds() -> None:
    compiled = compile_definition({"fields": [{"key": "str", "type": "integer", "dice": "4d6kh3"}]})
    values = [generate(compiled, seed).attributes["str"] for seed in range(20_000)]
    assert min(values) >= 3 and max(values) <= 18
    assert abs(sum(values) / len(values) - 12.24) < 0.1
