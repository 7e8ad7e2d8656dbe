"""``/api/v1/users``: your own account, public profiles, and moderation by admins."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, g, request
from flask.views import MethodView

from app.auth.policy import admin_required, current_caller, current_user
from app.common.api import Blueprint, documented_errors
from app.common.concurrency import (
    ETAG_HEADER,
    IF_MATCH_PARAMETER,
    IF_NONE_MATCH_PARAMETER,
    PublicProfile,
    check_if_match,
    etag_for,
    not_modified_response,
)
from app.common.pagination import PAGINATION_HEADERS
from app.extensions import limiter
from app.users import service
from app.users.schemas import (
    AdminUserUpdateSchema,
    MeUpdateSchema,
    UserListQuery,
    UserPrivate,
    UserPublic,
)

blp = Blueprint("users", __name__, description="Accounts: your own, public profiles, moderation.")

# The public view shows less than the private one, so it has an ETag of its own: one strong
# ETag for two different bodies would let a cache or an If-None-Match serve the wrong one. It is
# made from what the view shows (PublicProfile), so a private change of the account (password,
# role, email) does not show in it. The private view keeps the plain ETag of the row's version,
# the one `If-Match` on `/users/me` compares with.
OPTIONAL_IF_MATCH_PARAMETER = {
    **IF_MATCH_PARAMETER,
    "required": False,
    "description": "Optional: the `ETag` of the user as last read. Stale: 412, nothing changed.",
}


def _password_attempts_limit() -> str:
    # the budget of guesses at the same secret that signing in allows (RATELIMIT_LOGIN)
    return current_app.config["RATELIMIT_LOGIN"]


def _per_account() -> str:
    return f"account:{current_caller().id}"


def _wrong_current_password(response: Response) -> bool:
    if response.status_code != 422:
        return False
    errors = (response.get_json(silent=True) or {}).get("errors", {})
    return "current_password" in errors.get("json", {})


@limiter.limit(
    _password_attempts_limit,
    key_func=_per_account,
    deduct_when=_wrong_current_password,
    error_message="Too many wrong current passwords for this account; retry after the time "
    "in Retry-After.",
)
def _check_password_attempts() -> None:
    """429 once this account has given ``RATELIMIT_LOGIN`` wrong current passwords (per account,
    not per address: whoever holds a stolen access token could otherwise guess the password).

    Called only for an update that carries ``current_password``; only a wrong one counts
    (flask-limiter's ``deduct_when`` deducts after the response, when it is the 422 on that
    field), and once the budget is spent even the right one is 429 until the window moves.
    Guesses in flight at the same moment are counted when they end, so a burst can pass the
    budget by at most the number of requests served at once (the workers).
    """


@blp.route("/me")
class Me(MethodView):
    @blp.doc(parameters=[IF_NONE_MATCH_PARAMETER])
    @blp.response(200, UserPrivate, headers=ETAG_HEADER)
    @documented_errors(304)
    def get(self) -> Any:
        """Your own account (private view).

        The private view adds `email`, `role`, `is_active` and `updated_at` to the public
        one. Its `ETag` is what `PATCH` and `DELETE /users/me` take as `If-Match`;
        `If-None-Match` gets 304.
        """
        user = current_user()
        return not_modified_response(user) or (user, 200, {"ETag": etag_for(user)})

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(MeUpdateSchema, example={"display_name": "Aria", "bio": "<p>Hello</p>"})
    @blp.response(200, UserPrivate, headers=ETAG_HEADER)
    @documented_errors(412, 428, 429)
    def patch(self, data: dict[str, Any]) -> Any:
        """Change your display name, bio or password (`If-Match` required).

        A new `password` needs `current_password` (a wrong one is 422 on that field) and signs
        out every other session of yours. Wrong current passwords are rate limited per account
        (`RATELIMIT_LOGIN`, default 10 per minute, whatever the address): beyond it, a request
        with `current_password` is 429 with `Retry-After`, even with the right one, until the
        window moves on; changes without it are not limited.
        """
        if "current_password" in data:
            _check_password_attempts()
        user = current_user()
        check_if_match(user)
        user = service.update_me(user=user, session_id=g.session_id, data=data)
        return user, 200, {"ETag": etag_for(user)}

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.response(204)
    @documented_errors(409, 412, 428)
    def delete(self) -> None:
        """Delete your account and everything it owns, portraits included (`If-Match`).

        Your templates and characters go with it, and every token of every session is refused
        from then on. Others' characters made from your templates keep their data and become
        characters without a template (`template_id`, `seed` and the versions null). 204;
        412 when `If-Match` is stale; 409 for the only active admin (make another admin first:
        admins are made only with the CLI).
        """
        user = current_user()
        check_if_match(user)
        service.delete_user(user=user)


@blp.route("")
class Users(MethodView):
    @admin_required
    @blp.arguments(UserListQuery, location="query")
    @blp.response(200, UserPrivate(many=True), headers=PAGINATION_HEADERS)
    @documented_errors(403)
    def get(self, query: dict[str, Any]) -> Any:
        """List accounts (admins only), `?q=` on username and email, `?sort=username|created_at`.

        Private views, deactivated accounts included; paginated like every list
        (`X-Pagination`, `Link`). 403 for users who are not admins.
        """
        page = service.list_users(query=query)
        return page.items, 200, page.headers()


@blp.route("/<uuid:user_id>")
class UserById(MethodView):
    @blp.doc(parameters=[IF_NONE_MATCH_PARAMETER])
    @blp.response(200, UserPublic, headers=ETAG_HEADER)
    @blp.alt_response(
        200, schema=UserPrivate, description="Private view, for yourself and admins", success=True
    )
    @documented_errors(304, 404)
    def get(self, user_id: uuid.UUID) -> Any:
        """A user's public profile (the private view for yourself and for admins).

        Unknown and deactivated users are 404 (admins see deactivated ones). The two views
        have different ETags; the private one is that of `GET /users/me`, and the public one
        changes only when what it shows does (not with a new password, role or email).
        """
        viewer = current_caller()
        user = service.get_user(viewer=viewer, user_id=user_id)
        private = viewer.id == user.id or viewer.is_admin
        view = UserPrivate() if private else UserPublic()
        versioned = user if private else PublicProfile.of(user)
        return not_modified_response(versioned) or (
            _raw(view.dump(user)),
            200,
            {"ETag": etag_for(versioned)},
        )

    @admin_required
    @blp.doc(parameters=[OPTIONAL_IF_MATCH_PARAMETER])
    @blp.arguments(AdminUserUpdateSchema, example={"is_active": False})
    @blp.response(200, UserPrivate, headers=ETAG_HEADER)
    @documented_errors(403, 404, 409, 412)
    def patch(self, data: dict[str, Any], user_id: uuid.UUID) -> Any:
        """Set a user's `role` or `is_active` (admins only; no `If-Match` needed).

        An `If-Match` that is sent is still evaluated (RFC 9110, 13.2.1) against the private
        view's ETag: a stale one is 412 and changes nothing. Deactivation revokes every token
        of the user at once. A change that would leave no active admin (demoting or
        deactivating the only one) is 409 on that field: admins are made only with the CLI.

        Deactivation stops the account (sign-in is 403, `GET /users/{id}` 404 to others) but
        takes nothing down: its public templates and characters stay listed and readable,
        with their `owner`, as they were. To take content down, delete it (admins may), or
        the account with it (`DELETE /users/me`, by its owner).
        """
        user = service.moderate_user(
            user_id=user_id,
            data=data,
            precondition=lambda user: check_if_match(user, required=False),
            retry="If-Match" not in request.headers,
        )
        return user, 200, {"ETag": etag_for(user)}


def _raw(dumped: dict[str, Any]) -> Any:
    """Already serialised by the view chosen per caller."""
    from flask import jsonify

    return jsonify(dumped)
