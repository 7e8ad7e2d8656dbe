"""``/api/v1/auth``: register, login, refresh, logout."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask.views import MethodView

from app.auth import service
from app.auth.policy import public
from app.auth.tokens import decode_request_token
from app.common.api import Blueprint, documented_errors
from app.common.concurrency import ETAG_HEADER, etag_for
from app.extensions import limiter
from app.users import service as users
from app.users.schemas import LoginSchema, RegisterSchema, TokenPairSchema, UserPrivate

blp = Blueprint("auth", __name__, description="Sign up, sign in, token refresh and sign out.")

RATE_LIMIT_DOC = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}

# Signing up and in takes a few short fields (an email, a password of at most 128 characters,
# a name): bodies larger than this are 413 before they are read. These operations are open to
# anyone, and parsing a body of MAX_CONTENT_LENGTH (6 MiB) of nested JSON costs a worker
# seconds; the rate limits count requests, not that time.
AUTH_MAX_BODY_BYTES = 16 * 1024


@blp.before_request
def _small_bodies() -> None:
    request.max_content_length = AUTH_MAX_BODY_BYTES


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _register_limit() -> str:
    return current_app.config["RATELIMIT_REGISTER"]


@blp.route("/register")
class Register(MethodView):
    @public
    @limiter.limit(_register_limit)
    @blp.arguments(
        RegisterSchema,
        example={
            "email": "aria@example.com",
            "username": "aria_sw",
            "password": "correct horse battery",
            "display_name": "Aria Swiftwind",
        },
    )
    @blp.response(
        201,
        UserPrivate,
        headers={
            "Location": {"description": "URL of the new user", "schema": {"type": "string"}},
            **ETAG_HEADER,
        },
    )
    @documented_errors(409, 429)
    def post(self, data: dict[str, Any]) -> Any:
        """Create an account.

        The email is stored in one spelling per mailbox: lower-cased, the domain in its IDNA
        2008 / UTS #46 Unicode form (`xn--bcher-kva.example` is `bücher.example`; invisible
        characters and fullwidth letters in a domain are dropped or mapped; a domain IDNA
        refuses is 422), a quoted local part that needs no quotes unquoted (`"v"@…` is
        `v@…`). Email and username are unique (case-insensitively, and whatever the email's
        spelling): a duplicate is 409 naming the field. Rate limited per client address.
        """
        user = users.create_user(**data)
        g.user_id = str(user.id)  # for the request's log line
        return user, 201, {"Location": f"/api/v1/users/{user.id}", "ETag": etag_for(user)}


@blp.route("/login")
class Login(MethodView):
    @public
    @limiter.limit(_login_limit)
    @blp.arguments(
        LoginSchema, example={"email": "aria@example.com", "password": "correct horse battery"}
    )
    @blp.response(200, TokenPairSchema)
    @documented_errors(401, 403, 429)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Sign in: a new login session with an access token and a refresh token.

        Any spelling of the registered address signs in (its case, its domain's IDNA forms).
        A wrong password and an unknown email give the same 401 in about the same time; a
        deactivated account with the right password gets 403. Rate limited per client address.
        """
        return service.login(email=data["email"], password=data["password"])


@blp.route("/refresh")
class Refresh(MethodView):
    # public to the access-token check, but documented with the bearer scheme: the refresh
    # token is the bearer here (applied after @public, which documents no security)
    @blp.doc(security=[{"bearerAuth": []}])
    @public
    @blp.response(200, TokenPairSchema)
    @documented_errors(401)
    def post(self) -> dict[str, Any]:
        """Exchange the refresh token (sent as the bearer token) for a new pair.

        The used refresh token is revoked (rotation). Presenting an already-used or revoked
        refresh token is 401 and revokes the whole login session, its access tokens included.
        """
        return service.refresh(claims=decode_request_token(refresh=True))


@blp.route("/logout")
class Logout(MethodView):
    @blp.response(204)
    def post(self) -> None:
        """Sign out: revoke the presented access token and the whole login session.

        The session's refresh token is revoked too, so neither can be used again (401); other
        sessions of the same account (other devices) are not touched. 204, no body.
        """
        service.logout(session_id=g.session_id)
