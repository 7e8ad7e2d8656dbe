"""JWTs (issued with flask-jwt-extended, verified with PyJWT), and authenticating a request.

Claims: ``sub`` (user id), ``sid`` (login session id), ``jti``, ``type`` (access/refresh),
``iat``/``nbf``/``exp``; all required, in the shape issued. Nothing secret. Every failure is
a 401 problem with ``WWW-Authenticate``.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jwt
from flask import current_app, g, request
from flask_jwt_extended import create_access_token, create_refresh_token

from app.auth.models import LoginSession
from app.auth.session_check import Caller, defer_to_first_statement, load_account
from app.common.database import SAFE_METHODS
from app.errors import Unauthorized
from app.users.models import User


def issue_tokens(user: User, session: LoginSession) -> dict[str, Any]:
    g.user_id = str(user.id)  # the request's log line names who signed in (or refreshed)
    claims = {"sid": str(session.id)}
    access = create_access_token(identity=str(user.id), additional_claims=claims)
    refresh = create_refresh_token(
        identity=str(user.id), additional_claims={**claims, "jti": str(session.refresh_jti)}
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": current_app.config["ACCESS_TOKEN_TTL"],
    }


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


# Every claim this service issues and reads, required in the exact shape it issues them:
# ``flask-jwt-extended`` writes the times as JSON integers and ``jti`` as a UUID, and the
# service writes ``sub`` and ``sid`` as UUIDs (:func:`issue_tokens`).
_TIME_CLAIMS = ("exp", "iat", "nbf")
_UUID_CLAIMS = ("sub", "sid", "jti")
_REQUIRED_CLAIMS = [*_TIME_CLAIMS, *_UUID_CLAIMS, "type"]
_TOKEN_TYPES = frozenset({"access", "refresh"})
# A token issued by another instance whose clock is a little ahead starts ("nbf", "iat") a
# little in the future here: accepted when it is at most this far ahead, so that the tokens of
# several instances work on every one (their clocks kept in step, as NTP does). Expiry has no
# such leeway: a token expires when it says.
CLOCK_SKEW_SECONDS = 30
MALFORMED = "The token is malformed or its signature is invalid."


def _canonical_uuid(value: Any) -> uuid.UUID | None:
    """``value`` as a UUID when it is one written as this service writes them (lower-case hex
    with dashes, ``str(uuid)``), else None. ``uuid.UUID`` also reads braces, ``urn:uuid:``,
    upper case and no dashes: a token carrying those was not made here."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value else None


def _checked_shape(claims: dict[str, Any]) -> dict[str, Any]:
    """``claims`` with ``_sub``, ``_sid`` and ``_jti`` parsed, when every claim has the shape
    this service issues: times are JSON integers (not ``true``, ``1e20`` or ``"5"``), ids are
    canonical UUID strings, ``type`` is ``access`` or ``refresh``. A correctly signed token of
    any other shape (signed with a leaked key, or by a bug) is refused as malformed rather than
    read loosely: ``uuid.UUID("abc")`` in the refresh was a 500."""
    if any(type(claims[name]) is not int for name in _TIME_CLAIMS):
        raise jwt.InvalidTokenError("a time claim is not an integer")
    if not isinstance(claims["type"], str) or claims["type"] not in _TOKEN_TYPES:
        raise jwt.InvalidTokenError("unknown token type")
    parsed = {f"_{name}": _canonical_uuid(claims[name]) for name in _UUID_CLAIMS}
    if None in parsed.values():
        raise jwt.InvalidTokenError("an id claim is not a canonical UUID")
    return {**claims, **parsed}


@functools.lru_cache(maxsize=4096)
def _verified_claims(token: str, key: str, algorithms: tuple[str, ...]) -> Mapping[str, Any]:
    """The token's claims, its signature and the shape of its claims verified, with its ids
    parsed (``_sub``, ``_sid``, ``_jti``); the time claims are not compared with the clock.

    Verifying is deterministic for a given token and key, so a token is verified once per
    worker (a client sends the same one for up to 15 minutes) and only its times, which are
    compared with a clock that moves, are checked on every use. Failures are not cached.
    """
    claims = jwt.decode(
        token,
        key,
        algorithms=list(algorithms),
        # the time claims are checked on every use, by the clock of that moment
        options={
            "require": _REQUIRED_CLAIMS,
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        },
    )
    return MappingProxyType(_checked_shape(claims))


def decode_request_token(*, refresh: bool = False) -> dict[str, Any]:
    """Verify the bearer token's signature, claims, times and type; 401 for anything wrong.

    Verified with PyJWT directly (the library flask-jwt-extended wraps): at most one decode
    per request, where flask-jwt-extended's request helpers decode the token four times — a
    measured tenth of an authenticated read. Tokens are still issued by flask-jwt-extended.
    ``_sub``, ``_sid`` and ``_jti`` are the claims' ids as UUIDs.
    """
    token = _bearer_token()
    config = current_app.config
    try:
        verified = _verified_claims(
            token, config["JWT_SECRET_KEY"], tuple(config["JWT_DECODE_ALGORITHMS"])
        )
    except jwt.PyJWTError:
        raise Unauthorized(MALFORMED) from None
    now = time.time()
    if verified["exp"] <= now - config["JWT_DECODE_LEEWAY"]:
        raise Unauthorized("The token has expired.")
    # both: a token that says it was issued (iat) or starts (nbf) in the future was not issued
    # by an instance whose clock is merely a little ahead
    if max(verified["nbf"], verified["iat"]) > now + CLOCK_SKEW_SECONDS:
        raise Unauthorized("The token is not valid yet.")
    if verified["type"] != ("refresh" if refresh else "access"):
        wanted = "a refresh token" if refresh else "an access token"
        raise Unauthorized(f"This endpoint needs {wanted}.")
    return dict(verified)


def authenticate_request() -> Caller:
    """Authenticate the current request with its access token; remember the caller in ``g``.

    The login session is checked in the database: with the request's first statement for a
    read on PostgreSQL, by a separate query otherwise (app.auth.session_check).
    """
    claims = decode_request_token()
    session_id, user_id = claims["_sid"], claims["_sub"]
    if request.method in SAFE_METHODS and current_app.extensions.get("session_check_folded"):
        caller = Caller(user_id, session_id)
        defer_to_first_statement(caller)
    else:
        account = load_account(session_id, user_id)
        g.account = account
        caller = Caller(account.id, session_id, account.role)
    g.caller = caller
    g.session_id = session_id
    g.user_id = str(caller.id)
    return caller
