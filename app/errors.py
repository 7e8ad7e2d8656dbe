"""RFC 9457 problem details: the table of problem kinds and the one handler for every error.

Services raise :class:`ProblemError` subclasses (``NotFound``, ``Forbidden``, ``Conflict`` …);
Werkzeug, webargs, flask-smorest, flask-jwt-extended, flask-limiter and SQLAlchemy raise their
own exceptions. :func:`handle_exception` turns each of them into one problem response.
"""

from __future__ import annotations

import http
import json
import logging
import math
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, current_app, g, request
from marshmallow import ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc
from werkzeug.exceptions import HTTPException

from app.common.database import is_foreign_key_violation

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5

log = logging.getLogger("app.errors")


@dataclass(frozen=True)
class ProblemKind:
    slug: str | None  # None: the status code says it all, so the type is about:blank
    status: int
    detail: str

    @property
    def type(self) -> str:
        return f"/problems/{self.slug}" if self.slug else "about:blank"

    @property
    def title(self) -> str:
        return http.HTTPStatus(self.status).phrase


# The service's own kinds (documented in docs/problems.md), keyed by slug.
KINDS: dict[str, ProblemKind] = {
    kind.slug: kind
    for kind in (
        ProblemKind("malformed-json", 400, "The request body is not valid JSON."),
        ProblemKind("invalid-idempotency-key", 400, "The Idempotency-Key header is malformed."),
        ProblemKind("invalid-token", 401, "The access token is missing, invalid or expired."),
        ProblemKind("invalid-credentials", 401, "The email or password is incorrect."),
        ProblemKind("account-disabled", 403, "This account has been deactivated."),
        ProblemKind("duplicate", 409, "A resource with the same unique value already exists."),
        ProblemKind(
            "idempotency-key-in-use",
            409,
            "A request with this Idempotency-Key is still being processed.",
        ),
        ProblemKind("precondition-failed", 412, "The resource has changed since it was read."),
        ProblemKind("validation-error", 422, "The request failed validation."),
        ProblemKind(
            "idempotency-key-reused",
            422,
            "This Idempotency-Key was already used with a different request body.",
        ),
        ProblemKind("precondition-required", 428, "This request requires an If-Match header."),
        ProblemKind("rate-limited", 429, "Too many requests; retry later."),
        ProblemKind("database-unavailable", 503, "The database is unavailable; retry shortly."),
    )
    if kind.slug
}

# Plain kinds: the status says it all.
_PLAIN_DETAIL = {
    400: "The request is malformed.",
    401: "Authentication is required.",
    403: "You are not allowed to do this.",
    404: "The requested resource was not found.",
    405: "The method is not allowed for this resource.",
    406: "The requested representation is not available.",
    413: "The request body is too large.",
    415: "The request body's media type is not supported.",
    500: "An unexpected error occurred; it has been logged.",
    503: "The service is temporarily unavailable.",
}


def plain_kind(status: int) -> ProblemKind:
    return ProblemKind(None, status, _PLAIN_DETAIL.get(status, http.HTTPStatus(status).phrase))


class ProblemError(Exception):
    """An error the service means to report; subclasses pick the kind."""

    slug: str | None = None
    status: int = 500

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = KINDS[self.slug] if self.slug else plain_kind(self.status)
        self.detail = detail or self.kind.detail
        self.errors = errors
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(ProblemError):
    status = 400


class MalformedJSON(ProblemError):
    slug = "malformed-json"


class Unauthorized(ProblemError):
    slug = "invalid-token"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="character-forge"')


class InvalidCredentials(Unauthorized):
    slug = "invalid-credentials"


class Forbidden(ProblemError):
    status = 403


class AccountDisabled(ProblemError):
    slug = "account-disabled"


class NotFound(ProblemError):
    status = 404


class Conflict(ProblemError):
    slug = "duplicate"


class PayloadTooLarge(ProblemError):
    status = 413


class UnsupportedMediaType(ProblemError):
    status = 415


class PreconditionFailed(ProblemError):
    slug = "precondition-failed"


class PreconditionRequired(ProblemError):
    slug = "precondition-required"


class ValidationFailed(ProblemError):
    """422 with field errors keyed by location: ``{"json": {"name": ["…"]}}``."""

    slug = "validation-error"


class ServiceUnavailable(ProblemError):
    slug = "database-unavailable"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))


def field_errors(location: str, field: str, *messages: str) -> dict[str, Any]:
    """``{"json": {"email": ["…"]}}``, the shape every field-level problem uses."""
    return {location: {field: list(messages)}}


# RFC 3986 pchar and "/": what a path may hold unencoded
_PATH_SAFE = "/-._~!$&'()*+,;=:@"


def problem_response(
    kind: ProblemKind,
    detail: str,
    *,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": kind.type,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        # a URI reference (RFC 9457): the path as sent, percent-encoded where it must be
        "instance": quote(request.path, safe=_PATH_SAFE) if request else None,
        "request_id": g.get("request_id"),
    }
    if errors:
        body["errors"] = errors
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False, default=str),
        status=kind.status,
        mimetype=PROBLEM_MEDIA_TYPE,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _normalise_messages(messages: Any, default_location: str = "json") -> dict[str, Any]:
    """webargs hands over ``{location: {field: [...]}}``; anything else is wrapped the same way."""
    if isinstance(messages, Mapping) and messages:
        return {str(key): value for key, value in messages.items()}
    if isinstance(messages, list | tuple):
        return {default_location: {"_schema": list(messages)}}
    return {default_location: {"_schema": [str(messages)]}}


