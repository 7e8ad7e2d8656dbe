"""Accounts: sign-up, profile changes, moderation, deletion."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app.auth import passwords
from app.auth.models import LoginSession
from app.auth.policy import Viewer
from app.common.pagination import Page, contains, order_by_clause, paginate
from app.common.types import utcnow
from app.errors import Conflict, NotFound, ValidationFailed, field_errors
from app.extensions import db
from app.users.models import User


def _duplicate(field: str) -> Conflict:
    return Conflict(
        f"An account with this {field} already exists.",
        errors=field_errors("json", field, f"This {field} is already taken."),
    )


def _check_unique(
    email: str | None, username: str | None, exclude: uuid.UUID | None = None
) -> None:
    if email is not None:
        taken = db.session.scalar(select(User.id).where(User.email == email))
        if taken is not None and taken != exclude:
            raise _duplicate("email")
    if username is not None:
        taken = db.session.scalar(select(User.id).where(User.username_key == username.lower()))
        if taken is not None and taken != exclude:
            raise _duplicate("username")


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
        statement = statement.where(
            or_(contains(User.username_key, query["q"]), contains(User.email, query["q"]))
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


def moderate_user(*, user_id: uuid.UUID, data: dict[str, Any]) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    if "role" in data:
        user.role = data["role"]
    if "is_active" in data:
        if user.is_active and not data["is_active"]:
            revoke_all_sessions(user_id=user.id)
        user.is_active = data["is_active"]
    db.session.commit()
    return user


def revoke_all_sessions(*, user_id: uuid.UUID) -> None:
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def delete_user(*, user: User) -> None:
    """Delete the account; the database cascades to everything it owns, and the portrait
    files of its characters are removed once that is committed."""
    from app.portraits.service import forget, portraits_of

    files = portraits_of(owner_id=user.id)
    db.session.delete(user)
    db.session.commit()
    forget(files)
