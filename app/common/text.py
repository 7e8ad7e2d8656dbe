"""Cleaning of text that users write (API.md section 1).

Short fields are plain text: NFC, control characters other than newline and tab removed,
surrounding whitespace trimmed. Long-form fields are additionally sanitised to an allowlist of
formatting tags with nh3, so no script, style, event handler or ``javascript:`` URL survives.
Both functions are idempotent: cleaning twice gives the result of cleaning once.
"""

from __future__ import annotations

from typing import Any

import nh3

from app.generation.cleaning import clean_text, has_visible_character

__all__ = ["clean_html", "clean_text", "clean_values", "has_visible_character"]

SAFE_TAGS = frozenset({"p", "br", "b", "strong", "i", "em", "ul", "ol", "li", "blockquote", "a"})
SAFE_ATTRIBUTES = {"a": {"href"}}
SAFE_URL_SCHEMES = frozenset({"http", "https"})


def clean_values(value: Any) -> Any:
    """Every string inside a JSON value (a character's attributes, generation locks) cleaned
    with :func:`clean_text`; keys and other values as they are."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_values(item) for item in value]
    if isinstance(value, dict):
        return {key: clean_values(item) for key, item in value.items()}
    return value


def _only_safe_attributes(tag: str, attribute: str, value: str) -> str | None:
    if attribute in SAFE_ATTRIBUTES.get(tag, ()) or (tag == "a" and attribute == "rel"):
        return value  # rel: the link_rel nh3 sets (a rel of the input is not let through)
    return None


def clean_html(value: str) -> str:
    """Plain-text cleaning, then an allowlist HTML sanitiser (links get rel=noopener…)."""
    text = clean_text(value)
    if not text:
        return text
    sanitised = nh3.clean(
        text,
        tags=set(SAFE_TAGS),
        attributes={tag: set(attrs) for tag, attrs in SAFE_ATTRIBUTES.items()},
        # links are absolute http(s) URLs only: a relative or scheme-relative ("//host") one
        # would point wherever the text happens to be shown
        url_schemes=set(SAFE_URL_SCHEMES),
        url_relative="deny",
        # nh3 keeps `lang` and `title` on every tag unless told otherwise: only `href` stays
        attribute_filter=_only_safe_attributes,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return clean_text(sanitised)
