"""JWTs (issued with flask-jwt-extended, verified with PyJWT), and authenticating a request.

Claims: ``sub`` (user id), ``sid`` (login session id), ``jti``, ``type`` (access/refresh),
``iat``/``exp``. Nothing secret. Every failure is a 401 problem with ``WWW-Authenticate``.
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


_REQUIRED_CLAIMS = ["exp", "sub", "jti", "type", "sid"]
# A token issued by another instance whose clock is a little ahead starts ("nbf", "iat") a
# little in the future here: accepted when it is at most this far ahead, so that the tokens of
# several instances work on every one (their clocks kept in step, as NTP does). Expiry has no
# such leeway: a token expires when it says.
CLOCK_SKEW_SECONDS = 30


@functools.lru_cache(maxsize=4096)
def _verified_claims(token: str, key: str, algorithms: tuple[str, ...]) -> Mapping[str, Any]:
    """The token's claims, its signature and claims verified except the expiry.

    Verifying is deterministic for a given token and key, so a token is verified once per
    worker (a client sends the same one for up to 15 minutes) and only its expiry, which
    changes with the clock, is checked on every use. Failures are not cached.
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
    return MappingProxyType(claims)


def decode_request_token(*, refresh: bool = False) -> dict[str, Any]:
    """Verify the bearer token's signature, expiry and type; 401 for anything wrong.

    Verified with PyJWT directly (the library flask-jwt-extended wraps): at most one decode
    per request, where flask-jwt-extended's request helpers decode the token four times — a
    measured tenth of an authenticated read. Tokens are still issued by flask-jwt-extended.
    """
    token = _bearer_token()
    config = current_app.config
    try:
        verified = _verified_claims(
            token, config["JWT_SECRET_KEY"], tuple(config["JWT_DECODE_ALGORITHMS"])
        )
    except jwt.PyJWTError:
        raise Unauthorized("The token is malformed or its signature is invalid.") from None
    expires = verified["exp"]
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise Unauthorized("The token is malformed or its signature is invalid.")
    now = time.time()
    if expires <= now - config["JWT_DECODE_LEEWAY"]:
        raise Unauthorized("The token has expired.")
    not_before = verified.get("nbf", verified.get("iat"))
    if isinstance(not_before, int | float) and not_before > now + CLOCK_SKEW_SECONDS:
        raise Unauthorized("The token is not valid yet.")
    claims = dict(verified)
    if claims.get("type") != ("refresh" if refresh else "access"):
        wanted = "a refresh token" if refresh else "an access token"
        raise Unauthorized(f"This endpoint needs {wanted}.")
    try:
        claims["_sid"] = uuid.UUID(str(claims["sid"]))
        claims["_sub"] = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise Unauthorized("The token is malformed or its signature is invalid.") from None
    return claims


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