def _from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    headers: dict[str, str] = {}
    # Keep what the exception carries: Allow on 405, WWW-Authenticate, Retry-After …
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            headers[name] = value
    data = getattr(error, "data", None) or {}
    if data.get("headers"):
        headers.update(data["headers"])
    messages = data.get("messages") or data.get("errors")
    if status == 422 and messages is not None:
        return problem_response(
            KINDS["validation-error"],
            "The request failed validation.",
            errors=_normalise_messages(messages),
            headers=headers,
        )
    if status == 429:
        return problem_response(
            KINDS["rate-limited"],
            _rate_limit_detail(error),
            headers={**headers, "Retry-After": str(_retry_after_seconds())},
        )
    if status == 400 and messages is not None:
        return problem_response(KINDS["malformed-json"], "The request body is not valid JSON.")
    kind = plain_kind(status)
    detail = kind.detail
    if status == 405:
        allowed = headers.get("Allow", "")
        detail = f"{request.method} is not allowed here; allowed: {allowed}."
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        detail = f"The request body is larger than the limit of {limit} bytes."
    return problem_response(kind, detail, headers=headers)


def handle_exception(error: Exception) -> Response:
    """The one handler: every exception leaves the app as a problem response."""
    if isinstance(error, ProblemError):
        return problem_response(
            error.kind, error.detail, errors=error.errors, headers=error.headers
        )
    if isinstance(error, HTTPException):
        if error.code and error.code >= 500:
            log.error("HTTP %s raised", error.code, exc_info=error)
        return _from_http_exception(error)
    if isinstance(error, ValidationError):
        return problem_response(
            KINDS["validation-error"],
            "The request failed validation.",
            errors=_normalise_messages(error.messages),
        )
    if isinstance(error, orm_exc.StaleDataError):
        _rollback()
        return problem_response(
            KINDS["precondition-failed"],
            "The resource was changed by another request; GET it again and retry.",
        )
    if isinstance(error, sa_exc.IntegrityError):
        _rollback()
        log.info("integrity error turned into 409: %s", error.orig.__class__.__name__)
        # a conflict carries `errors` (API.md), here on the body as a whole: which value
        # clashed is not known at this level (the services name it where they can)
        if is_foreign_key_violation(error):
            detail = "Something this request refers to was deleted meanwhile; reload it and retry."
            return problem_response(
                plain_kind(409), detail, errors=field_errors("json", "_schema", detail)
            )
        detail = "The change conflicts with data already stored."
        return problem_response(
            KINDS["duplicate"], detail, errors=field_errors("json", "_schema", detail)
        )
    if isinstance(error, orm_exc.ObjectDeletedError):
        _rollback()
        return problem_response(plain_kind(404), "The resource was deleted by another request.")
    if _is_database_unavailable(error):
        _rollback()
        log.warning("database unavailable: %s", _cause(error))
        return problem_response(
            KINDS["database-unavailable"],
            KINDS["database-unavailable"].detail,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    _rollback()
    if isinstance(error, sa_exc.DBAPIError):
        # The driver's message can quote the statement with its values (psycopg2 binds them
        # into the text: 'invalid input syntax for type integer: "…"'), which may be a
        # password hash or an email: log where it failed and its SQLSTATE, not what it said.
        log.error(
            "unhandled database error %s (SQLSTATE %s); traceback, message withheld:\n%s",
            type(error.orig).__name__,
            getattr(error.orig, "pgcode", None),
            "".join(traceback.format_tb(error.__traceback__)),
        )
    else:
        log.error("unhandled exception", exc_info=error)
    return problem_response(plain_kind(500), _PLAIN_DETAIL[500])


def _rate_limit_detail(error: HTTPException) -> str:
    """The limit's own message where it declares one (a limit per account says so), else the
    message of the limits per client address."""
    limit = getattr(error, "limit", None)
    if limit is not None and isinstance(limit.error_message, str):
        return limit.error_message
    return "Too many requests from this address; retry after the time in Retry-After."


def _retry_after_seconds() -> int:
    from app.extensions import limiter

    try:
        current = limiter.current_limit
        reset_at = current.reset_at if current else None
    except Exception:  # the limiter's storage may be unreachable; a minute is a safe answer
        reset_at = None
    if not reset_at:
        return 60
    return max(1, math.ceil(reset_at - time.time()))


# PostgreSQL: a table or column the code needs is not there: the schema is not (or not yet)
# migrated, a state of the database like being down, and reported as such (503, Retry-After)
_SCHEMA_NOT_MIGRATED = frozenset({"42P01", "42703"})  # undefined_table, undefined_column


def _is_database_unavailable(error: Exception) -> bool:
    if isinstance(error, sa_exc.OperationalError | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if getattr(orig, "pgcode", None) in _SCHEMA_NOT_MIGRATED:
        return True
    # SQLite: a file that is not a database (sqlite3 raises its base DatabaseError)
    return type(orig).__module__ == "sqlite3" and type(orig).__name__ == "DatabaseError"


def _cause(error: Exception) -> str:
    """The exception's class and the first line of the driver's message, for the log: a
    timeout, a refused connection and a missing table are told apart (statement parameters
    are never in it: the engine hides them)."""
    orig = getattr(error, "orig", None) or error
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{error.__class__.__name__}: {first_line[:200]}"


def _rollback() -> None:
    from app.extensions import db

    try:
        db.session.rollback()
    except Exception:  # the connection may be gone; the session is reset at teardown anyway
        log.debug("rollback after error failed", exc_info=True)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(Exception, handle_exception)
    app.register_error_handler(HTTPException, handle_exception)
