"""The cleaning of text that users write (API.md section 1), without dependencies.

It lives in the engine, which may import only the standard library, because the engine needs
it too: a value a user supplies for a ``choice`` or ``pick`` field reaches it cleaned, while
the definition's options are kept exactly as written (:meth:`Options.canonical`), and the
string literals of expressions are checked with :func:`text_fault`, as JSON bodies are. The
service's ``app.common.text`` uses this same ``clean_text`` for every short text field.
"""

from __future__ import annotations

import unicodedata

__all__ = ["clean_text", "has_visible_character", "normalise_text", "text_fault"]

_KEEP_CONTROLS = frozenset({"\n", "\t"})
# What shows nothing on its own: control and format characters (zero-width space and joiners,
# soft hyphen, bidirectional marks), combining marks with no base to sit on, and separators.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp"})
# Letters and symbols that are drawn as blank space: the Hangul fillers (Lo, and default
# ignorable: a font shows nothing) and the blank Braille pattern (So), the usual "blank name"
# characters. Python's unicodedata has no Default_Ignorable_Code_Point property to ask.
BLANK_CHARACTERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})


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


def has_visible_character(text: str) -> bool:
    """Whether ``text`` shows something: a character outside :data:`INVISIBLE_CATEGORIES` and
    :data:`BLANK_CHARACTERS`. A name of only ``"\u200b"``, of two combining accents or of a
    Hangul filler is as blank as ``""`` where it is shown.

    Only a judgement: text that passes keeps its format characters, which visible text needs
    (the zero-width joiner of emoji sequences, the joiners and marks of Arabic and Indic text).
    """
    return any(
        unicodedata.category(char) not in INVISIBLE_CATEGORIES and char not in BLANK_CHARACTERS
        for char in text
    )
