"""Expressions: the whitelist, static types, exact arithmetic and run-time failures."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.generation.expressions import (
    BOOL,
    INT,
    LIST,
    NUM,
    STR,
    EvalFailure,
    ExpressionError,
    evaluate,
    parse_expression,
)

TYPES = {"con": INT, "klass": STR, "flag": BOOL, "spells": LIST, "third": NUM, "big": INT}
VALUES = {"con": 15, "klass": "Wizard", "flag": True, "third": Fraction(1, 3), "big": 2**52}


def run(source: str, values: dict | None = None) -> object:
    evaluator, _ = parse_expression(source, TYPES).bind(TYPES)
    return evaluate(evaluator, VALUES if values is None else values)


def static_type(source: str) -> object:
    return parse_expression(source, TYPES).bind(TYPES)[1]


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("floor((con - 10) / 2)", 2),
        ("floor((7 - 10) / 2)", -2),
        ("ceil(con / 2)", 8),
        ("con / 3", 5),
        ("con / 2", Fraction(15, 2)),
        ("con // 2", 7),
        ("-7 // 2", -4),
        ("-7 % 3", 2),
        ("con % 4", 3),
        ("round(5 / 2)", 3),
        ("round(-5 / 2)", -3),
        ("round(7 / 3)", 2),
        ("round(con)", 15),
        ("min(con, 3, 9)", 3),
        ("max(con, third)", 15),
        ("abs(3 - con)", 12),
        ("third * 3", 1),
        ("third + third", Fraction(2, 3)),
        ("klass == 'Wizard'", True),
        ("klass != 'Wizard'", False),
        ("klass < 'Z'", True),
        ("con > 10 and flag", True),
        ("not flag or con < 3", False),
        ("1 < con < 20", True),
        ("1 < con < 10", False),
        ("con if flag else 0", 15),
        ("'high' if con >= 15 else 'low'", "high"),
        ("-con", -15),
        ("+con", 15),
        ("True", True),
        ("0x10 + 1", 17),
    ],
)
def test_evaluation(source: str, value: object) -> None:
    result = run(source)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("floor(con / 2)", INT),
        ("con / 2", NUM),
        ("con + third", NUM),
        ("con * 2 - 1", INT),
        ("con // third", INT),
        ("klass == 'x'", BOOL),
        ("klass", STR),
        ("abs(third)", NUM),
        ("con if flag else 'x'", frozenset({"int", "str"})),
    ],
)
def test_static_types(source: str, kind: object) -> None:
    assert static_type(source) == kind


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("con ** 2", "'**' is not allowed"),
        ("con.real", "attribute access is not allowed"),
        ("klass[0]", "indexing is not allowed"),
        ("print(con)", "only floor, ceil, round, min, max and abs can be called"),
        ("__import__('os')", "only floor, ceil, round, min, max and abs can be called"),
        ("(lambda: 1)()", "only floor, ceil, round, min, max and abs can be called"),
        ("lambda: 1", "lambda is not allowed"),
        ("floor(x=1)", "keyword arguments are not allowed"),
        ("floor(1, 2)", "floor() takes exactly one argument"),
        ("min(1)", "min() needs at least two arguments"),
        ("max(1, *[1, 2])", "not allowed"),
        ("x + 1", "unknown name 'x'"),
        ("floor + 1", "floor is a function"),
        ("1.5 * con", "decimal numbers are not allowed"),
        ("None", "None is not allowed"),
        ("b'x' == b'y'", "bytes constants are not allowed"),
        ("1j", "complex constants are not allowed"),
        ("2 ** 100000", "'**' is not allowed"),
        ("9007199254740992", "larger than 2**53 - 1"),
        ("f'{con}'", "f-strings are not allowed"),
        ("[con]", "lists are not allowed"),
        ("con in (1, 2)", "'in' is not allowed"),
        ("con is 1", "'is' is not allowed"),
        ("(y := 1)", "':=' is not allowed"),
        ("[c for c in 'ab']", "not allowed"),
        ("con & 1", "'&' is not allowed"),
        ("~con", "'~' is not allowed"),
        ("con +", "syntax error"),
        ("con = 1", "syntax error"),
        ("", "empty"),
        ("   ", "empty"),
        ("con\x00", "cannot be parsed|syntax error"),
        # escapes in a string literal spell what the JSON of a definition may not carry
        ("klass == 'a\\x00b'", "must not contain NUL"),
        ("'a\\ud800b'", "no lone surrogates"),
        ("'\\udfff' if flag else 'x'", "no lone surrogates"),
        ("x" * 1001, "longer than 1000"),
        ("abs(" * 70 + "1" + ")" * 70, "nested more than 64 levels"),
        ("-" * 200 + "1", "nested more than 64 levels"),
        ("+".join(["a"] * 66), "each operator of a chain such as a + b + c is one more level"),
    ],
)
def test_rejected_at_parse_time(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message if "|" in message else re.escape(message)):
        parse_expression(source, TYPES)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("klass + 'a'", "strings cannot be joined"),
        ("klass * 3", "strings cannot be repeated"),
        ("3 * klass", "strings cannot be repeated"),
        ("flag + 1", "'+' needs numbers, not a boolean"),
        ("spells == 1", "is a list"),
        ("klass == 1", "cannot compare a string with an integer"),
        ("flag == 1", "cannot compare a boolean with an integer"),
        ("flag < True", "cannot order booleans"),
        ("con and flag", "'and' needs a boolean, not an integer"),
        ("not con", "'not' needs a boolean, not an integer"),
        ("1 if con else 2", "condition needs a boolean"),
        ("floor(klass)", "floor() needs numbers"),
        ("-klass", "unary '-' needs numbers"),
        ("(con if flag else 'x') + 1", "'+' needs numbers, not a value of mixed type"),
        ("(con if flag else 'x') == 1", "mixed type"),
    ],
)
def test_rejected_by_the_type_check(source: str, message: str) -> None:
    expression = parse_expression(source, TYPES)
    with pytest.raises(ExpressionError, match=re.escape(message)):
        expression.bind(TYPES)


@pytest.mark.parametrize(
    ("source", "values"),
    [
        ("con / 0", VALUES),
        ("con // (con - 15)", VALUES),
        ("con % 0", VALUES),
        ("con + 1", {}),
        ("klass == 'Wizard'", {"klass": None}),
        ("big * big", VALUES),
        ("big * 2 + big * 2", VALUES),
        ("-big * 4", VALUES),
        ("1 / big / big", VALUES),
    ],
)
def test_runtime_failures(source: str, values: dict) -> None:
    with pytest.raises(EvalFailure):
        run(source, values)


def test_short_circuit_skips_null_operands() -> None:
    assert run("flag or con > 1", {"flag": True}) is True
    assert run("not flag and con > 1", {"flag": True}) is False
    assert run("con if flag else klass", {"flag": True, "con": 3}) == 3


def test_names_are_collected() -> None:
    assert parse_expression("floor(con / 2) + min(big, 3)", TYPES).names == {"con", "big"}
    assert parse_expression("1 + 2", TYPES).names == frozenset()


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_raises_anything_else(source: str) -> None:
    try:
        expression = parse_expression(source, TYPES)
        evaluator, _ = expression.bind(TYPES)
        evaluate(evaluator, VALUES)
    except (ExpressionError, EvalFailure):
        pass


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.recursive(
        st.sampled_from(["con", "third", "big", "2", "0", "7", "-3"]),
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%"]), inner).map(
            lambda parts: f"({parts[0]} {parts[1]} {parts[2]})"
        ),
        max_leaves=6,
    )
)
def test_arithmetic_is_exact_or_fails_cleanly(source: str) -> None:
    try:
        value = run(source)
    except EvalFailure:
        return
    assert type(value) in (int, Fraction)
    assert abs(value) <= 2**53 - 1
    if isinstance(value, Fraction):
        assert value.denominator != 1
