"""Accounts: sign-up, profile changes, moderation, deletion."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.auth import passwords
from app.auth.models import LoginSession
from app.auth.policy import Viewer
from app.common.database import lock_for_writing
from app.common.pagination import Page, contains, order_by_clause, paginate
from app.common.types import utcnow
from app.errors import Conflict, NotFound, ProblemError, ValidationFailed, field_errors
from app.extensions import db
from app.users.models import User
from app.users.schemas import search_spellings


def _duplicate(*fields: str) -> Conflict:
    """409 naming every taken field, so a client can say at once all that must change."""
    return Conflict(
        f"An account with this {' and '.join(fields)} already exists.",
        errors={"json": {field: [f"This {field} is already taken."] for field in fields}},
    )


def _check_unique(
    email: str | None, username: str | None, exclude: uuid.UUID | None = None
) -> None:
    taken_fields = []
    if email is not None:
        taken = db.session.scalar(select(User.id).where(User.email == email))
        if taken is not None and taken != exclude:
            taken_fields.append("email")
    if username is not None:
        taken = db.session.scalar(select(User.id).where(User.username_key == username.lower()))
        if taken is not None and taken != exclude:
            taken_fields.append("username")
    if taken_fields:
        raise _duplicate(*taken_fields)


def _commit_unique() -> None:
    """Commit; a unique violation that slipped past the check (a race) becomes the same 409."""
    try:
        db.session.commit()
    except IntegrityError as error:
        db.session.rollback()
        message = str(error.orig).lower()
        raise _duplicate("username" if "username" in message else "email") from None


def create_user(
    *, email: str, username: str, password: str, display_name: str | None = None, role: str = "user"
) -> User:
    _check_unique(email, username)
    user = User(
        email=email,
        username=username,
        username_key=username.lower(),
        password_hash=passwords.hash_password(password),
        display_name=display_name or username,
        bio="",
        role=role,
        is_active=True,
    )
    db.session.add(user)
    _commit_unique()
    return user


def get_user(*, viewer: Viewer, user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None or (not user.is_active and not viewer.is_admin):
        raise NotFound("No such user.")
    return user


def list_users(*, query: dict[str, Any]) -> Page:
    statement = select(User)
    if query.get("q"):
        # both stored lower-cased by Python (usernames are ASCII, emails str.lower()); an
        # address is also looked for in the canonical spelling it is stored in
        spellings = search_spellings(query["q"])
        statement = statement.where(
            or_(
                *(
                    contains(column, text)
                    for column in (User.username_key, User.email)
                    for text in spellings
                )
            )
        )
    statement = statement.order_by(
        *order_by_clause(
            query["sort"], {"username": User.username_key, "created_at": User.created_at}, User.id
        )
    )
    return paginate(statement, page=query["page"], page_size=query["page_size"])


def update_me(*, user: User, session_id: uuid.UUID, data: dict[str, Any]) -> User:
    if "password" in data:
        if not passwords.verify_password(user.password_hash, data["current_password"]):
            raise ValidationFailed(
                "The current password is wrong.",
                errors=field_errors("json", "current_password", "This is not your password."),
            )
        user.password_hash = passwords.hash_password(data["password"])
        # Changing the password signs out every other session of the user.
        db.session.execute(
            update(LoginSession)
            .where(
                LoginSession.user_id == user.id,
                LoginSession.id != session_id,
                LoginSession.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
    for field in ("display_name", "bio"):
        if field in data:
            setattr(user, field, data[field])
    db.session.commit()
    return user


class LastAdmin(ProblemError):
    """409: the change would leave no active admin. Only the CLI makes admins, so over HTTP
    nobody could undo it (``about:blank``: the detail and ``errors`` say why)."""

    status = 409


def get_user_to_moderate(*, user_id: uuid.UUID) -> User:
    """Any account, deactivated ones included (admins only: the caller checks)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _keep_an_active_admin(user: User, data: dict[str, Any]) -> None:
    """Refuse a change that would leave no active admin (409 on the fields that would)."""
    demoted = data.get("role", user.role) != "admin"
    deactivated = not data.get("is_active", user.is_active)
    if not (user.is_admin and user.is_active) or not (demoted or deactivated):
        return
    if _another_active_admin(user):
        return
    fields = [field for field, leaves in (("role", demoted), ("is_active", deactivated)) if leaves]
    message = "This is the only active admin; make another admin first."
    raise LastAdmin(
        "The change would leave no active admin, and admins are made only with the CLI.",
        errors={"json": {field: [message] for field in fields}},
    )


def _another_active_admin(user: User) -> bool:
    """Whether an active admin other than ``user`` exists, with the admins locked until the
    caller commits: two admins demoting (or deleting) each other at the same moment are then
    serialised, and the second sees that the first is gone.

    PostgreSQL locks the active admins' rows (``FOR UPDATE``, in id order: no deadlock);
    SQLite, which has no row locks, its write lock (:func:`lock_for_writing`).
    """
    lock_for_writing()
    admins = db.session.scalars(
        select(User.id)
        .where(User.role == "admin", User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()
    return any(admin_id != user.id for admin_id in admins)


MODERATION_ATTEMPTS = 3


def moderate_user(
    *,
    user_id: uuid.UUID,
    data: dict[str, Any],
    precondition: Callable[[User], None],
    retry: bool,
) -> User:
    """Apply an admin's ``role`` / ``is_active`` change, after ``precondition`` (If-Match).

    The row's version guards the write. When it moved meanwhile (the user edited their profile)
    and the admin sent no precondition (``retry``), the change, which only sets values, is
    applied again to the fresh row, up to ``MODERATION_ATTEMPTS`` times in all; with one, the
    admin asked to act on what they read, so it is 412.
    """
    attempt = 1
    while True:
        user = get_user_to_moderate(user_id=user_id)
        precondition(user)
        _keep_an_active_admin(user, data)
        if "role" in data:
            user.role = data["role"]
        if "is_active" in data:
            if user.is_active and not data["is_active"]:
                revoke_all_sessions(user_id=user.id)
            user.is_active = data["is_active"]
        try:
            db.session.commit()
            return user
        except StaleDataError:
            db.session.rollback()
            if not retry or attempt == MODERATION_ATTEMPTS:
                raise
            attempt += 1


def revoke_all_sessions(*, user_id: uuid.UUID) -> None:
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def delete_user(*, user: User) -> None:
    """Delete the account; the database cascades to everything it owns, and the portrait
    files of its characters are removed once that is committed."""
    from app.character_templates.models import Template
    from app.character_templates.service import release_characters
    from app.portraits.service import forget, portraits_of

    if user.is_admin and user.is_active and not _another_active_admin(user):
        raise LastAdmin(
            "Deleting the only active admin would leave none, and admins are made only with "
            "the CLI: make another admin first.",
            errors={"json": {"_schema": ["This is the only active admin."]}},
        )
    files = portraits_of(owner_id=user.id)
    # others' characters made from its templates become characters without a template
    release_characters(select(Template.id).where(Template.owner_id == user.id))
    db.session.delete(user)
    db.session.commit()
    forget(files)
