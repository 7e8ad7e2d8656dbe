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
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, Select, bindparam, select

from app.auth.policy import Author
from app.characters.models import Character, etag_context, portrait_view
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


class OwnerView(NamedTuple):
    """The owner's public view (``UserPublic``)."""

    id: uuid.UUID
    username: str
    display_name: str
    bio: str
    created_at: datetime


class CharacterView(NamedTuple):
    """One character as a read shows it (``CharacterRead``), with its ETag's version.

    A named tuple, not a dataclass: a page makes twenty, and a tuple is made from a slice of
    the row in C (:func:`from_row`). Twenty rows took 109 us as frozen dataclasses built from
    each row's mapping by key, and take 9 us as named tuples (a page of 20 went from ~1.17 to
    ~1.05 ms of CPU in-process). Its fields are the selected columns, in their order (checked
    below), then the owner.
    """

    id: uuid.UUID
    owner_id: uuid.UUID
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
    owner: OwnerView

    @property
    def portrait(self) -> dict[str, Any] | None:
        return portrait_view(self)

    @property
    def etag_context(self) -> str:
        return etag_context(self)


_KEYS = tuple(c.key for c in _CHARACTER_COLUMNS)
if CharacterView._fields != (*_KEYS, "owner"):  # a column added to the model, say
    raise RuntimeError(f"CharacterView's fields are not the selected columns: {_KEYS}")
# where the owner's public columns start in a row of with_owners(...)
_OWNER_AT = len(_KEYS)
_OWNER_ID_AT = _KEYS.index("owner_id")
_owner, _character = OwnerView._make, CharacterView._make


def with_owners(statement: Select[Any]) -> Select[Any]:
    """``statement`` (on characters, selecting exactly ``CHARACTERS``' columns) joined to the
    owners' public columns, which come right after them (:func:`from_row` reads them there)."""
    selected = tuple(statement.selected_columns)
    if len(selected) != _OWNER_AT or any(
        a is not b for a, b in zip(selected, _CHARACTER_COLUMNS, strict=True)
    ):
        raise ValueError("with_owners() widens statements that select CHARACTERS' columns")
    return statement.join(User, User.id == Character.owner_id).add_columns(*_OWNER_COLUMNS)


# Built once: a statement is immutable, and building one costs as much as running it here.
# CHARACTERS is what a list filters and orders, then pages with ROWS (the owners are joined to
# the page's rows only); BY_ID is the statement for a single character.
CHARACTERS = select(*_CHARACTER_COLUMNS)
BY_ID = prepared(
    with_owners(CHARACTERS.where(Character.id == bindparam("character_id"))), "cf_character_by_id"
)


def from_row(row: Row[Any]) -> CharacterView:
    """The view of one row of ``with_owners(...)``: the character's columns, then its owner's
    (extra columns after them are ignored)."""
    owner = _owner((row[_OWNER_ID_AT], *row[_OWNER_AT : _OWNER_AT + len(_OWNER_COLUMNS)]))
    return _character((*row[:_OWNER_AT], owner))


def from_values(values: Mapping[str, Any], owner: Author) -> CharacterView:
    """The view of a character from its column values (a row just inserted) and its owner."""
    public = OwnerView(owner.id, owner.username, owner.display_name, owner.bio, owner.created_at)
    return _character((*(values[key] for key in _KEYS), public))


ROWS = Rows(item=from_row, widen=with_owners)
