"""Shared definitions and hypothesis strategies for the engine's tests."""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import strategies as st

EXAMPLE: dict[str, Any] = {
    "names": {
        "human": {"parts": [["Al", "Bran", "Cor"], ["a", "e", ""], ["ric", "wyn", "dan"]]},
        "elf": {"parts": [["Ae", "Ela", "Syl"], ["lan", "ri"], ["ion", "wen", "iel"]]},
    },
    "grammars": {
        "hook": {
            "origin": ["#name# left #place# #reason#."],
            "place": ["a border village", "the capital"],
            "reason": ["to repay a blood debt", "chasing a prophecy"],
        }
    },
    "tables": {"traits": ["brave", "greedy", "curious", "pious", "reckless", "honest"]},
    "name_field": "name",
    "fields": [
        {
            "key": "ancestry",
            "type": "choice",
            "options": [
                {"value": "Human", "weight": 5},
                {"value": "Elf", "weight": 2},
                "Dwarf",
            ],
        },
        {
            "key": "klass",
            "label": "Class",
            "type": "choice",
            "options": ["Fighter", "Wizard", "Rogue"],
        },
        {
            "key": "name",
            "type": "name",
            "generator": {"switch": "ancestry", "cases": {"Elf": "elf"}, "default": "human"},
        },
        {"key": "str", "type": "integer", "dice": "4d6kh3", "group": "abilities"},
        {"key": "con", "type": "integer", "dice": "4d6kh3", "group": "abilities"},
        {"key": "con_mod", "type": "derived", "expr": "floor((con - 10) / 2)"},
        {
            "key": "hit_points",
            "type": "integer",
            "min": 1,
            "plus": "con_mod",
            "dice": {
                "switch": "klass",
                "cases": {"Fighter": "1d10", "Wizard": "1d6"},
                "default": "1d8",
            },
        },
        {"key": "age", "type": "integer", "range": [16, 70]},
        {"key": "traits", "type": "pick", "table": "traits", "count": 2},
        {
            "key": "spells",
            "type": "pick",
            "when": "klass == 'Wizard'",
            "count": 2,
            "options": ["Shield", "Sleep", "Light"],
        },
        {"key": "left_handed", "type": "boolean", "chance": [1, 10]},
        {"key": "hook", "type": "text", "grammar": "hook"},
        {"key": "motto", "type": "text", "default": "", "max_length": 200},
    ],
}


def example() -> dict[str, Any]:
    """A fresh deep copy of the API.md example definition."""
    return copy.deepcopy(EXAMPLE)


def fields_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {field["key"]: field for field in definition["fields"]}


# ---------------------------------------------------------------------------------------------
# Valid definitions

WORDS = ["Ash", "Birch", "Cedar", "Dusk", "Elm", "Fern", "Gale", "Holly", "Iris", "Jade", "Kest"]
DICE = [
    "d20",
    "4d6kh3",
    "2d6+3",
    "3d8-2",
    "d%",
    "1d6!",
    "(1d4+1)*2",
    "5d10dl2",
    "2d12kl1",
    "10-1d6",
]
NAMES = {"parts": [["Ka", "Lo", "Mi", "Ne"], ["", "ra", "th"], ["n", "s", "dor"]]}


def _options(draw: st.DrawFn, size: int) -> list[Any]:
    values = draw(st.lists(st.sampled_from(WORDS), min_size=size, max_size=size, unique=True))
    weighted = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    weights = draw(st.lists(st.integers(1, 20), min_size=size, max_size=size))
    return [
        {"value": value, "weight": weight} if use else value
        for value, use, weight in zip(values, weighted, weights, strict=True)
    ]


