"""Grammars (Tracery subset) and part-based name generators."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from app.generation import compile_definition, generate
from app.generation.grammar import article, capitalize

from .helpers import name_pattern


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("owl", "an owl"),
        ("Eagle", "an Eagle"),
        ("unicorn", "an unicorn"),
        ("cat", "a cat"),
        ("hour", "a hour"),
        ("", "a "),
        ("42 cats", "a 42 cats"),
    ],
)
def test_article_rule(text: str, expected: str) -> None:
    assert article(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("owl", "Owl"), ("", ""), ("élan", "Élan"), ("a b", "A b")]
)
def test_capitalize(text: str, expected: str) -> None:
    assert capitalize(text) == expected


def text_template(origin: list[str], **symbols: list[str]) -> dict:
    return {
        "grammars": {"g": {"origin": origin, **symbols}},
        "fields": [
            {"key": "level", "type": "integer", "range": [3, 3]},
            {"key": "brave", "type": "boolean", "chance": [1, 1]},
            {"key": "tags", "type": "pick", "options": ["x", "y"], "count": 2},
            {"key": "ratio", "type": "derived", "expr": "level / 2"},
            {"key": "off", "type": "integer", "range": [1, 1], "when": "not brave"},
            {"key": "story", "type": "text", "grammar": "g"},
        ],
    }


def story(origin: list[str], seed: int = 1, **symbols: list[str]) -> str:
    return generate(compile_definition(text_template(origin, **symbols)), seed).attributes["story"]


def test_modifiers_apply_left_to_right() -> None:
    assert story(["#animal.a#"], animal=["owl"]) == "an owl"
    assert story(["#animal.a.capitalize#"], animal=["owl"]) == "An owl"
    assert story(["#animal.capitalize.a#"], animal=["owl"]) == "an Owl"
    assert story(["#animal.a#"], animal=["#colour# owl"], colour=["red"]) == "a red owl"


def test_field_values_are_inserted_as_text() -> None:
    text = story(["#level#|#brave#|#tags#|#ratio#|#off#|#level.a#"])
    level, brave, tags, ratio, off, with_article = text.split("|")
    assert (level, brave, ratio, off, with_article) == ("3", "true", "1.5", "", "a 3")
    assert tags in ("x, y", "y, x")


def test_rules_are_chosen_uniformly_on_the_fields_stream() -> None:
    compiled = compile_definition(text_template(["#a#"], a=["1", "2", "3"]))
    counts = Counter(generate(compiled, seed).attributes["story"] for seed in range(3000))
    assert set(counts) == {"1", "2", "3"}
    assert all(abs(count - 1000) < 150 for count in counts.values())


def test_every_tag_expands_independently() -> None:
    compiled = compile_definition(text_template(["#d##d##d##d#"], d=["1", "2"]))
    assert any(len(set(generate(compiled, seed).attributes["story"])) == 2 for seed in range(20))


def test_generated_text_is_cut_to_max_length() -> None:
    definition = text_template(["#a# and more words"], a=["long words"])
    definition["fields"][-1]["max_length"] = 10
    assert generate(compile_definition(definition), 1).attributes["story"] == "long words"


def test_custom_start_symbol() -> None:
    definition = text_template(["origin"], other=["other"])
    definition["fields"][-1]["start"] = "other"
    assert generate(compile_definition(definition), 1).attributes["story"] == "other"


def test_text_default_and_empty_text() -> None:
    compiled = compile_definition(
        {"fields": [{"key": "a", "type": "text", "default": "fixed"}, {"key": "b", "type": "text"}]}
    )
    assert generate(compiled, 1).attributes == {"a": "fixed", "b": ""}


def test_literal_characters_survive() -> None:
    assert (
        story(["[brackets] {braces} 100% \\ #a#."], a=["ok"]) == "[brackets] {braces} 100% \\ ok."
    )


def test_name_generator_uses_one_part_from_each_list() -> None:
    generator = {"parts": [["Al", "Bran", "Cor"], ["a", "e", ""], ["ric", "wyn", "dan"]]}
    compiled = compile_definition(
        {
            "names": {"human": generator},
            "fields": [{"key": "name", "type": "name", "generator": "human"}],
        }
    )
    pattern = name_pattern(generator)
    names = {generate(compiled, seed).name for seed in range(500)}
    assert all(pattern.fullmatch(name) for name in names)
    assert len(names) == 27  # every combination shows up
    assert all(re.fullmatch(r"[A-Z][a-z]+", name) for name in names)


def test_a_text_is_made_only_up_to_its_max_length():
    # ten bytes of rule that would write ~200 MB, to keep one character (a security audit's)
    definition = {
        "grammars": {"g": {"origin": ["#b#" * 4990], "b": ["x" * 39022]}},
        "fields": [{"key": "t", "type": "text", "grammar": "g", "max_length": 1}],
    }
    compiled = compile_definition(definition)
    import tracemalloc

    tracemalloc.start()
    try:
        assert generate(compiled, 1).attributes == {"t": "x"}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # the whole text would be ~195 MB


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 8, 13, 40, 200])
def test_a_cut_expansion_is_the_start_of_the_whole_one(limit):
    """Stopping at ``max_length`` keeps exactly the characters the whole text would start with,
    modifiers (which look at the start of their text) included."""
    symbols = {
        "origin": ["#animal.a.capitalize# met #animal.a# and #place#.", "#place.capitalize#!"],
        "animal": ["owl", "eagle", "#adjective# #animal2#"],
        "animal2": ["cat", "ibis"],
        "adjective": ["old", "young", "odd"],
        "place": ["the #adjective# inn", "a hut"],
    }
    whole = compile_definition(
        {"grammars": {"g": symbols}, "fields": [{"key": "t", "type": "text", "grammar": "g"}]}
    )
    cut = compile_definition(
        {
            "grammars": {"g": symbols},
            "fields": [{"key": "t", "type": "text", "grammar": "g", "max_length": limit}],
        }
    )
    for seed in range(60):
        full = generate(whole, seed).attributes["t"]
        assert generate(cut, seed).attributes["t"] == full[:limit], seed
