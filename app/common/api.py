"""flask-smorest, adapted to this API's contract.

* :class:`ProblemApi` documents every error response as ``application/problem+json`` with the
  shared ``Problem`` schema and declares the bearer security scheme; error handling itself is
  :mod:`app.errors`.
* :class:`Blueprint` parses arguments strictly: JSON bodies must be declared as JSON and not
  in another charset than UTF-8 (415); malformed JSON, a body that is not UTF-8, ``NaN``/
  ``Infinity`` and nesting deeper than 32 levels are 400, NUL characters are 422, and unknown
  query parameters are 422 like unknown body fields (``reject_unknown_query`` for the
  operations that take no query, ``reject_unexpected_body`` for those that take no body).
"""

from __future__ import annotations

import codecs
import copy
import functools
import http
import json
import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
import marshmallow as ma
from flask import Request, current_app, request
from flask_smorest.utils import prepare_response
from webargs import core
from webargs.flaskparser import FlaskParser

from app.common.concurrency import IF_MATCH_ON_READ_PARAMETER, IF_NONE_MATCH_ON_WRITE_PARAMETER
from app.errors import (
    PROBLEM_MEDIA_TYPE,
    BadRequest,
    MalformedJSON,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    handle_exception,
)
from app.generation.cleaning import text_fault
from app.http import REQUEST_ID_HEADER

