"""The base schema and strict fields every resource schema is built from.

* unknown fields raise (body and query string);
* booleans are ``true``/``false`` only; integers are JSON integers only (not ``"5"``, ``5.0``,
  ``true``);
* user text is cleaned before length validators run (:mod:`app.common.text`).
"""

from __future__ import annotations

import html
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.common.text import clean_html, clean_text, clean_values, has_visible_character


class BaseSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


# How much longer than its limit a text may be as sent: cleaning (and, for long-form text, the
# sanitiser) can only shorten it by what it removes: whitespace at the ends, control characters,
# tags that are not allowed. Anything longer is refused before that work, whose cost grows with
# the text (the sanitiser took ~1.2 s per MB).
RAW_LENGTH_FACTOR = 10


class Text(fields.String):
    """Plain text, cleaned (NFC, no control characters, trimmed). Returned exactly as cleaned.

    The length limit (a ``validate.Length`` validator) applies to the cleaned text; a text sent
    more than ``RAW_LENGTH_FACTOR`` times that long is refused before it is cleaned. A field
    that refuses the empty text (a minimum length of 1 or more) also refuses a text that shows
    nothing: only format characters, combining marks and separators
    (:func:`~app.common.text.has_visible_character`), which would be a blank name.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        limit = self._max_length()
        if limit is not None and len(text) > RAW_LENGTH_FACTOR * limit:
            raise ma.ValidationError(f"Longer than maximum length {limit}.")
        if "\x00" in text:
            raise ma.ValidationError("Must not contain NUL characters.")
        cleaned = clean_text(text)
        if cleaned and self._refuses_empty() and not has_visible_character(cleaned):
            raise ma.ValidationError("Must contain a visible character.")
        return cleaned

    def _max_length(self) -> int | None:
        limits = [v.max for v in self.validators if isinstance(v, validate.Length) and v.max]
        return min(limits) if limits else None

    def _refuses_empty(self) -> bool:
        return any(isinstance(v, validate.Length) and v.min for v in self.validators)


class SafeHTML(Text):
    """Long-form text: cleaned, then sanitised to the allowlist of formatting tags. Its length
    limit is an :class:`HTMLLength`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return clean_html(super()._deserialize(value, attr, data, **kwargs))


class HTMLLength(validate.Length):
    """The length of sanitised HTML as its reader counts it: with character references read
    as the one character each stands for. The sanitiser writes a ``&`` or ``<`` that was sent
    as ``&amp;`` or ``&lt;``; that is how HTML spells them, not more text, so a client that
    keeps to the documented ``maxLength`` is never refused for using them."""

    def __call__(self, value: Any) -> Any:
        super().__call__(html.unescape(value))
        return value


class StrictBoolean(fields.Boolean):
    """Only JSON ``true`` and ``false``."""

    truthy = {True}
    falsy = {False}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class QueryBoolean(fields.Boolean):
    """Query-string booleans: ``true`` or ``false`` (the only spellings accepted)."""

    truthy = {"true"}
    falsy = {"false"}


class QueryInteger(fields.Integer):
    """Query-string integers: ASCII digits only. ``int()`` would also take ``+1``, ``1_0``,
    `` 2`` and other scripts' digits (Arabic-Indic ones), which no client means as a number."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictInteger(fields.Integer):
    """Only JSON integers: rejects booleans, floats (even ``5.0``) and numeric strings."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class JSONObject(fields.Dict):
    """Any JSON object (its content validated elsewhere)."""

    default_error_messages = {"invalid": "Must be a JSON object."}


class UserValues(JSONObject):
    """A JSON object of values users write (attributes, locks): every string in it, at any
    depth, is cleaned like plain text before anything else looks at it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return clean_values(super()._deserialize(value, attr, data, **kwargs))


TAG_PATTERN = r"^[a-z0-9-]{1,30}$"
Tag = Text(
    validate=[
        validate.Length(min=1, max=30),
        validate.Regexp(TAG_PATTERN, error="Tags are 1..30 of a-z, 0-9 and '-'."),
    ]
)


def name_field(*, required: bool = True, maximum: int = 100, **metadata: Any) -> Text:
    return Text(
        required=required,
        validate=validate.Length(min=1, max=maximum),
        metadata=metadata,
    )
