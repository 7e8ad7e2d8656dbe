"""The cleaning of text that users write (API.md section 1), without dependencies.

It lives in the engine, which may import only the standard library, because the engine needs
it too: a value a user supplies for a ``choice`` or ``pick`` field reaches it cleaned, while
the definition's options are kept exactly as written (:meth:`Options.canonical`), and the
string literals of expressions are checked with :func:`text_fault`, as JSON bodies are. The
service's ``app.common.text`` uses this same ``clean_text`` for every short text field.
"""

from __future__ import annotations

import unicodedata

__all__ = ["clean_text", "normalise_text", "text_fault"]

_KEEP_CONTROLS = frozenset({"\n", "\t"})


def text_fault(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (None when it can): a NUL character (PostgreSQL's
    text cannot hold one), or a lone surrogate such as ``"\\ud800"`` (not a character: JSON
    can spell one, and so can a string literal in an expression)."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def normalise_text(value: str) -> str:
    """NFC-normalise and drop control characters except newline and tab: :func:`clean_text`
    without the trimming, which only the ends of a whole text get (a name generator measures
    its parts with it)."""
    normalised = unicodedata.normalize("NFC", value)
    return "".join(
        char for char in normalised if char in _KEEP_CONTROLS or unicodedata.category(char) != "Cc"
    )


def clean_text(value: str) -> str:
    """NFC-normalise, drop control characters except newline and tab, trim (idempotent)."""
    return normalise_text(value).strip()
