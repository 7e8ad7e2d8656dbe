"""JWTs (flask-jwt-extended) and the one check that a token is still good.

Claims: ``sub`` (user id), ``sid`` (login session id), ``jti``, ``type`` (access/refresh),
``iat``/``exp``. Nothing secret. Every failure is a 401 problem with ``WWW-Authenticate``.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, g
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import (
    JWTExtendedException,
    NoAuthorizationError,
    WrongTokenError,
)
from jwt import ExpiredSignatureError, PyJWTError
from sqlalchemy import select

from app.auth.models import LoginSession
from app.errors import Unauthorized
from app.extensions import db
from app.users.models import User


def issue_tokens(user: User, session: LoginSession) -> dict[str, Any]:
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


def decode_request_token(*, refresh: bool = False) -> dict[str, Any]:
    """Verify the bearer token's signature, expiry and type; 401 for anything wrong."""
    try:
        verify_jwt_in_request(refresh=refresh)
        claims = get_jwt()
    except NoAuthorizationError:
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.") from None
    except ExpiredSignatureError:
        raise Unauthorized("The token has expired.") from None
    except WrongTokenError:
        wanted = "a refresh token" if refresh else "an access token"
        raise Unauthorized(f"This endpoint needs {wanted}.") from None
    except (JWTExtendedException, PyJWTError):
        raise Unauthorized("The token is malformed or its signature is invalid.") from None
    try:
        claims["_sid"] = uuid.UUID(str(claims["sid"]))
        claims["_sub"] = uuid.UUID(str(claims["sub"]))
    except (KeyError, ValueError):
        raise Unauthorized("The token is malformed or its signature is invalid.") from None
    return claims


def load_session(claims: dict[str, Any]) -> LoginSession:
    """One indexed query: the login session and its user. 401 if revoked, gone or inactive."""
    session = db.session.scalar(select(LoginSession).where(LoginSession.id == claims["_sid"]))
    if (
        session is None
        or session.revoked_at is not None
        or session.user_id != claims["_sub"]
        or not session.user.is_active
    ):
        raise Unauthorized("The token has been revoked.")
    return session


def authenticate_request() -> User:
    """Authenticate the current request with its access token; remember the caller in ``g``."""
    claims = decode_request_token()
    session = load_session(claims)
    g.current_user = session.user
    g.current_session = session
    g.user_id = str(session.user_id)
    return session.user