@st.composite
def valid_definitions(draw: st.DrawFn, max_fields: int = 8) -> dict[str, Any]:
    """A valid definition; later fields may depend on earlier ones, then the order is shuffled."""
    count = draw(st.integers(1, max_fields))
    fields: list[dict[str, Any]] = []
    ints: list[str] = []
    bools: list[str] = []
    choices: dict[str, list[str]] = {}
    texts: list[str] = []
    definition: dict[str, Any] = {"fields": fields}
    for number in range(count):
        key = f"f{number}"
        kind = draw(
            st.sampled_from(["integer", "choice", "pick", "boolean", "text", "name", "derived"])
        )
        field: dict[str, Any] = {"key": key, "type": kind}
        earlier_ints, earlier_bools = list(ints), list(bools)
        if kind == "integer":
            if draw(st.booleans()):
                if choices and draw(st.booleans()):
                    governing = draw(st.sampled_from(sorted(choices)))
                    cases = {value: draw(st.sampled_from(DICE)) for value in choices[governing]}
                    field["dice"] = {"switch": governing, "cases": cases}
                else:
                    field["dice"] = draw(st.sampled_from(DICE))
            else:
                low = draw(st.integers(-1000, 1000))
                field["range"] = [low, low + draw(st.integers(0, 500))]
            if ints and draw(st.booleans()):
                field["plus"] = f"floor({draw(st.sampled_from(ints))} / 3)"
            if draw(st.booleans()):
                field["min"] = draw(st.integers(-50, 5))
            if draw(st.booleans()):
                field["max"] = draw(st.integers(10, 60))
            ints.append(key)
        elif kind in ("choice", "pick"):
            size = draw(st.integers(1, 6))
            options = _options(draw, size)
            if draw(st.booleans()):
                definition.setdefault("tables", {})[f"t{number}"] = options
                field["table"] = f"t{number}"
            else:
                field["options"] = options
            values = [item if isinstance(item, str) else item["value"] for item in options]
            if kind == "pick":
                field["count"] = draw(st.integers(1, size))
            else:
                choices[key] = values
        elif kind == "boolean":
            den = draw(st.integers(1, 12))
            field["chance"] = [draw(st.integers(0, den)), den]
            bools.append(key)
        elif kind == "text":
            if draw(st.booleans()):
                refs = [f"#{key}#" for key in (ints + texts)[:2]]
                definition.setdefault("grammars", {})[f"g{number}"] = {
                    "origin": ["#thing.a.capitalize# " + " ".join(refs), "plain #thing#"],
                    "thing": ["owl", "eagle", "#colour# cat"],
                    "colour": ["red", "amber"],
                }
                field["grammar"] = f"g{number}"
                field["max_length"] = draw(st.integers(5, 200))
            elif draw(st.booleans()):
                field["default"] = draw(st.sampled_from(["", "quiet", "a default text"]))
            texts.append(key)
        elif kind == "name":
            definition.setdefault("names", {})["people"] = NAMES
            field["generator"] = "people"
        else:
            if ints:
                field["expr"] = draw(
                    st.sampled_from(
                        [
                            f"floor(({ints[-1]} - 10) / 2)",
                            f"{ints[0]} * 2 + 1",
                            f"{ints[-1]} / 4",
                            f"{ints[0]} > 10",
                            f"round({ints[-1]} / 3) if {ints[0]} >= 0 else -1",
                        ]
                    )
                )
            else:
                field["expr"] = "7 // 2"
        if earlier_bools and draw(st.integers(0, 3)) == 0:
            field["when"] = draw(st.sampled_from(earlier_bools))
        elif earlier_ints and draw(st.integers(0, 4)) == 0:
            field["when"] = f"{draw(st.sampled_from(earlier_ints))} > 3"
        fields.append(field)
    order = draw(st.permutations(range(len(fields))))
    definition["fields"] = [fields[index] for index in order]
    return definition


# ---------------------------------------------------------------------------------------------
# Independent checks of a generated value against the raw definition


def option_values(definition: dict[str, Any], raw: Any) -> list[str]:
    if isinstance(raw, str):  # a table name
        raw = definition["tables"][raw]
    return [item if isinstance(item, str) else item["value"] for item in raw]


def name_pattern(generator: dict[str, Any]) -> re.Pattern[str]:
    return re.compile(
        "".join(
            "(?:" + "|".join(re.escape(part) for part in parts) + ")"
            for parts in generator["parts"]
        )
    )
