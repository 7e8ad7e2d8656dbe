"""Templates: the rules to generate a character, with every version's definition kept."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.common.concurrency import owner_context
from app.common.types import JSONText, UTCDateTime, utcnow
from app.extensions import db
from app.users.models import User


class Template(db.Model):
    __tablename__ = "templates"
    __table_args__ = (
        Index("ix_templates_owner_id_name", "owner_id", "name"),
        Index("ix_templates_is_public", "is_public"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # null for built-in templates, which are seeded and writable by admins only
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    # stable identifier of a built-in template (its seed file), used by `flask seed` to upsert
    slug: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    # the definition's version: 1, then +1 whenever the definition changes
    version: Mapped[int] = mapped_column(Integer, default=1)
    # loaded only when read: generation works from the compiled-definition cache
    definition: Mapped[Any] = mapped_column(JSONText, deferred=True)
    # the template a fork was copied from (kept for moderation; not in the view, which is
    # exactly API.md's)
    forked_from: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    # loaded with the template where its view needs them (lists use selectinload)
    owner: Mapped[User | None] = relationship()
    tag_rows: Mapped[list[TemplateTag]] = relationship(
        order_by="TemplateTag.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __mapper_args__ = {"version_id_col": row_version}

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @tags.setter
    def tags(self, values: list[str]) -> None:
        self.tag_rows = [TemplateTag(tag=tag, position=i) for i, tag in enumerate(values)]

    @property
    def is_builtin(self) -> bool:
        return self.owner_id is None

    @property
    def etag_context(self) -> str:
        """What the view shows beyond this row (app.common.concurrency): the owner's profile."""
        return owner_context(self.owner)


class TemplateTag(db.Model):
    """One tag of a template; the index on ``tag`` serves ``?tag=`` on every backend."""

    __tablename__ = "template_tags"

    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(30), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)


class TemplateVersion(db.Model):
    """Every definition a template has had: characters are validated against theirs."""

    __tablename__ = "template_versions"

    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[Any] = mapped_column(JSONText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
