"""Characters: generated from a template (reproducibly from a seed) or written free-form."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.common.concurrency import owner_context
from app.common.types import JSONText, UTCDateTime, utcnow
from app.extensions import db
from app.users.models import User

EXPRESSION_INDEXES = frozenset(
    {
        "ix_characters_owner_lower_name",
        "ix_characters_public_lower_name",
        "ix_characters_name_trgm",
        "ix_characters_public_name_trgm",
        "ix_characters_public_name_pieces",
    }
)


def search_pieces(text: str) -> list[str] | None:
    """What a public search for ``text`` (lower-cased) looks up in the index of the pieces of
    public names (``cf_name_pieces()``: every substring of one, two and four characters,
    migration c6d1e7a4f203): the text itself if it has one or two letters, its four-letter
    pieces if it has four or more. Every name that contains ``text`` has all of them. None for
    three letters: the trigram index finds exactly that trigram."""
    if len(text) <= 2:
        return [text] if text else None
    if len(text) == 3:
        return None
    return sorted({text[start : start + 4] for start in range(len(text) - 3)})


class Character(db.Model):
    __tablename__ = "characters"
    # Every list order is served by an index, in both directions: (scope column, sort column, id)
    # for scope=mine (owner_id) and scope=public (is_public). Indexes on expressions — lower(name)
    # for sort=name, and a trigram GIN index for ?q= on PostgreSQL — live in the migration
    # (EXPRESSION_INDEXES), as Alembic cannot compare expression indexes with the models. On
    # PostgreSQL the public indexes carry the name too, so a search (?q=) for a common fragment
    # is an index-only walk down the list's order (migration 8e4f1a2b6c90), and public searches
    # for rare fragments have a trigram index of public names only (migration bf2a392fa611)
    # and an index of the names' short pieces (search_pieces, migration c6d1e7a4f203).
    __table_args__ = (
        Index("ix_characters_owner_created", "owner_id", "created_at", "id"),
        Index("ix_characters_owner_updated", "owner_id", "updated_at", "id"),
        Index(
            "ix_characters_public_created",
            "is_public",
            "created_at",
            "id",
            postgresql_include=["name"],
        ),
        Index(
            "ix_characters_public_updated",
            "is_public",
            "updated_at",
            "id",
            postgresql_include=["name"],
        ),
        Index("ix_characters_template_id", "template_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # null once the template is deleted: the character keeps its data, validated free-form
    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL"), nullable=True
    )
    template_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    generator_version: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # the rerolls the character was generated with: "reset to generated" uses them again
    rerolls: Mapped[Any] = mapped_column(JSONText, nullable=True)
    attributes: Mapped[Any] = mapped_column(JSONText)
    backstory: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    portrait_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    portrait_content_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    portrait_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    portrait_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    owner: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    __mapper_args__ = {"version_id_col": row_version}

    @property
    def portrait(self) -> dict[str, Any] | None:
        return portrait_view(self)

    @property
    def etag_context(self) -> str:
        return etag_context(self)


def etag_context(character: Any) -> str:
    """What a character's view shows beyond its own row's version (app.common.concurrency): its
    template (deleting the template sets it to null) and its owner's public profile."""
    return f"{character.template_id}:{owner_context(character.owner)}"


def portrait_view(character: Any) -> dict[str, Any] | None:
    """The ``portrait`` member of a character's view (a model or a read-side view)."""
    if character.portrait_digest is None:
        return None
    url = f"/api/v1/characters/{character.id}/portrait"
    return {
        "url": url,
        "thumbnail_url": f"{url}?size=thumb",
        "width": character.portrait_width,
        "height": character.portrait_height,
        "content_type": character.portrait_content_type,
    }
