"""What a read shows of a character, loaded as plain rows rather than ORM entities.

Writes load :class:`Character` through the ORM: its unit of work, its optimistic version
column, its relationships. A read only shows rows, and turning them into entities (identity
map, instance state, the joined owner) was most of the ORM's share of a read: measured
in-process on the bench_http data, a read by id with its dump took 376 us as an entity and 245
us as a row, a page of 20 1175 us and 887 us. So ``GET /characters/{id}`` and the lists select
the same mapped columns (and the owner's public ones) with SQLAlchemy Core, run on the
request's connection (app.common.database), and wrap each row in a :class:`CharacterView`,
which ``CharacterRead`` dumps exactly like the model, with the same ETag
(``tests/characters/test_views.py`` checks that a character reads the same through both
paths). Whole requests, in-process: a read went from ~740 to ~610 us of CPU, a list page of 20
from ~1935 to ~1735 us.

A creation is one ``INSERT`` of values all known beforehand, so it, too, skips the unit of work
(app.characters.service) and answers with the view of what it inserted (:func:`from_values`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, select

from app.characters.models import Character, portrait_view
from app.common.pagination import Rows
from app.common.prepared import prepared
from app.users.models import User

# every column but the rerolls, which only an edit needs
_CHARACTER_COLUMNS = tuple(c for c in Character.__table__.c if c.key != "rerolls")
_OWNER_COLUMNS = (
    User.username.label("owner_username"),
    User.display_name.label("owner_display_name"),
    User.bio.label("owner_bio"),
    User.created_at.label("owner_created_at"),
)


@dataclass(frozen=True, slots=True)
class OwnerView:
    """The owner's public view (``UserPublic``)."""

    id: uuid.UUID
    username: str
    display_name: str
    bio: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CharacterView:
    """One character as a read shows it (``CharacterRead``), with its ETag's version."""

    id: uuid.UUID
    owner_id: uuid.UUID
    owner: OwnerView
    name: str
    template_id: uuid.UUID | None
    template_version: int | None
    seed: int | None
    generator_version: str | None
    attributes: Any
    backstory: str
    is_public: bool
    portrait_digest: str | None
    portrait_content_type: str | None
    portrait_width: int | None
    portrait_height: int | None
    created_at: datetime
    updated_at: datetime
    row_version: int

    @property
    def portrait(self) -> dict[str, Any] | None:
        return portrait_view(self)


def with_owners(statement: Select[Any]) -> Select[Any]:
    """``statement`` (on characters) joined to the owners' public columns."""
    return statement.join(User, User.id == Character.owner_id).add_columns(*_OWNER_COLUMNS)


# Built once: a statement is immutable, and building one costs as much as running it here.
# CHARACTERS is what a list filters and orders, then pages with ROWS (the owners are joined to
# the page's rows only); BY_ID is the statement for a single character.
CHARACTERS = select(*_CHARACTER_COLUMNS)
BY_ID = prepared(
    with_owners(CHARACTERS.where(Character.id == bindparam("character_id"))), "cf_character_by_id"
)


def _view(values: Mapping[str, Any], owner: OwnerView) -> CharacterView:
    return CharacterView(owner=owner, **{c.key: values[c.key] for c in _CHARACTER_COLUMNS})


def from_row(row: Row[Any]) -> CharacterView:
    """The view of one row of ``with_owners(...)`` (extra columns are ignored)."""
    values = row._mapping
    owner = OwnerView(
        id=values["owner_id"],
        username=values["owner_username"],
        display_name=values["owner_display_name"],
        bio=values["owner_bio"],
        created_at=values["owner_created_at"],
    )
    return _view(values, owner)


def from_values(values: Mapping[str, Any], owner: User) -> CharacterView:
    """The view of a character from its column values (a row just inserted) and its owner."""
    public = OwnerView(
        id=owner.id,
        username=owner.username,
        display_name=owner.display_name,
        bio=owner.bio,
        created_at=owner.created_at,
    )
    return _view(values, public)


ROWS = Rows(item=from_row, widen=with_owners)
