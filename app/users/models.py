"""Accounts."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Integer, String, Text, Uuid
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

from app.common.types import UTCDateTime, utcnow
from app.extensions import db

ROLES = ("user", "admin")


def _created_at(context: DefaultExecutionContext) -> datetime:
    """``updated_at`` of a new row: the very ``created_at`` of the same INSERT. Two separate
    ``utcnow()`` calls would differ by microseconds, and a new account would look edited."""
    return context.get_current_parameters()["created_at"]


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('user', 'admin')", name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    username: Mapped[str] = mapped_column(String(32))
    # lower(username): unique, so usernames are unique case-insensitively on every backend
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(64))
    bio: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(String(16), default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # created_at's default runs first (column order), so a new row's two timestamps are equal
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_created_at, onupdate=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": row_version}

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class Account:
    """A user's columns as one Core row read them (a write's session check), with no ORM object.

    Most writes need of their author only its id, role and public profile, and building the
    mapped :class:`User` from the row was a measurable part of a write (identity map, instance
    state: ~60-100 us of a ~1.2 ms generate, measured in-process). :meth:`as_user` makes
    that object, for the writes that change the account or relate to it, without asking the
    database again: the row is what a load in the same transaction would have read.
    """

    __slots__ = ("bio", "columns", "created_at", "display_name", "id", "role", "username")

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.columns = columns  # every column of ``users``, by name
        self.id: uuid.UUID = columns["id"]
        self.role: str = columns["role"]
        self.username: str = columns["username"]
        self.display_name: str = columns["display_name"]
        self.bio: str = columns["bio"]
        self.created_at: datetime = columns["created_at"]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def as_user(self, session: Session) -> User:
        """The mapped account, persistent in ``session`` as if loaded there (no SQL): the one
        already in its identity map, if any, else one made from these columns."""
        user = User(**self.columns)
        make_transient_to_detached(user)  # as loaded: no pending changes, an identity key
        return session.merge(user, load=False)
