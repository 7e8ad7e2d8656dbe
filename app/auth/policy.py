"""Who may call what: authenticated by default, public only where marked.

Every endpoint requires a valid access token unless its view method is decorated with
:func:`public`. A forgotten decorator therefore fails closed (401), never open.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, Protocol, TypeVar

from flask import Flask, g, request

from app.auth.session_check import Caller, confirm_before_response
from app.common.api import Blueprint, current_view_method
from app.errors import Forbidden, Unauthorized
from app.extensions import db
from app.users.models import Account, User

F = TypeVar("F", bound=Callable[..., Any])
# Plain Flask endpoints that are public by nature: the OpenAPI document and Swagger UI.
PUBLIC_ENDPOINTS = frozenset({"api-docs.openapi_json", "static"})
PUBLIC_BLUEPRINTS = frozenset({"apidocs"})


def public(func: F) -> F:
    """Mark a view method as reachable without a token (and document it so)."""
    wrapper = Blueprint.doc(security=[])(func)
    wrapper._public = True
    return wrapper  # type: ignore[return-value]


def endpoint_is_public() -> bool:
    if request.method == "OPTIONS":  # CORS preflight carries no credentials by design
        return True
    blueprint = request.blueprint or ""
    if request.endpoint in PUBLIC_ENDPOINTS or blueprint in PUBLIC_BLUEPRINTS:
        return True
    method = current_view_method()
    return bool(getattr(method, "_public", False))


def require_authentication() -> None:
    if request.url_rule is None or endpoint_is_public():
        return
    from app.auth.tokens import authenticate_request

    authenticate_request()


class Viewer(Protocol):
    """Whoever a policy decides for: a :class:`Caller` or a loaded :class:`User`."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def is_admin(self) -> bool: ...


class Author(Viewer, Protocol):
    """What a write needs of its author, beyond a viewer's id and role: its public profile.
    An :class:`~app.users.models.Account` or a loaded :class:`User`."""

    @property
    def username(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def bio(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...


def current_caller() -> Caller:
    """The authenticated caller (set by :func:`require_authentication`): id and role only."""
    caller = g.get("caller")
    if caller is None:  # only reachable from an endpoint wrongly marked public
        raise Unauthorized()
    return caller


def current_account() -> Author:
    """The caller's account as a write needs it (id, role, public profile): read by the
    write's session check, so no query and no ORM object; loaded on a read."""
    account: Account | None = g.get("account")
    return account if account is not None else current_user()


def current_user() -> User:
    """The caller's account as the mapped ``User``, made on first use: from what a write's
    session check read (no query), or by one primary-key lookup on a read."""
    user = g.get("current_user")
    if user is None:
        account: Account | None = g.get("account")
        if account is not None:
            user = account.as_user(db.session())
        else:
            user = db.session.get(User, current_caller().id)
        if user is None:  # deleted since the token was checked
            raise Unauthorized("The token has been revoked.")
        g.current_user = user
    return user


def admin_required(func: F) -> F:
    """Only admins may call this operation (403 for everyone else)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_caller().is_admin:
            raise Forbidden("Only administrators may do this.")
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def register_auth_hook(app: Flask) -> None:
    app.before_request(require_authentication)
    # runs before the request-plumbing hooks (Flask calls after_request hooks in reverse), so a
    # response it replaces still gets its headers, log line and metrics
    app.after_request(confirm_before_response)


# --- resources: who may read and who may write ------------------------------------------------


def can_read_template(user: Viewer, template: Any) -> bool:
    """Own, public and built-in templates; admins read everything (moderation)."""
    return (
        template.owner_id is None
        or template.is_public
        or template.owner_id == user.id
        or user.is_admin
    )


def can_write_template(user: Viewer, template: Any) -> bool:
    """Owners write their own; built-ins and everyone else's only admins."""
    return user.is_admin or (template.owner_id is not None and template.owner_id == user.id)


def can_read_character(user: Viewer, character: Any) -> bool:
    return character.is_public or character.owner_id == user.id or user.is_admin


def can_write_character(user: Viewer, character: Any) -> bool:
    return character.owner_id == user.id or user.is_admin