MAX_JSON_DEPTH = 32
# the labels of UTF-8 a client may declare (the WHATWG Encoding Standard's two common ones;
# RFC 8259 defines no charset parameter for JSON, so a declared other one is refused, 415)
UTF8_CHARSETS = frozenset({"utf-8", "utf8"})
F = TypeVar("F", bound=Callable[..., Any])


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every 4xx and 5xx response carries them."""

    type = ma.fields.String(
        required=True,
        metadata={"description": "`about:blank` or `/problems/<slug>`", "example": "about:blank"},
    )
    title = ma.fields.String(required=True, metadata={"example": "Not Found"})
    status = ma.fields.Integer(required=True, metadata={"example": 404})
    detail = ma.fields.String(
        required=True, metadata={"example": "The requested resource was not found."}
    )
    instance = ma.fields.String(
        allow_none=True, metadata={"example": "/api/v1/characters/3f0c2a9e"}
    )
    request_id = ma.fields.String(
        required=True, allow_none=True, metadata={"example": "5b1c0a7e9d2f4c18"}
    )
    errors = ma.fields.Dict(
        metadata={
            "description": "Field errors keyed by location (`json`, `query`, `headers`, "
            "`files`), then by field; nested fields nest, list items by index.",
            "example": {"json": {"name": ["Missing data for required field."]}},
        }
    )


class ProblemApi(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Errors are handled by :func:`app.errors.handle_exception`, registered by the factory."""

    def handle_http_exception(self, error: Exception) -> Any:
        return handle_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content_type = PROBLEM_MEDIA_TYPE
            response["headers"] = {**_REQUEST_ID_RESPONSE_HEADER, **_ERROR_HEADERS.get(status, {})}
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        response = {
            "description": "Unexpected error",
            "schema": self.ERROR_SCHEMA,
            "headers": dict(_REQUEST_ID_RESPONSE_HEADER),
        }
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)
        # the 409 of an operation honouring Idempotency-Key: also the key in use, to retry
        response = {
            "description": "Conflict: a duplicate, or (`idempotency-key-in-use`) the first "
            "request with this `Idempotency-Key` is still running.",
            "schema": self.ERROR_SCHEMA,
            "headers": {**_REQUEST_ID_RESPONSE_HEADER, **_KEY_IN_USE_HEADERS},
        }
        prepare_response(response, self.spec, PROBLEM_MEDIA_TYPE)
        self.spec.components.response(KEYED_CONFLICT, response, lazy=True)

    def spec_dict(self) -> dict[str, Any]:
        """The OpenAPI document, with what every operation of a kind takes and can answer
        documented on each (rather than on every view by hand):

        * the optional ``X-Request-ID`` request header on every operation, and the
          ``X-Request-ID`` response header on every response (components included);
        * 401 on every operation that needs a token;
        * 400, 413 and 415 on every operation that takes a body (malformed or empty JSON, JSON
          not in UTF-8, multipart without a boundary; a body over ``MAX_CONTENT_LENGTH``;
          another media type or charset, or a ``Content-Encoding``);
        * 400, 413, 415 and 422 on every write that takes no body (one sent anyway:
          ``reject_unexpected_body``);
        * 422 on every API operation (a query parameter it does not take:
          ``reject_unknown_query``), and 503 (the database is unreachable, or its schema not
          migrated);
        * on every conditional read (one taking ``If-None-Match``) the ``If-Match`` header and
          its 412; on every write taking ``If-Match``, the ``If-None-Match`` header (412);
        * the ``Idempotent-Replayed`` header on the 201 of every operation that honours
          ``Idempotency-Key``, and its 409 with ``Retry-After`` (the key in use).
        """
        for status in (401, 400, 412, 413, 415, 422, 503):  # registers the lazy components
            self.spec.components.get_ref("response", http.HTTPStatus(status).name)
        self.spec.components.get_ref("response", KEYED_CONFLICT)
        document = self.spec.to_dict()
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                if method == "parameters" or not isinstance(operation, dict):
                    continue
                _document_common_errors(path, method, operation)
        return document

    def _openapi_json(self) -> Any:
        return current_app.response_class(
            json.dumps(self.spec_dict(), indent=2), mimetype="application/json"
        )

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(**kwargs)
        self.spec.components.security_scheme(
            "bearerAuth",
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "The `access_token` from `POST /api/v1/auth/login`.",
            },
        )


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'The scheme to use: `Bearer realm="character-forge"`.',
            "schema": {"type": "string"},
        }
    },
    304: {
        "ETag": {
            "description": "The current version's `ETag`: the one sent in `If-None-Match`.",
            "schema": {"type": "string"},
        }
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
KEYED_CONFLICT = "CONFLICT_IDEMPOTENCY_KEY"
_KEY_IN_USE_HEADERS = {
    "Retry-After": {
        **_RETRY_AFTER["Retry-After"],
        "description": "With `idempotency-key-in-use` only: seconds to wait before retrying "
        "(the first request with this `Idempotency-Key` is still running).",
    }
}
_REQUEST_ID_RESPONSE_HEADER = {
    REQUEST_ID_HEADER: {
        "description": "The request's id: the `X-Request-ID` sent, when it was 1..128 characters "
        "of `[A-Za-z0-9._-]`, else a new one. Problems carry it as `request_id`, and every log "
        "line of the request.",
        "required": True,
        "schema": {"type": "string"},
    }
}
REQUEST_ID_PARAMETER = {
    "in": "header",
    "name": REQUEST_ID_HEADER,
    "required": False,
    "description": "Your id for this request (1..128 characters of `[A-Za-z0-9._-]`), echoed in "
    "the response and logged; any other value is replaced by a new id, not refused.",
    "schema": {"type": "string"},
}
_REPLAYED_HEADER = {
    "description": "`true` when this is the stored answer to an earlier request with the same "
    "`Idempotency-Key` (nothing new was created).",
    "schema": {"type": "string", "enum": ["true"]},
}


def _response_ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{http.HTTPStatus(status).name}"}


def _add_parameter(operation: dict[str, Any], parameter: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == parameter["name"] for p in parameters):
        parameters.append(dict(parameter))


def _document_common_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    """See :meth:`ProblemApi.spec_dict`. Safe to run twice on the same operation."""
    responses = operation.setdefault("responses", {})
    names = {p.get("name") for p in operation.get("parameters", [])}
    if method == "get" and "If-None-Match" in names:  # If-Match on a read (RFC 9110 13.1.1)
        _add_parameter(operation, IF_MATCH_ON_READ_PARAMETER)
        responses.setdefault("412", _response_ref(412))
    if method != "get" and "If-Match" in names:  # If-None-Match on a write (RFC 9110 13.1.2)
        _add_parameter(operation, IF_NONE_MATCH_ON_WRITE_PARAMETER)
        responses.setdefault("412", _response_ref(412))
    _add_parameter(operation, REQUEST_ID_PARAMETER)
    if operation.get("security") != []:
        responses.setdefault("401", _response_ref(401))
    if "requestBody" in operation:  # broken, too large, or not what it takes
        for status in (400, 413, 415):
            responses.setdefault(str(status), _response_ref(status))
    elif method != "get":  # a body sent where none is taken: reject_unexpected_body
        for status in (400, 413, 415, 422):
            responses.setdefault(str(status), _response_ref(status))
    if path.startswith("/api/"):
        responses.setdefault("422", _response_ref(422))  # a query it does not take
        responses.setdefault("503", _response_ref(503))
    if "Idempotency-Key" in names:
        if "201" in responses:
            responses["201"].setdefault("headers", {})["Idempotent-Replayed"] = _REPLAYED_HEADER
        responses["409"] = {"$ref": f"#/components/responses/{KEYED_CONFLICT}"}
    for response in responses.values():
        if "$ref" not in response:  # the components carry it already
            response.setdefault("headers", {}).update(_REQUEST_ID_RESPONSE_HEADER)


def _bad_string(value: str) -> str | None:
    fault = text_fault(value)
    return f"{fault[:1].upper()}{fault[1:]}." if fault else None


def _walk_json(value: Any) -> None:
    """Reject nesting deeper than MAX_JSON_DEPTH (400) and strings with NUL characters or lone
    surrogates (422)."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise MalformedJSON(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                problem = _bad_string(key) if isinstance(key, str) else None
                if problem:
                    raise _string_error(path, problem)
                stack.append((child, depth + 1, (*path, str(key))))
        elif isinstance(item, str) and (problem := _bad_string(item)):
            raise _string_error(path, problem)


def _string_error(path: tuple[str, ...], problem: str) -> ValidationFailed:
    errors: Any = [problem]
    for key in reversed(path or ("_schema",)):
        errors = {key: errors}
    return ValidationFailed(errors={"json": errors})


class _Refused(ValueError):
    """A value the strict parser refuses; its message is the problem's detail."""


def _reject_constant(name: str) -> Any:
    raise _Refused(f"The JSON body uses {name}, which is not JSON.")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: what the standard library would read as Infinity
        shown = text if len(text) <= 40 else f"{text[:20]}…"
        raise _Refused(f"The number {shown} in the JSON body is too large for a float.")
    return value


class _DuplicateMember(ValueError):
    pass


_WIDE_ENCODING = "The JSON body is UTF-16 or UTF-32; send it as UTF-8."


def _wide_encoding(raw: bytes) -> bool:
    """Whether the body looks like UTF-16 or UTF-32: a BOM of theirs, or a NUL byte among its
    first four (JSON text starts with an ASCII character, which those encode with NULs; in
    UTF-8 JSON a NUL byte cannot occur at all)."""
    return raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw[:4]


def _utf8_text(raw: bytes) -> str:
    """The body decoded as UTF-8, strictly: JSON exchanged between systems is UTF-8 without a
    byte order mark (RFC 8259, 8.1). ``json.loads`` given bytes would guess UTF-16 or UTF-32
    too, and let a UTF-8 encoded surrogate through."""
    if raw.startswith(codecs.BOM_UTF8):
        raise MalformedJSON(
            "The JSON body starts with a byte order mark (U+FEFF): send UTF-8 without one."
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if _wide_encoding(raw):
            raise MalformedJSON(_WIDE_ENCODING) from None
        raise MalformedJSON(
            f"The request body is not valid UTF-8 (at byte {error.start}); "
            "JSON is read as UTF-8 only."
        ) from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member names are unique (RFC 8259 says they SHOULD be; the standard
    library would keep the last one of a repeated name without a word)."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateMember(name)
            seen.add(name)
    return members


def parse_json_body(raw: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity (not even as a number too large for a float,
    such as ``1e999``), no member name twice in one object, bounded depth, no NUL characters.
    Each refusal says what is wrong."""
    text = _utf8_text(raw)
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_members,
        )
    except _DuplicateMember as repeated:
        raise MalformedJSON(
            f"The JSON body has the member {str(repeated)!r} twice in one object."
        ) from None
    except _Refused as refused:
        raise MalformedJSON(str(refused)) from None
    except json.JSONDecodeError:
        raise MalformedJSON(_WIDE_ENCODING if _wide_encoding(raw) else None) from None
    except RecursionError:
        raise MalformedJSON(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError:
        # the one other ValueError the decoder raises: an integer with more digits than
        # Python converts (sys.get_int_max_str_digits(), a guard against quadratic work).
        # It is valid JSON, but no value this service takes is anywhere near that long.
        raise MalformedJSON(
            f"The JSON body has an integer of more than {sys.get_int_max_str_digits()} "
            "digits; no value here can be that large."
        ) from None
    _walk_json(value)
    return value


def request_body(req: Request) -> bytes:
    """The request's body, or 413 when it is larger than ``MAX_CONTENT_LENGTH`` (or the smaller
    limit an operation sets, ``request.max_content_length``).

    With a ``Content-Length`` Werkzeug answers 413 itself. A body sent without one (chunked)
    is read only up to the limit, and Werkzeug stops there without saying so: a longer body
    would be cut short and parsed as if complete. So when the limit was reached, one more byte
    is asked of the server's input stream, and there being one is a 413.
    """
    limit = req.max_content_length  # MAX_CONTENT_LENGTH, or a blueprint's smaller limit
    length = req.content_length
    too_large = bool(limit and length and length > limit)
    if not too_large:
        raw = req.get_data(cache=True)
        cut_short = limit and length is None and len(raw) >= limit
        too_large = bool(cut_short and req.environ["wsgi.input"].read(1))
    if too_large:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    return raw


def is_json_media_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def current_view_method() -> Callable[..., Any] | None:
    """The function that serves this request (a MethodView's method; ``get`` for HEAD)."""
    if request.url_rule is None or request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    method = request.method.lower()
    if method == "head":
        method = "get"
    return getattr(view_class, method, None)


_BODY_LOCATIONS = frozenset({"json", "form", "files", "json_or_form"})
_QUERY_LOCATIONS = frozenset({"query", "querystring"})
# an unexpected body larger than this is refused without being parsed (some of these
# operations, such as /auth/refresh, are open to anyone)
_NAMED_MEMBERS_UP_TO = 16 * 1024
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@functools.lru_cache(maxsize=512)
def _argument_locations(view: Callable[..., Any]) -> frozenset[str]:
    """Where the view's ``@blp.arguments`` come from (``json``, ``query``, ``files``, …)."""
    parameters = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return frozenset(parameter.get("in") for parameter in parameters)


def _takes_body(view: Callable[..., Any]) -> bool:
    return not _argument_locations(view).isdisjoint(_BODY_LOCATIONS)


def _takes_query(view: Callable[..., Any]) -> bool:
    return not _argument_locations(view).isdisjoint(_QUERY_LOCATIONS)


def reject_unknown_query() -> None:
    """A query parameter sent to an API operation that takes none (``POST
    /characters/generate?seed=5``, ``DELETE …?dry_run=true``) is 422, as an unknown body field
    is, and as the operations with a query schema answer it (the parser raises on unknown
    parameters): a typo never silently does nothing. Operations that take a query check their
    own; the operational endpoints outside ``/api/`` (health, metrics, docs, the OpenAPI
    document) have no parameters to mistype and ignore a query string (a probe's or a
    scraper's), as does a CORS preflight. Registered after the authentication hook."""
    if not request.query_string or request.method == "OPTIONS":
        return  # the usual case: nothing more is looked at
    if not request.path.startswith("/api/"):
        return
    view = current_view_method()
    if view is None or _takes_query(view):
        return
    errors = {name: ["Unknown field."] for name in request.args}
    if errors:  # "?" or "?&" alone name nothing
        raise ValidationFailed(errors={"query": errors})


def reject_unexpected_body() -> None:
    """A body sent to an operation that takes none (a fork, a sign-out, a deletion) is refused,
    not dropped, so a typo never silently does nothing: ``{}`` is accepted (some clients send
    one with every POST); other JSON is 422 naming its members, broken JSON 400, any other
    media type 415. Registered after the authentication hook (a 401 comes first)."""
    if request.method in _BODILESS_METHODS:
        return
    if not request.content_length and "Transfer-Encoding" not in request.headers:
        return
    view = current_view_method()
    if view is None or _takes_body(view):
        return
    raw = request_body(request)
    if not raw:
        return
    if not is_json_media_type(request.mimetype):
        raise UnsupportedMediaType("This operation takes no request body.")
    if raw.strip() == b"{}":
        return
    errors: dict[str, Any] = {"_schema": ["This operation takes no request body."]}
    if len(raw) <= _NAMED_MEMBERS_UP_TO:  # small enough to say which members were not expected
        value = parse_json_body(raw)
        if value == {}:
            return
        if isinstance(value, dict):
            errors = {name: ["Unknown field."] for name in value}
    raise ValidationFailed("This operation takes no request body.", errors={"json": errors})


class StrictParser(FlaskParser):
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
        "files": ma.RAISE,
    }

    def load_querystring(self, req: Request, schema: ma.Schema) -> Any:
        """The query string; a parameter that takes one value and is given several is 422
        (the first one would be used, and the others, in the ``Link`` URLs too, ignored)."""
        repeated = {
            name: ["Give this parameter once."]
            for name, values in req.args.lists()
            if len(values) > 1
            and name in schema.fields
            and not isinstance(schema.fields[name], ma.fields.List)
        }
        if repeated:
            raise ValidationFailed(errors={"query": repeated})
        return super().load_querystring(req, schema)

    def _raw_load_json(self, req: Request) -> Any:
        raw = request_body(req)
        if not raw:
            if is_json_media_type(req.mimetype):  # said to be JSON, and empty: not JSON
                raise MalformedJSON("The body is empty: send a JSON object (at least {}).")
            return core.missing
        if not is_json_media_type(req.mimetype):
            raise UnsupportedMediaType(
                "The request body must be JSON, sent with Content-Type: application/json."
            )
        charset = req.mimetype_params.get("charset")
        if charset is not None and charset.strip().lower() not in UTF8_CHARSETS:
            raise UnsupportedMediaType(
                f"JSON is read as UTF-8 only: charset={charset} is not supported "
                "(send UTF-8, with charset=utf-8 or none)."
            )
        coding = req.headers.get("Content-Encoding", "").strip().lower()
        if coding not in ("", "identity"):
            raise UnsupportedMediaType(
                f"Content-Encoding {coding!r} is not supported: send the body uncompressed."
            )
        return parse_json_body(raw)

    def load_files(self, req: Request, schema: ma.Schema) -> Any:
        if req.mimetype != "multipart/form-data":
            raise UnsupportedMediaType("Send the file as multipart/form-data.")
        if not req.mimetype_params.get("boundary"):
            raise BadRequest("The multipart/form-data Content-Type has no boundary.")
        if not req.files and not req.form and req.content_length:  # no part Werkzeug could read
            raise BadRequest("The multipart body could not be read: no part in it.")
        problems = {
            name: ["Send one file in this field, not several."]
            for name, files in req.files.lists()
            if len(files) > 1
        }
        # text fields: a typo'd or extra one is refused, as unknown JSON members are
        problems.update({name: ["Unknown field."] for name in req.form})
        if problems:  # webargs would take the first file and drop the rest without a word
            raise ValidationFailed(errors={"files": problems})
        return super().load_files(req, schema)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema: Any, **kwargs: Any) -> Callable[[F], F]:
        """As flask-smorest's, but a schema class is instantiated once, not on every request
        (webargs would build a new schema object per request; they are stateless)."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, **kwargs)


def documented_errors(*statuses: int) -> Callable[[F], F]:
    """Document problem responses of an operation, e.g. ``@documented_errors(403, 404)``.

    401 needs no mention: every operation that is not public documents it automatically.
    """

    def decorator(func: F) -> F:
        doc = copy.deepcopy(getattr(func, "_apidoc", {}))
        responses = doc.setdefault("response", {}).setdefault("responses", {})
        for status in statuses:
            responses.setdefault(status, []).append(http.HTTPStatus(status).name)
        func._apidoc = doc  # type: ignore[attr-defined]
        return func

    return decorator
