"""JSON responses serialised with orjson (app.common.fastjson), the standard library as the
fallback.

Serialising the body is a measurable share of a list response (20 characters, each with its
attributes). The output is the same JSON (UTF-8 rather than ``\\u`` escapes, which every JSON
parser reads alike). Keys keep the order the schemas give them (``sort_keys`` False: Flask 3
ignores the old ``JSON_SORT_KEYS`` setting, so it is set here). Request bodies are still parsed
by the app's strict parser (app.common.api).
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

from app.common import fastjson

_COMPACT = {"separators": (",", ":")}  # what ``response()`` asks for outside debug mode


class FastJSONProvider(DefaultJSONProvider):
    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs or kwargs == _COMPACT:
            # fastjson falls back to the standard library itself, which raises as it always did
            return fastjson.dumps(obj, default=self.default)
        return super().dumps(obj, **kwargs)
