"""Fuzzing the compiler: random JSON, near-valid definitions and random dice strings.

The compiler must never raise anything but DefinitionError, and must answer quickly (the
hypothesis deadline is the time budget for one compilation plus a generation).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.generation import DefinitionError, compile_definition, generate
from app.generation.dice import DiceError, parse_dice

from .helpers import example, valid_definitions

BUDGET = settings(
    max_examples=250,
    deadline=timedelta(milliseconds=300),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

VOCABULARY = [
    "fields", "key", "type", "label", "group", "when", "dice", "range", "plus", "min", "max",
    "options", "table", "count", "chance", "grammar", "start", "default", "max_length",
    "generator", "expr", "switch", "cases", "value", "weight", "names", "parts", "grammars",
    "tables", "name_field", "origin", "integer", "choice", "pick", "boolean", "text", "name",
    "derived", "4d6kh3", "d%", "#origin#", "#a#", "a", "b", "a + 1", "a > 2", "true", "12",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(VOCABULARY)
)
member_names = st.sampled_from(VOCABULARY) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(member_names, children, max_size=6)
    ),
    max_leaves=30,
)


def check(definition: object) -> None:
    """Compile; a rejection must be a located DefinitionError, a success must generate."""
    problem: DefinitionError | None = None
    try:
        compiled = compile_definition(definition)
    except DefinitionError as error:
        problem = error
    if problem is not None:
        assert problem.errors
        assert all(isinstance(path, tuple) and path for path, _ in problem.errors)
        problem.as_dict()
        return
    for seed in (0, 1, 2**53 - 1):
        generate(compiled, seed)


@BUDGET
@given(json_values)
def test_random_json(value: Any) -> None:
    check(value)


@BUDGET
@given(st.dictionaries(member_names, json_values, max_size=5))
def test_random_top_level_objects(value: dict) -> None:
    check(value)


@BUDGET
@given(st.lists(st.dictionaries(member_names, json_values, max_size=7), min_size=1, max_size=6))
def test_random_fields(fields: list) -> None:
    check({"fields": fields})


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


@BUDGET
@given(st.one_of(st.just(example()), valid_definitions()), st.data())
def test_mutated_valid_definitions(definition: dict, data: st.DataObject) -> None:
    mutated = copy.deepcopy(definition)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(mutated)
        path = data.draw(st.sampled_from(paths[1:] or paths))
        mutated = _replace(mutated, path, data.draw(json_values))
    check(mutated)


dice_alphabet = st.text(alphabet="0123456789d%khl!+-*() DKH.x", max_size=40)


@BUDGET
@given(dice_alphabet)
def test_random_dice_strings(text: str) -> None:
    try:
        dice = parse_dice(text)
    except DiceError:
        pass
    else:
        assert dice.low <= dice.high
    check({"fields": [{"key": "a", "type": "integer", "dice": text}]})


@BUDGET
@given(st.text(max_size=150))
def test_arbitrary_unicode_dice_strings(text: str) -> None:
    check({"fields": [{"key": "a", "type": "integer", "dice": text}]})


@BUDGET
@given(st.text(max_size=80), st.text(max_size=80))
def test_random_expressions_and_rules(expression: str, rule: str) -> None:
    check(
        {
            "grammars": {"g": {"origin": [rule], "x": ["y"]}},
            "fields": [
                {"key": "a", "type": "integer", "range": [1, 6]},
                {"key": "b", "type": "derived", "expr": expression},
                {"key": "c", "type": "boolean", "chance": [1, 2], "when": expression},
                {"key": "d", "type": "integer", "range": [1, 6], "plus": expression},
                {"key": "e", "type": "text", "grammar": "g"},
            ],
        }
    )
