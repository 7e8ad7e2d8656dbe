"""The definition compiler: what it accepts, and a located error for everything else."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.generation import CompiledTemplate, DefinitionError, compile_definition

from .helpers import example


def errors_of(definition: object) -> list[tuple[tuple, str]]:
    with pytest.raises(DefinitionError) as caught:
        compile_definition(definition)
    assert caught.value.errors, "a DefinitionError always carries located errors"
    return caught.value.errors


def assert_error(definition: object, path: tuple, fragment: str) -> None:
    errors = errors_of(definition)
    matching = [message for where, message in errors if where == path]
    assert any(fragment in message for message in matching), errors


def with_fields(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"fields": list(fields), **extra}


def test_the_api_example_compiles() -> None:
    compiled = compile_definition(example())
    assert isinstance(compiled, CompiledTemplate)
    assert compiled.name_field == "name"
    assert compiled.keys[:3] == ("ancestry", "klass", "name")
    assert compiled.dependencies["hit_points"] == {"klass", "con_mod"}
    assert compiled.dependencies["hook"] == {"name"}
    assert compiled.dependents("con") == {"con_mod", "hit_points"}
    order = [compiled.keys[index] for index in compiled.order]
    assert order.index("con") < order.index("con_mod") < order.index("hit_points")


def test_the_definition_is_not_modified() -> None:
    definition = example()
    compile_definition(definition)
    assert definition == example()


def test_compiled_template_is_immutable() -> None:
    compiled = compile_definition(example())
    with pytest.raises(AttributeError):
        compiled.keys = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        compiled.dependencies["x"] = frozenset()  # type: ignore[index]


def test_dependencies_in_any_declaration_order() -> None:
    definition = example()
    definition["fields"].reverse()
    compiled = compile_definition(definition)
    order = [compiled.keys[index] for index in compiled.order]
    assert order.index("klass") < order.index("hit_points")
    assert order.index("name") < order.index("hook")


def test_name_field_defaults_to_the_first_name_field() -> None:
    definition = example()
    del definition["name_field"]
    assert compile_definition(definition).name_field == "name"
    assert (
        compile_definition(
            with_fields({"key": "a", "type": "boolean", "chance": [1, 2]})
        ).name_field
        is None
    )


@pytest.mark.parametrize(
    ("definition", "path", "fragment"),
    [
        ([], ("_schema",), "must be a JSON object"),
        ("fields", ("_schema",), "must be a JSON object"),
        (None, ("_schema",), "must be a JSON object"),
        ({}, ("fields",), "Missing data for required field."),
        ({"fields": {}}, ("fields",), "must be a list"),
        ({"fields": []}, ("fields",), "at least one field"),
        ({"fields": [1]}, ("fields", 0), "must be an object"),
        (
            with_fields({"key": "a", "type": "boolean", "chance": [1, 2]}, extra=1),
            ("extra",),
            "Unknown field.",
        ),
        (with_fields({"type": "boolean", "chance": [1, 2]}), ("fields", 0, "key"), "Missing data"),
        (with_fields({"key": "a", "chance": [1, 2]}), ("fields", 0, "type"), "Missing data"),
        (with_fields({"key": "a", "type": "float"}), ("fields", 0, "type"), "must be one of"),
        (with_fields({"key": "Abc", "type": "text"}), ("fields", 0, "key"), "a-z"),
        (with_fields({"key": "1a", "type": "text"}), ("fields", 0, "key"), "a-z"),
        (with_fields({"key": "a" * 33, "type": "text"}), ("fields", 0, "key"), "1 to 32"),
        (with_fields({"key": "a-b", "type": "text"}), ("fields", 0, "key"), "a-z"),
        (with_fields({"key": 5, "type": "text"}), ("fields", 0, "key"), "a-z"),
        (with_fields({"key": "class", "type": "text"}), ("fields", 0, "key"), "Python keyword"),
        (with_fields({"key": "if", "type": "text"}), ("fields", 0, "key"), "Python keyword"),
        (
            with_fields({"key": "a", "type": "text"}, {"key": "a", "type": "text"}),
            ("fields", 1, "key"),
            "duplicate key 'a'",
        ),
        (
            with_fields({"key": "a", "type": "text", "colour": "red"}),
            ("fields", 0, "colour"),
            "Unknown field.",
        ),
        (
            with_fields({"key": "a", "type": "text", "dice": "1d6"}),
            ("fields", 0, "dice"),
            "is not a parameter of a 'text' field",
        ),
        (
            with_fields({"key": "a", "type": "text", "label": ""}),
            ("fields", 0, "label"),
            "1 to 100",
        ),
        (with_fields({"key": "a", "type": "text", "group": 3}), ("fields", 0, "group"), "1 to 100"),
        (
            with_fields({"key": "a", "type": "text", "label": " \t"}),
            ("fields", 0, "label"),
            "visible character",
        ),
        (
            with_fields({"key": "a", "type": "text", "group": "\u200b\u3164"}),
            ("fields", 0, "group"),
            "visible character",
        ),
        # integer
        (with_fields({"key": "a", "type": "integer"}), ("fields", 0, "dice"), "Missing data"),
        (
            with_fields({"key": "a", "type": "integer", "dice": "1d6", "range": [1, 6]}),
            ("fields", 0, "range"),
            "cannot be used together",
        ),
        (
            with_fields({"key": "a", "type": "integer", "dice": "0d6"}),
            ("fields", 0, "dice"),
            "'0d6' needs at least one die",
        ),
        (
            with_fields({"key": "a", "type": "integer", "dice": 6}),
            ("fields", 0, "dice"),
            "must be a string",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [6, 1]}),
            ("fields", 0, "range"),
            "lo <= hi",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [1]}),
            ("fields", 0, "range"),
            "[lo, hi]",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [1, 2.0]}),
            ("fields", 0, "range"),
            "[lo, hi]",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [True, 2]}),
            ("fields", 0, "range"),
            "[lo, hi]",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [0, 2**53]}),
            ("fields", 0, "range"),
            "2**53",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [1, 6], "min": 5, "max": 2}),
            ("fields", 0, "max"),
            "min <= max",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [1, 6], "min": 1.5}),
            ("fields", 0, "min"),
            "integer",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [1, 6], "plus": "a2"}),
            ("fields", 0, "plus"),
            "unknown name 'a2'",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [1, 6], "plus": "2 > 1"}),
            ("fields", 0, "plus"),
            "must be an integer expression",
        ),
        (
            with_fields({"key": "a", "type": "integer", "range": [1, 6], "plus": "1 / 2"}),
            ("fields", 0, "plus"),
            "must be an integer expression",
        ),
        # choice and pick
        (with_fields({"key": "a", "type": "choice"}), ("fields", 0, "options"), "Missing data"),
        (
            with_fields({"key": "a", "type": "choice", "options": []}),
            ("fields", 0, "options"),
            "at least one option",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": "abc"}),
            ("fields", 0, "options"),
            "must be a list",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": ["x", "x"]}),
            ("fields", 0, "options", 1),
            "duplicate option 'x'",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": [""]}),
            ("fields", 0, "options", 0),
            "non-empty string",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": [3]}),
            ("fields", 0, "options", 0),
            "non-empty string",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": [{"value": "x", "weight": 0}]}),
            ("fields", 0, "options", 0, "weight"),
            "integer from 1",
        ),
        (
            with_fields(
                {"key": "a", "type": "choice", "options": [{"value": "x", "weight": True}]}
            ),
            ("fields", 0, "options", 0, "weight"),
            "integer from 1",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": [{"value": "x", "weight": 2.0}]}),
            ("fields", 0, "options", 0, "weight"),
            "integer from 1",
        ),
        (
            with_fields(
                {"key": "a", "type": "choice", "options": [{"value": "x", "weight": 10**6 + 1}]}
            ),
            ("fields", 0, "options", 0, "weight"),
            "integer from 1",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": [{"weight": 2}]}),
            ("fields", 0, "options", 0, "value"),
            "Missing data",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": [{"value": "x", "odds": 2}]}),
            ("fields", 0, "options", 0, "odds"),
            "Unknown field.",
        ),
        (
            with_fields(
                {"key": "a", "type": "choice", "options": ["x"], "table": "t"}, tables={"t": ["y"]}
            ),
            ("fields", 0, "table"),
            "cannot be used together",
        ),
        (
            with_fields({"key": "a", "type": "choice", "table": "nope"}),
            ("fields", 0, "table"),
            "not a table",
        ),
        (
            with_fields({"key": "a", "type": "pick", "options": ["x", "y"]}),
            ("fields", 0, "count"),
            "Missing data",
        ),
        (
            with_fields({"key": "a", "type": "pick", "options": ["x", "y"], "count": 3}),
            ("fields", 0, "count"),
            "only 2 options",
        ),
        (
            with_fields({"key": "a", "type": "pick", "options": ["x", "y"], "count": 0}),
            ("fields", 0, "count"),
            "from 1",
        ),
        (
            with_fields({"key": "a", "type": "pick", "options": ["x", "y"], "count": True}),
            ("fields", 0, "count"),
            "from 1",
        ),
        (
            with_fields(
                {"key": "a", "type": "pick", "table": "t", "count": 2}, tables={"t": ["y"]}
            ),
            ("fields", 0, "count"),
            "only 1 options",
        ),
        (
            with_fields({"key": "a", "type": "choice", "options": ["x"] * 1001}),
            ("fields", 0, "options"),
            "at most 1000",
        ),
        # boolean
        (with_fields({"key": "a", "type": "boolean"}), ("fields", 0, "chance"), "Missing data"),
        (
            with_fields({"key": "a", "type": "boolean", "chance": [3, 2]}),
            ("fields", 0, "chance"),
            "num <= den",
        ),
        (
            with_fields({"key": "a", "type": "boolean", "chance": [0, 0]}),
            ("fields", 0, "chance"),
            "1 <= den",
        ),
        (
            with_fields({"key": "a", "type": "boolean", "chance": [-1, 2]}),
            ("fields", 0, "chance"),
            "0 <= num",
        ),
        (
            with_fields({"key": "a", "type": "boolean", "chance": 0.5}),
            ("fields", 0, "chance"),
            "[num, den]",
        ),
        # text
        (
            with_fields(
                {"key": "a", "type": "text", "grammar": "g", "default": "x"},
                grammars={"g": {"origin": ["x"]}},
            ),
            ("fields", 0, "default"),
            "cannot be used together",
        ),
        (
            with_fields({"key": "a", "type": "text", "grammar": "g"}),
            ("fields", 0, "grammar"),
            "not a grammar",
        ),
        (
            with_fields({"key": "a", "type": "text", "start": "x"}),
            ("fields", 0, "start"),
            "needs 'grammar'",
        ),
        (
            with_fields(
                {"key": "a", "type": "text", "grammar": "g", "start": "s"},
                grammars={"g": {"origin": ["x"]}},
            ),
            ("fields", 0, "start"),
            "no symbol 's'",
        ),
        (
            with_fields(
                {"key": "a", "type": "text", "grammar": "g"}, grammars={"g": {"start": ["x"]}}
            ),
            ("fields", 0, "grammar"),
            "no symbol 'origin'",
        ),
        (
            with_fields({"key": "a", "type": "text", "max_length": 10001}),
            ("fields", 0, "max_length"),
            "1 to 10000",
        ),
        (
            with_fields({"key": "a", "type": "text", "max_length": 0}),
            ("fields", 0, "max_length"),
            "1 to 10000",
        ),
        (
            with_fields({"key": "a", "type": "text", "default": "abc", "max_length": 2}),
            ("fields", 0, "default"),
            "longer than max_length",
        ),
        (
            with_fields({"key": "a", "type": "text", "default": 1}),
            ("fields", 0, "default"),
            "must be a string",
        ),
        (
            with_fields({"key": "a", "type": "text", "grammar": {"switch": "b", "cases": {}}}),
            ("fields", 0, "grammar"),
            "cannot be a switch",
        ),
        # name
        (with_fields({"key": "a", "type": "name"}), ("fields", 0, "generator"), "Missing data"),
        (
            with_fields({"key": "a", "type": "name", "generator": "g"}),
            ("fields", 0, "generator"),
            "not a name generator",
        ),
        # derived and when
        (with_fields({"key": "a", "type": "derived"}), ("fields", 0, "expr"), "Missing data"),
        (
            with_fields({"key": "a", "type": "derived", "expr": "b + 1"}),
            ("fields", 0, "expr"),
            "unknown name 'b'",
        ),
        (
            with_fields({"key": "a", "type": "derived", "expr": "a + 1"}),
            ("fields", 0),
            "depends on itself",
        ),
        (
            with_fields({"key": "a", "type": "derived", "expr": "2 ** 8"}),
            ("fields", 0, "expr"),
            "'**' is not allowed",
        ),
        (
            with_fields({"key": "a", "type": "text", "when": "1 + 1"}),
            ("fields", 0, "when"),
            "must be a boolean expression",
        ),
        (
            with_fields({"key": "a", "type": "text", "when": True}),
            ("fields", 0, "when"),
            "must be a string",
        ),
        (
            with_fields({"key": "a", "type": "text", "when": "open('x')"}),
            ("fields", 0, "when"),
            "can be called",
        ),
        # name_field
        (
            with_fields({"key": "a", "type": "text"}, name_field="b"),
            ("name_field",),
            "not the key of a field",
        ),
        (
            with_fields({"key": "a", "type": "text"}, name_field="a"),
            ("name_field",),
            "not a field of type 'name'",
        ),
        # sections
        (with_fields({"key": "a", "type": "text"}, tables=[]), ("tables",), "must be an object"),
        (
            with_fields({"key": "a", "type": "text"}, tables={"t": []}),
            ("tables", "t"),
            "at least one option",
        ),
        (
            with_fields({"key": "a", "type": "text"}, tables={"bad name": ["x"]}),
            ("tables", "bad name"),
            "table names",
        ),
        (
            with_fields({"key": "a", "type": "text"}, names={"n": {}}),
            ("names", "n", "parts"),
            "Missing data",
        ),
        (
            with_fields({"key": "a", "type": "text"}, names={"n": {"parts": []}}),
            ("names", "n", "parts"),
            "non-empty list",
        ),
        (
            with_fields({"key": "a", "type": "text"}, names={"n": {"parts": [[]]}}),
            ("names", "n", "parts", 0),
            "non-empty list",
        ),
        (
            with_fields({"key": "a", "type": "text"}, names={"n": {"parts": [["a", 1]]}}),
            ("names", "n", "parts", 0),
            "strings",
        ),
        (
            with_fields(
                {"key": "a", "type": "text"}, names={"n": {"parts": [["A"], ["b"]], "weights": [1]}}
            ),
            ("names", "n", "weights"),
            "Unknown field.",
        ),
        (
            with_fields({"key": "a", "type": "text"}, names={"n": {"parts": [["", "x"], [""]]}}),
            ("names", "n", "parts"),
            "empty name",
        ),
        (
            with_fields(
                {"key": "a", "type": "text"}, names={"n": {"parts": [["x" * 60], ["y" * 41]]}}
            ),
            ("names", "n", "parts"),
            "101 characters",
        ),
        (  # names are cleaned (trimmed, no control characters): this one can be blank
            with_fields({"key": "a", "type": "text"}, names={"n": {"parts": [["   ", "\u0007"]]}}),
            ("names", "n", "parts"),
            "empty name",
        ),
        (
            with_fields(
                {"key": "a", "type": "text"}, names={"n": {"parts": [[" ", "Al"], ["", "Bo"]]}}
            ),
            ("names", "n", "parts"),
            "empty name",
        ),
        (  # measured cleaned: NFC spells U+0958 with two code points
            with_fields({"key": "a", "type": "text"}, names={"n": {"parts": [["\u0958" * 51]]}}),
            ("names", "n", "parts"),
            "102 characters",
        ),
        (
            with_fields({"key": "a", "type": "text"}, tables=None),
            ("tables",),
            "must be an object",
        ),
        (
            with_fields({"key": "a", "type": "text"}, names=None),
            ("names",),
            "must be an object",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars=None),
            ("grammars",),
            "must be an object",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {}}),
            ("grammars", "g"),
            "non-empty object",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"origin": []}}),
            ("grammars", "g", "origin"),
            "non-empty list",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"origin": [1]}}),
            ("grammars", "g", "origin", 0),
            "must be a string",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"origin": ["x"] * 51}}),
            ("grammars", "g", "origin"),
            "at most 50",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"origin": ["#x"]}}),
            ("grammars", "g", "origin", 0),
            "unclosed",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"origin": ["##"]}}),
            ("grammars", "g", "origin", 0),
            "empty",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"origin": ["#zz#"]}}),
            ("grammars", "g", "origin", 0),
            "names no symbol of this grammar and no field",
        ),
        (
            with_fields(
                {"key": "a", "type": "text"}, grammars={"g": {"origin": ["#x.upper#"], "x": ["y"]}}
            ),
            ("grammars", "g", "origin", 0),
            "unknown modifier '.upper'",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"origin": ["#origin#"]}}),
            ("grammars", "g", "origin"),
            "refers to itself",
        ),
        (
            with_fields(
                {"key": "a", "type": "text"},
                grammars={"g": {"origin": ["#b#"], "b": ["#c#"], "c": ["#b#"]}},
            ),
            ("grammars", "g", "c"),
            "refers to itself: c -> b -> c",
        ),
        (
            with_fields(
                {"key": "a", "type": "text"}, grammars={"g": {"origin": ["x"], "a": ["y"]}}
            ),
            ("grammars", "g", "a"),
            "same name as a field",
        ),
        (
            with_fields({"key": "a", "type": "text"}, grammars={"g": {"bad-symbol": ["y"]}}),
            ("grammars", "g", "bad-symbol"),
            "symbols are",
        ),
    ],
)
def test_invalid_definitions(definition: object, path: tuple, fragment: str) -> None:
    assert_error(definition, path, fragment)


def test_every_problem_is_reported_at_once() -> None:
    definition = with_fields(
        {"key": "a", "type": "integer", "dice": "0d6"},
        {"key": "b", "type": "choice", "options": []},
        {"key": "c", "type": "boolean", "chance": [2, 1]},
        extra=True,
    )
    paths = {path for path, _ in errors_of(definition)}
    assert paths == {
        ("fields", 0, "dice"),
        ("fields", 1, "options"),
        ("fields", 2, "chance"),
        ("extra",),
    }


def test_as_dict_nests_paths() -> None:
    definition = with_fields(
        {"key": "a", "type": "integer", "dice": "0d6"},
        {"key": "b", "type": "derived", "expr": "c"},
        {"key": "c", "type": "derived", "expr": "b", "when": "nope"},
    )
    with pytest.raises(DefinitionError) as caught:
        compile_definition(definition)
    assert caught.value.as_dict() == {
        "fields": {
            0: {"dice": ["'0d6' needs at least one die"]},
            2: {"when": ["unknown name 'nope'"], "_schema": ["depends on 'b' which depends on it"]},
            1: ["depends on 'c' which depends on it"],
        }
    }
    assert "fields.0.dice: '0d6' needs at least one die" in str(caught.value)


def test_as_dict_keeps_own_messages_under_schema_when_nested_ones_exist() -> None:
    error = DefinitionError(
        [(("fields", 1), "x"), (("fields", 1, "when"), "y"), (("_schema",), "z")]
    )
    assert error.as_dict() == {"fields": {1: {"_schema": ["x"], "when": ["y"]}}, "_schema": ["z"]}
    assert json.loads(json.dumps(error.as_dict())) == {
        "fields": {"1": {"_schema": ["x"], "when": ["y"]}},
        "_schema": ["z"],
    }


# ---------------------------------------------------------------------------------------------
# switch


def switch_definition(param: Any, governing: dict[str, Any] | None = None) -> dict[str, Any]:
    governing = governing or {
        "key": "klass",
        "type": "choice",
        "options": ["Fighter", "Wizard", "Rogue"],
    }
    return with_fields(governing, {"key": "hp", "type": "integer", "dice": param})


def test_switch_on_a_choice_with_every_option_needs_no_default() -> None:
    compile_definition(
        switch_definition(
            {"switch": "klass", "cases": {"Fighter": "1d10", "Wizard": "1d6", "Rogue": "1d8"}}
        )
    )


def test_switch_default_required_when_a_choice_value_has_no_case() -> None:
    assert_error(
        switch_definition({"switch": "klass", "cases": {"Fighter": "1d10", "Wizard": "1d6"}}),
        ("fields", 1, "dice", "default"),
        "can also be 'Rogue'",
    )


def test_switch_default_required_on_other_field_types() -> None:
    governing = {"key": "flag", "type": "boolean", "chance": [1, 2]}
    assert_error(
        switch_definition({"switch": "flag", "cases": {"true": "1d10", "false": "1d6"}}, governing),
        ("fields", 1, "dice", "default"),
        "is required",
    )
    compile_definition(
        switch_definition(
            {"switch": "flag", "cases": {"true": "1d10"}, "default": "1d4"}, governing
        )
    )


@pytest.mark.parametrize(
    ("param", "governing", "path", "fragment"),
    [
        (
            {"switch": "nope", "cases": {"a": "1d6"}, "default": "1d4"},
            None,
            ("switch",),
            "is not the key of a field",
        ),
        (
            {"switch": "hp", "cases": {"a": "1d6"}, "default": "1d4"},
            None,
            ("switch",),
            "cannot switch on itself",
        ),
        ({"cases": {"a": "1d6"}, "default": "1d4"}, None, ("switch",), "Missing data"),
        ({"switch": "klass", "default": "1d4"}, None, ("cases",), "Missing data"),
        ({"switch": "klass", "cases": {}, "default": "1d4"}, None, ("cases",), "non-empty object"),
        (
            {"switch": "klass", "cases": {"Fighter": "0d6"}, "default": "1d4"},
            None,
            ("cases", "Fighter"),
            "needs at least one die",
        ),
        (
            {"switch": "klass", "cases": {"Fighter": "1d6"}, "default": "1d1"},
            None,
            ("default",),
            "sides",
        ),
        (
            {"switch": "klass", "cases": {"Fighter": "1d6"}, "default": "1d4", "else": 1},
            None,
            ("else",),
            "Unknown field.",
        ),
        (
            {
                "switch": "klass",
                "cases": {"Fighter": {"switch": "klass", "cases": {}}},
                "default": "1d4",
            },
            None,
            ("cases", "Fighter"),
            "cannot be nested",
        ),
        (
            {"switch": "klass", "cases": {"Bard": "1d6"}, "default": "1d4"},
            None,
            ("cases", "Bard"),
            "not an option",
        ),
        (
            {"switch": "flag", "cases": {"True": "1d6"}, "default": "1d4"},
            {"key": "flag", "type": "boolean", "chance": [1, 2]},
            ("cases", "True"),
            "'true' or 'false'",
        ),
        (
            {"switch": "level", "cases": {"01": "1d6"}, "default": "1d4"},
            {"key": "level", "type": "integer", "range": [1, 5]},
            ("cases", "01"),
            "integer",
        ),
        (
            {"switch": "tags", "cases": {"x": "1d6"}, "default": "1d4"},
            {"key": "tags", "type": "pick", "options": ["x", "y"], "count": 1},
            ("switch",),
            "a pick value is a list",
        ),
    ],
)
def test_invalid_switches(param: Any, governing: Any, path: tuple, fragment: str) -> None:
    assert_error(switch_definition(param, governing), ("fields", 1, "dice", *path), fragment)


@pytest.mark.parametrize(
    ("governing", "case", "fragment"),
    [
        ({"key": "level", "type": "integer", "range": [-5, 5]}, "-0", "an integer"),
        ({"key": "level", "type": "integer", "range": [-5, 5]}, "+3", "an integer"),
        ({"key": "level", "type": "integer", "range": [-5, 5]}, str(2**53), "an integer"),
        ({"key": "level", "type": "integer", "range": [-5, 5]}, str(-(2**53)), "an integer"),
        ({"key": "who", "type": "name", "generator": "n"}, " Al", "is a name"),
        ({"key": "who", "type": "name", "generator": "n"}, "Al\u0007", "is a name"),
        ({"key": "who", "type": "name", "generator": "n"}, "Re\u0301my", "is a name"),
        ({"key": "who", "type": "name", "generator": "n"}, "", "is a name"),
    ],
)
def test_switch_cases_that_can_never_match(governing: Any, case: str, fragment: str) -> None:
    definition = switch_definition(
        {"switch": governing["key"], "cases": {case: "1d6"}, "default": "1d4"}, governing
    )
    definition["names"] = {"n": {"parts": [["Al", "Bo"]]}}
    assert_error(definition, ("fields", 1, "dice", "cases", case), fragment)


def derived_switch(expr: str, case: str) -> dict[str, Any]:
    return with_fields(
        {"key": "n", "type": "integer", "range": [-5, 5]},
        {"key": "d", "type": "derived", "expr": expr},
        {
            "key": "hp",
            "type": "integer",
            "dice": {"switch": "d", "cases": {case: "1d6"}, "default": "1d4"},
        },
    )


@pytest.mark.parametrize(
    ("expr", "case", "fragment"),
    [
        ("n > 2", "True", "'true' or 'false'"),
        ("n * 2", "012", "an integer"),
        ("n * 2", "-0", "an integer"),
        ("n * 2", "4.0", "an integer"),
        ("n / 3", "0.330", "float text"),
        ("n / 2", "2.50", "float text"),
        ("n / 2", "true", "float text"),
        ("n / 2", "2.0", "float text"),  # a whole result is an integer, written "2"
        ("n / 2", "-0.0", "float text"),
        ("n if n > 0 else n > 2", "yes", "'true' or 'false'"),
    ],
)
def test_derived_switch_cases_that_can_never_match(expr: str, case: str, fragment: str) -> None:
    # a derived field's cases are checked against the type its expression gives
    assert_error(derived_switch(expr, case), ("fields", 2, "dice", "cases", case), fragment)


@pytest.mark.parametrize(
    ("expr", "case"),
    [
        ("n > 2", "true"),
        ("n * 2", "-10"),
        ("n * 2", str(2**53 - 1)),
        ("n / 3", "0.3333333333333333"),
        ("n / 3", "1"),
        ("n / 2", "2.5"),
        ("n / 2", "-2.5"),
        ("n if n > 0 else n > 2", "true"),
        ("n if n > 0 else n > 2", "3"),
        ("'a' if n > 0 else 'b'", " any text at all "),
    ],
)
def test_derived_switch_cases_that_can_match(expr: str, case: str) -> None:
    compile_definition(derived_switch(expr, case))


def test_a_stored_definition_is_not_refused_by_rules_that_came_after_it() -> None:
    # a template version saved before these rules keeps compiling, so it keeps generating:
    # null sections, a generator that can make blank names, cases that never match
    definition = {
        "tables": None,
        "grammars": None,
        "names": {"h": {"parts": [["   ", "\u0007\u0007", "Al"]]}},
        "fields": [
            {"key": "n", "type": "integer", "range": [-5, 5]},
            {"key": "who", "type": "name", "generator": "h"},
            {"key": "d", "type": "derived", "expr": "n > 2"},
            {
                "key": "hp",
                "type": "integer",
                "dice": {"switch": "n", "cases": {"-0": "1d6"}, "default": "1d4"},
            },
            {
                "key": "mp",
                "type": "integer",
                "dice": {"switch": "d", "cases": {"True": "1d6"}, "default": "1d4"},
            },
            {
                "key": "xp",
                "type": "integer",
                "dice": {"switch": "who", "cases": {" Al": "1d6"}, "default": "1d4"},
            },
        ],
    }
    assert {path for path, _ in errors_of(definition)} == {
        ("tables",),
        ("grammars",),
        ("names", "h", "parts"),
        ("fields", 3, "dice", "cases", "-0"),
        ("fields", 4, "dice", "cases", "True"),
        ("fields", 5, "dice", "cases", " Al"),
    }
    compiled = compile_definition(definition, stored=True)
    assert compiled.keys == ("n", "who", "d", "hp", "mp", "xp")
    # what they break still cannot break anything else
    assert_error({**definition, "tables": []}, ("tables",), "must be an object")


def test_switchable_parameters() -> None:
    definition = with_fields(
        {"key": "size", "type": "choice", "options": ["small", "big"]},
        {
            "key": "r",
            "type": "integer",
            "range": {"switch": "size", "cases": {"small": [1, 3], "big": [5, 9]}},
        },
        {
            "key": "o",
            "type": "choice",
            "options": {"switch": "size", "cases": {"small": ["a"]}, "default": ["b", "c"]},
        },
        {
            "key": "t",
            "type": "choice",
            "table": {"switch": "size", "cases": {"small": "t1"}, "default": "t2"},
        },
        {
            "key": "p",
            "type": "pick",
            "options": ["a", "b", "c"],
            "count": {"switch": "size", "cases": {"small": 1, "big": 3}},
        },
        {
            "key": "b",
            "type": "boolean",
            "chance": {"switch": "size", "cases": {"small": [1, 2], "big": [0, 1]}},
        },
        {
            "key": "n",
            "type": "name",
            "generator": {"switch": "size", "cases": {"small": "g1", "big": "g2"}},
        },
        tables={"t1": ["x"], "t2": ["y"]},
        names={"g1": {"parts": [["Al"]]}, "g2": {"parts": [["Bo"]]}},
    )
    compile_definition(definition)


def test_not_switchable_parameters() -> None:
    definition = with_fields(
        {"key": "size", "type": "choice", "options": ["small", "big"]},
        {
            "key": "a",
            "type": "integer",
            "range": [1, 2],
            "min": {"switch": "size", "cases": {"small": 1, "big": 2}},
        },
    )
    assert_error(definition, ("fields", 1, "min"), "integer")


@pytest.mark.parametrize(
    ("count", "options", "fragment"),
    [
        # same governing field: checked case by case
        (
            {"switch": "size", "cases": {"small": 1, "big": 3}},
            {"switch": "size", "cases": {"small": ["a"], "big": ["a", "b"]}},
            "only 2 options for 'size' = 'big'",
        ),
        (
            {"switch": "size", "cases": {"small": 2}, "default": 1},
            {"switch": "size", "cases": {"big": ["a", "b", "c"]}, "default": ["a"]},
            "only 1 options for 'size' = 'small'",
        ),
        # different governing fields: every combination
        (
            {"switch": "size", "cases": {"small": 1, "big": 2}},
            {"switch": "mood", "cases": {"calm": ["a", "b"], "angry": ["a"]}},
            "asks for 2 distinct values but there are only 1 options",
        ),
        (
            3,
            {"switch": "size", "cases": {"small": ["a", "b", "c"], "big": ["a", "b"]}},
            "only 2 options",
        ),
    ],
)
def test_pick_count_is_checked_for_every_switch_combination(
    count: Any, options: Any, fragment: str
) -> None:
    definition = with_fields(
        {"key": "size", "type": "choice", "options": ["small", "big"]},
        {"key": "mood", "type": "choice", "options": ["calm", "angry"]},
        {"key": "p", "type": "pick", "options": options, "count": count},
    )
    assert_error(definition, ("fields", 2, "count"), fragment)


def test_pick_count_combinations_that_fit_are_accepted() -> None:
    definition = with_fields(
        {"key": "size", "type": "choice", "options": ["small", "big"]},
        {
            "key": "p",
            "type": "pick",
            "options": {"switch": "size", "cases": {"small": ["a"], "big": ["a", "b", "c"]}},
            "count": {"switch": "size", "cases": {"small": 1, "big": 3}},
        },
    )
    compile_definition(definition)


# ---------------------------------------------------------------------------------------------
# cycles


def test_two_field_cycle_through_switch_and_expression() -> None:
    definition = with_fields(
        {
            "key": "klass",
            "type": "choice",
            "options": {"switch": "hp", "cases": {"1": ["a"]}, "default": ["b"]},
        },
        {"key": "x", "type": "text"},
        {"key": "y", "type": "text"},
        {"key": "z", "type": "text"},
        {"key": "w", "type": "text"},
        {"key": "hp", "type": "integer", "range": [1, 3], "when": "klass == 'a'"},
    )
    assert_error(definition, ("fields", 5), "depends on 'klass' which depends on it")
    assert_error(definition, ("fields", 0), "depends on 'hp' which depends on it")


def test_longer_cycle_through_grammar_and_plus() -> None:
    definition = with_fields(
        {"key": "a", "type": "text", "grammar": "g"},
        {"key": "b", "type": "integer", "range": [1, 2], "plus": "c"},
        {"key": "c", "type": "derived", "expr": "1 if d else 2"},
        {"key": "d", "type": "boolean", "chance": [1, 2], "when": "a == 'x'"},
        {"key": "e", "type": "derived", "expr": "b + 1"},
        grammars={"g": {"origin": ["#b#"]}},
    )
    errors = dict(errors_of(definition))
    assert errors[("fields", 0)] == "is part of a dependency cycle: a -> b -> c -> d -> a"
    assert errors[("fields", 2)] == "is part of a dependency cycle: c -> d -> a -> b -> c"
    assert ("fields", 4) not in errors


def test_field_depending_on_itself_through_when() -> None:
    assert_error(
        with_fields({"key": "a", "type": "boolean", "chance": [1, 2], "when": "a"}),
        ("fields", 0),
        "depends on itself",
    )


# ---------------------------------------------------------------------------------------------
# limits


def test_field_count_limit() -> None:
    fields = [{"key": f"f{index}", "type": "text"} for index in range(200)]
    compile_definition({"fields": fields})
    fields.append({"key": "f200", "type": "text"})
    assert_error({"fields": fields}, ("fields",), "at most 200")


def test_option_count_limit() -> None:
    options = [f"o{index}" for index in range(1000)]
    compile_definition(with_fields({"key": "a", "type": "choice", "options": options}))


def test_size_limit() -> None:
    definition = with_fields({"key": "a", "type": "text"})
    padding = (
        65536 - len(json.dumps(definition, separators=(",", ":")).encode()) - len(',"default":""')
    )
    definition["fields"][0]["default"] = "x" * padding
    definition["fields"][0]["max_length"] = 10000
    del definition["fields"][0]["max_length"]
    too_long = copy.deepcopy(definition)
    assert_error(
        definition, ("fields", 0, "default"), "longer than max_length"
    )  # 64 KiB exactly: checked further
    too_long["fields"][0]["default"] += "x"
    assert_error(too_long, ("_schema",), "65537 bytes (at most 65536)")


def test_size_is_measured_in_utf8_bytes() -> None:
    definition = with_fields({"key": "a", "type": "text", "default": "é" * 33000})
    assert_error(definition, ("_schema",), "bytes (at most 65536)")


def test_grammar_depth_limit() -> None:
    def chain(length: int) -> dict[str, list[str]]:
        symbols = {f"s{index}": [f"#s{index + 1}#"] for index in range(length - 1)}
        symbols[f"s{length - 1}"] = ["end"]
        symbols["origin"] = ["#s0#"]
        return symbols

    compile_definition(
        with_fields({"key": "a", "type": "text", "grammar": "g"}, grammars={"g": chain(19)})
    )
    assert_error(
        with_fields({"key": "a", "type": "text", "grammar": "g"}, grammars={"g": chain(20)}),
        ("grammars", "g", "origin"),
        "21 levels deep (at most 20)",
    )


def test_grammar_expansion_size_limit() -> None:
    symbols = {f"s{index}": [f"#s{index + 1}##s{index + 1}#"] for index in range(14)}
    symbols["s14"] = ["x"]
    symbols["origin"] = ["#s0#"]
    assert_error(
        with_fields({"key": "a", "type": "text", "grammar": "g"}, grammars={"g": symbols}),
        ("grammars", "g", "origin"),
        "more than 5000 steps",
    )


# --- cost: an upper bound on the work of making one character --------------------------------


@pytest.mark.parametrize(
    ("notation", "dice"),
    [("d20", 1), ("4d6kh3 + 2", 4), ("(2d6 + 1d4) * 3", 3), ("100d1000!", 200), ("3d6!+2d4", 105)],
)
def test_the_cost_of_dice_is_the_most_dice_thrown(notation: str, dice: int) -> None:
    from app.generation.dice import parse_dice

    assert parse_dice(notation).cost == dice


def test_the_cost_of_a_definition_bounds_each_field() -> None:
    definition = {
        "tables": {"t": ["a", "b", "c", "d", "e", "f"]},
        "names": {"n": {"parts": [["Al", "Bo"], ["a", ""], ["ric"]]}},
        "grammars": {"g": {"origin": ["#x# and #x#", "plain"], "x": ["y", "#klass#"]}},
        "fields": [
            {"key": "klass", "type": "choice", "options": ["Fighter", "Wizard"]},  # 1
            {"key": "hp", "type": "integer", "dice": "3d6"},  # 1 + 3
            {"key": "age", "type": "integer", "range": [16, 70]},  # 1
            {"key": "traits", "type": "pick", "table": "t", "count": 2},  # 1 + 6 + 2
            {  # the costlier case: 1 + 3 options + 3 picked
                "key": "spells",
                "type": "pick",
                "options": ["Shield", "Sleep", "Light"],
                "count": {"switch": "klass", "cases": {"Fighter": 1, "Wizard": 3}},
            },
            {"key": "name", "type": "name", "generator": "n"},  # 1 + 3 part lists
            # origin: its rule of two x (1 + 2 + 2), x: its rule inserting a field (1 + 1)
            {"key": "hook", "type": "text", "grammar": "g"},  # 1 + 5
            {"key": "motto", "type": "text", "default": "-"},  # 1
            {"key": "lucky", "type": "boolean", "chance": [1, 2]},  # 1
            {"key": "hp2", "type": "derived", "expr": "hp * 2"},  # 1
        ],
    }
    compiled = compile_definition(definition)
    assert compiled.field("hook").grammar.steps == {"origin": 5, "x": 2}
    assert compiled.cost == 1 + 4 + 1 + 9 + 7 + 4 + 6 + 1 + 1 + 1
