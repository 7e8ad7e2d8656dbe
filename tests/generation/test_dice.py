"""Dice notation: parser, limits, exact bounds and the distribution of rolls."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.generation.dice import DiceError, parse_dice
from app.generation.rng import stream_v1


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("d20", 1, 20),
        ("1d20", 1, 20),
        ("d%", 1, 100),
        ("2d%", 2, 200),
        ("4d6kh3", 3, 18),
        ("4d6kl3", 3, 18),
        ("4d6dh1", 3, 18),
        ("4d6dl3", 1, 6),
        ("4d6dl4", 0, 0),
        ("2d6+3", 5, 15),
        ("3d8 - 2", 1, 22),
        ("10-1d6", 4, 9),
        ("1d6-1d6", -5, 5),
        ("(1d4+1)*2", 4, 10),
        ("1d6*1d6", 1, 36),
        ("(1d6-4)*(1d6-4)", -6, 9),
        ("(2-1d4)*3", -6, 3),
        ("1d6!", 1, 606),
        ("3d6!", 3, 618),
        (" 4 d 6 k h 3 ", 3, 18),
        ("100d1000", 100, 100_000),
        ("1d2", 1, 2),
        ("(((d6)))", 1, 6),
    ],
)
def test_bounds_are_exact(text: str, low: int, high: int) -> None:
    dice = parse_dice(text)
    assert (dice.low, dice.high) == (low, high)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0d6", "'0d6' needs at least one die"),
        ("101d6", "more than 100 dice"),
        ("1d1", "2 to 1000 sides"),
        ("1d1001", "2 to 1000 sides"),
        ("4d6kh5", "can only keep 1 to 4"),
        ("4d6kh0", "can only keep 1 to 4"),
        ("4d6dl5", "can only drop 1 to 4"),
        ("4d6kh", "needs a count after 'kh'"),
        ("3D6", "lowercase"),
        ("4d6KH3", "lowercase"),
        ("5", "needs at least one die"),
        ("2+3", "needs at least one die"),
        ("", "empty"),
        ("   ", "empty"),
        ("1d", "number of sides"),
        ("1d6+", "ends too early"),
        ("(1d6", "missing ')'"),
        ("1d6)", "unexpected ')'"),
        ("-1d6", "unexpected '-'"),
        ("1d6/2", "unexpected '/'"),
        ("1d6^2", "unexpected '^'"),
        ("1d6!!", "unexpected '!'"),
        ("1d6kh1!", "unexpected '!'"),
        ("1d6x", "unexpected 'x'"),
        ("1d\uff16", "number of sides"),
        ("d" + "6" * 20, "too large"),
        ("1d6+" * 30 + "1", "longer than 120"),
        ("100d1000*100d1000*100d1000*100d1000", "beyond"),
    ],
)
def test_invalid_notation(text: str, message: str) -> None:
    with pytest.raises(DiceError, match=re.escape(message)):
        parse_dice(text)


def test_non_string_is_rejected() -> None:
    with pytest.raises(DiceError, match="string"):
        parse_dice(6)  # type: ignore[arg-type]


def test_notation_of_exactly_120_characters_is_allowed() -> None:
    text = "d6" + "+1" * 59
    assert len(text) == 120
    assert parse_dice(text).high == 65


def test_4d6kh3_range_and_mean() -> None:
    dice = parse_dice("4d6kh3")
    rolls = [dice.roll(stream_v1(seed, "str", 0)) for seed in range(20_000)]
    assert min(rolls) == 3
    assert max(rolls) == 18
    assert abs(sum(rolls) / len(rolls) - 12.2446) < 0.1


def test_keep_and_drop_pick_the_right_dice() -> None:
    # the same stream gives the same four dice; compare the modes on them
    def rolls_for(seed: int) -> list[int]:
        stream = stream_v1(seed, "k", 0)
        return sorted(1 + stream.below(6) for _ in range(4))

    for seed in range(200):
        dice = rolls_for(seed)
        assert parse_dice("4d6kh3").roll(stream_v1(seed, "k", 0)) == sum(dice[1:])
        assert parse_dice("4d6kl1").roll(stream_v1(seed, "k", 0)) == dice[0]
        assert parse_dice("4d6dh1").roll(stream_v1(seed, "k", 0)) == sum(dice[:3])
        assert parse_dice("4d6dl2").roll(stream_v1(seed, "k", 0)) == sum(dice[2:])
        assert parse_dice("4d6").roll(stream_v1(seed, "k", 0)) == sum(dice)


def test_exploding_dice_add_extra_dice() -> None:
    dice = parse_dice("1d2!")
    results = Counter(dice.roll(stream_v1(seed, "x", 0)) for seed in range(4000))
    assert set(results) <= set(range(1, 203))
    # P(1) = 1/2, P(3) = 1/4 (2 then 1), P(2) never (a 2 always explodes)
    assert 2 not in results
    assert abs(results[1] / 4000 - 0.5) < 0.05
    assert abs(results[3] / 4000 - 0.25) < 0.05


def test_explosions_are_capped_at_100_extra_dice() -> None:
    class AlwaysMax:
        def below(self, bound: int) -> int:
            return bound - 1

    assert parse_dice("3d6!").roll(AlwaysMax()) == (3 + 100) * 6  # type: ignore[arg-type]
    assert parse_dice("3d6!").high == (3 + 100) * 6


def test_d_percent_is_d100() -> None:
    for seed in range(50):
        assert parse_dice("d%").roll(stream_v1(seed, "p", 0)) == parse_dice("1d100").roll(
            stream_v1(seed, "p", 0)
        )


dice_terms = st.builds(
    lambda count, sides, mode, keep: (
        f"{count}d{sides}{mode}{min(keep, count) if mode not in ('', '!') else ''}"
    ),
    st.integers(1, 8),
    st.sampled_from([2, 4, 6, 10, 20, 100]),
    st.sampled_from(["", "!", "kh", "kl", "dh", "dl"]),
    st.integers(1, 8),
)
dice_expressions = st.recursive(
    dice_terms | st.integers(0, 20).map(str),
    lambda inner: st.tuples(inner, st.sampled_from("+-*"), inner).map(
        lambda parts: f"({parts[0]}{parts[1]}{parts[2]})"
    ),
    max_leaves=5,
)


@settings(max_examples=150, deadline=None, database=None)
@given(
    dice_expressions.filter(lambda text: "d" in text and len(text) <= 120),
    st.integers(0, 2**53 - 1),
)
def test_every_roll_is_within_the_exact_bounds(text: str, seed: int) -> None:
    dice = parse_dice(text)
    assert dice.low <= dice.roll(stream_v1(seed, "d", 0)) <= dice.high


def _support_term(count: int, sides: int, mode: str, keep: int) -> set[int]:
    kept = {"": count, "kh": keep, "kl": keep, "dh": count - keep, "dl": count - keep}[mode]
    return set(range(kept, kept * sides + 1))


support_terms = st.builds(
    lambda count, sides, mode, keep: (
        f"{count}d{sides}{mode}{min(keep, count) if mode else ''}",
        _support_term(count, sides, mode, min(keep, count)),
    ),
    st.integers(1, 3),
    st.sampled_from([2, 3, 6]),
    st.sampled_from(["", "kh", "kl", "dh", "dl"]),
    st.integers(1, 3),
)
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _combine(parts: tuple) -> tuple[str, set[int]]:
    (left, left_support), op, (right, right_support) = parts
    support = {_OPS[op](a, b) for a in left_support for b in right_support}
    return f"({left}{op}{right})", support


support_expressions = st.recursive(
    support_terms | st.integers(0, 9).map(lambda value: (str(value), {value})),
    lambda inner: st.tuples(inner, st.sampled_from("+-*"), inner).map(_combine),
    max_leaves=4,
)


@settings(max_examples=100, deadline=None, database=None)
@given(support_expressions.filter(lambda item: "d" in item[0]))
def test_bounds_equal_the_true_extremes(item: tuple[str, set[int]]) -> None:
    """Interval arithmetic gives exactly the smallest and largest reachable result."""
    text, support = item
    dice = parse_dice(text)
    assert (dice.low, dice.high) == (min(support), max(support))
