"""Strict types and text cleaning in the shared schema fields."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.common.text import clean_html, clean_text


@pytest.mark.parametrize("value", [0, 1, "yes", "true", None, "false"])
def test_booleans_are_only_true_or_false(probe, value):
    response = probe.post("/api/v1/_probe/echo", json={"name": "a", "flag": value})
    assert response.status_code == 422
    assert "flag" in response.get_json()["errors"]["json"]


@pytest.mark.parametrize("value", ["5", 5.0, 5.5, True, None])
def test_integers_are_only_json_integers(probe, value):
    response = probe.post("/api/v1/_probe/echo", json={"name": "a", "count": value})
    assert response.status_code == 422
    assert "count" in response.get_json()["errors"]["json"]


def test_valid_strict_values_pass(probe):
    response = probe.post("/api/v1/_probe/echo", json={"name": "a", "flag": False, "count": 5})
    assert response.status_code == 200
    assert response.get_json() == {"name": "a", "flag": False, "count": 5, "bio": ""}


def test_text_is_cleaned_before_length_check(probe):
    # 10 visible characters, surrounded by spaces and with control characters inside
    response = probe.post(
        "/api/v1/_probe/echo", json={"name": "  abcde\u0007fghij \t\n", "bio": "<b>x</b>"}
    )
    assert response.status_code == 200
    assert response.get_json()["name"] == "abcdefghij"
    too_long = probe.post("/api/v1/_probe/echo", json={"name": " abcdefghijk "})
    assert too_long.status_code == 422
    blank = probe.post("/api/v1/_probe/echo", json={"name": "  \u0007 "})
    assert blank.status_code == 422


def test_text_far_longer_than_its_limit_is_refused_before_it_is_cleaned(probe, monkeypatch):
    # the probe's name is 1..10 characters: padding may make it up to 100 as sent
    padded = probe.post("/api/v1/_probe/echo", json={"name": " " * 80 + "abcdefghij"})
    assert padded.status_code == 200 and padded.get_json()["name"] == "abcdefghij"
    # beyond ten times the limit, neither cleaning nor the sanitiser (whose cost grows with
    # the text: ~1.2 s per MB) is run at all
    import app.common.schemas as schemas

    def not_called(value):
        raise AssertionError("cleaned a text that was refused by its length")

    monkeypatch.setattr(schemas, "clean_html", not_called)
    bio = probe.post("/api/v1/_probe/echo", json={"name": "a", "bio": "<a>" * 200_000})
    assert bio.status_code == 422
    assert bio.get_json()["errors"]["json"] == {"bio": ["Longer than maximum length 50."]}
    monkeypatch.setattr(schemas, "clean_text", not_called)
    name = probe.post("/api/v1/_probe/echo", json={"name": "x" * 101})
    assert name.status_code == 422
    assert name.get_json()["errors"]["json"] == {"name": ["Longer than maximum length 10."]}


def test_short_text_is_not_html_escaped(probe):
    response = probe.post("/api/v1/_probe/echo", json={"name": "<b>&'\"</b>"})
    assert response.get_json()["name"] == "<b>&'\"</b>"


def test_text_is_nfc_normalised():
    assert clean_text("e\u0301") == "\u00e9"
    assert clean_text(" a\tb\nc\x1b ") == "a\tb\nc"


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<script>alert(1)</script>hi", "hi"),
        ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
        ('<p onclick="x()">p</p>', "<p>p</p>"),
        ("<style>body{}</style>text", "text"),
        ('<img src="x" onerror="alert(1)">', ""),
        ("<div><em>ok</em></div>", "<em>ok</em>"),
        (
            '<a href="https://example.com">l</a>',
            '<a href="https://example.com" rel="noopener noreferrer nofollow">l</a>',
        ),
        (
            "<ul><li>a</li></ul><blockquote>q</blockquote>",
            "<ul><li>a</li></ul><blockquote>q</blockquote>",
        ),
        # http(s) links only: no relative or scheme-relative ones, no attribute but href
        ('<a href="//evil.example/x">s</a>', '<a rel="noopener noreferrer nofollow">s</a>'),
        ('<a href="/here" rel="opener">r</a>', '<a rel="noopener noreferrer nofollow">r</a>'),
        ('<p title="t" lang="en">p</p>', "<p>p</p>"),
        (
            '<a href="HTTP://example.com/" title="t">l</a>',
            '<a href="HTTP://example.com/" rel="noopener noreferrer nofollow">l</a>',
        ),
    ],
)
def test_long_form_html_is_sanitised(dirty, clean):
    assert clean_html(dirty) == clean


@given(st.text(alphabet=st.sampled_from(list("<>/\"'=& abpscriptonerrorhfja:\x00\x07\n\t\u0301e"))))
def test_html_cleaning_is_idempotent(value):
    once = clean_html(value)
    assert clean_html(once) == once
    assert "<script" not in once.lower()
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", once, re.IGNORECASE)


@given(st.text())
def test_text_cleaning_is_idempotent(value):
    once = clean_text(value)
    assert clean_text(once) == once


def test_usernames_and_tags_are_cleaned_before_their_pattern(client, alice):
    from tests.support.factories import SIMPLE_DEFINITION, register, unique_name

    name = unique_name()
    response = register(client, username=f"  {name}\u0007 ", email=f"{name}@example.com")
    assert response.status_code == 201
    assert response.get_json()["username"] == name
    template = client.post(
        "/api/v1/templates",
        json={"name": "t", "definition": SIMPLE_DEFINITION, "tags": [" fantasy ", "npc\t"]},
        headers=alice.auth,
    )
    assert template.status_code == 201
    assert template.get_json()["tags"] == ["fantasy", "npc"]


INVISIBLE_ONLY = [
    "\u200b",  # zero-width space
    "\u2060\u200d",  # word joiner, zero-width joiner
    "\u00ad",  # soft hyphen
    "\u202e",  # right-to-left override
    "\u0301\u0301",  # combining marks with nothing to sit on
    "\u20dd",  # an enclosing mark (Me)
    "\u200b \u200b",  # a space between them (the ends are not whitespace: not trimmed)
    "\ufeff\u2028\u200c",  # byte order mark, line separator, zero-width non-joiner
    "\u3164",  # Hangul filler: a letter (Lo) that fonts draw as nothing
    "\uffa0\u115f\u1160",  # its halfwidth form, the choseong and jungseong fillers
    "\u2800",  # the blank Braille pattern: a symbol (So) drawn as blank space
]


@pytest.mark.parametrize("name", INVISIBLE_ONLY)
def test_short_text_that_shows_nothing_is_refused(probe, name):
    response = probe.post("/api/v1/_probe/echo", json={"name": name})
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"] == {"name": ["Must contain a visible character."]}


@pytest.mark.parametrize(
    "name",
    [
        "\U0001f469\u200d\U0001f4bb",  # woman technologist: a ZWJ emoji sequence
        "\u0645\u200c\u0627",  # Arabic with a zero-width non-joiner
        "\u0915\u094d\u200d\u0937",  # Devanagari with a virama and a zero-width joiner
        "a\u200bb",  # a format character inside visible text stays
        "\u2801\u2800\u2802",  # Braille with a blank cell between letters
    ],
)
def test_visible_text_keeps_its_format_characters(probe, name):
    response = probe.post("/api/v1/_probe/echo", json={"name": name})
    assert response.status_code == 200
    assert response.get_json()["name"] == name


def test_only_fields_that_refuse_empty_text_refuse_invisible_text(probe):
    # the list query's q has no minimum length: an invisible search is a search like any other
    response = probe.get("/api/v1/_probe/items", query_string={"q": "\u200b"})
    assert response.status_code == 200
