"""The cleaning of text that users write (API.md section 1), without dependencies.

It lives in the engine, which may import only the standard library, because the engine needs it
too: a value a user supplies for a ``choice`` or ``pick`` field reaches it cleaned, while the
definition's options are kept exactly as written (:meth:`Options.canonical`). The service's
``app.common.text`` uses this same function for every short text field.
"""

from __future__ import annotations

import unicodedata

__all__ = ["clean_text"]

_KEEP_CONTROLS = frozenset({"\n", "\t"})


def clean_text(value: str) -> str:
    """NFC-normalise, drop control characters except newline and tab, trim (idempotent)."""
    normalised = unicodedata.normalize("NFC", value)
    kept = "".join(
        char for char in normalised if char in _KEEP_CONTROLS or unicodedata.category(char) != "Cc"
    )
    return kept.strip()
