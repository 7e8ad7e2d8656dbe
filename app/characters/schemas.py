"""Character schemas: create, generate, update (PATCH), read, list query."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.character_templates.schemas import RerollsField, locks_field, seed_field
from app.characters.views import OwnerView
from app.common.pagination import PageQuery, sort_field
from app.common.schemas import BaseSchema, HTMLLength, SafeHTML, StrictBoolean, Text, UserValues
from app.users.schemas import UserPublic


def name_text(**kwargs: object) -> Text:
    return Text(validate=validate.Length(min=1, max=100), metadata={"example": "Brana"}, **kwargs)


def backstory_html(**kwargs: object) -> SafeHTML:
    return SafeHTML(
        validate=HTMLLength(max=10000),
        metadata={"description": "Safe HTML (p br b strong i em ul ol li blockquote a)."},
        **kwargs,
    )


class CharacterCreate(BaseSchema):
    name = name_text(required=True)
    template_id = fields.UUID(
        metadata={"description": "A template you can see; its definition checks `attributes`."}
    )
    attributes = UserValues(
        metadata={
            "description": "With a template: values checked against it (missing keys are "
            "generated; the result ≤ 1 MiB as JSON). Without: any JSON object (≤ 64 KiB, "
            "≤ 200 keys).",
            "example": {"klass": "Wizard"},
        }
    )
    backstory = backstory_html(load_default="")
    is_public = StrictBoolean(load_default=False)


class CharacterGenerate(BaseSchema):
    template_id = fields.UUID(required=True)
    seed = seed_field()
    locks = locks_field(load_default=dict)
    rerolls = RerollsField(load_default=dict)
    name = name_text()
    is_public = StrictBoolean(load_default=False)


class CharacterUpdate(BaseSchema):
    name = name_text()
    backstory = backstory_html()
    is_public = StrictBoolean()
    attributes = UserValues(
        metadata={
            "description": "Merged key by key (RFC 7396): a key set to null goes back to its "
            "generated value (or, without a template, is removed; nested objects merge the "
            "same way, member by member).",
            "example": {"klass": "Wizard", "str": None},
        }
    )


class PortraitView(ma.Schema):
    url = fields.String(required=True)
    thumbnail_url = fields.String(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    content_type = fields.String(required=True, metadata={"example": "image/webp"})


_USER_PUBLIC = UserPublic()


@functools.lru_cache(maxsize=1024)
def _public_owner(owner: OwnerView) -> Mapping[str, Any]:
    return _USER_PUBLIC.dump(owner)


class OwnerField(fields.Nested):
    """The owner's public view (``UserPublic``), dumped once per distinct owner.

    A page of someone's characters repeats one owner twenty times. A read-side
    :class:`OwnerView` is frozen and compared by value (every dumped column is part of it), so
    its dump is a pure function of it and is cached: an edited profile is a new key. ORM users
    (the write paths) are dumped as usual.
    """

    def _serialize(self, nested_obj: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(nested_obj, OwnerView):
            return dict(_public_owner(nested_obj))  # a copy: the cached one is never handed out
        return super()._serialize(nested_obj, attr, obj, **kwargs)


class CharacterRead(ma.Schema):
    """A character's view; dumps read-side views and ORM entities alike."""

    id = fields.UUID(dump_only=True)
    owner = OwnerField(UserPublic, dump_only=True)
    name = fields.String(dump_only=True)
    template_id = fields.UUID(allow_none=True, dump_only=True)
    template_version = fields.Integer(allow_none=True, dump_only=True)
    seed = fields.Integer(allow_none=True, dump_only=True)
    generator_version = fields.String(allow_none=True, dump_only=True)
    attributes = fields.Dict(dump_only=True)
    backstory = fields.String(dump_only=True)
    is_public = fields.Boolean(dump_only=True)
    portrait = fields.Nested(PortraitView, allow_none=True, dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        # Always an object with plain attribute names (no mappings, no dotted paths), so plain
        # getattr does what marshmallow's general lookup does, in a third of the time.
        return getattr(obj, attr, default)


class CharacterListQuery(PageQuery):
    scope = fields.String(
        load_default="mine",
        validate=validate.OneOf(["mine", "public", "all"]),
        metadata={
            "description": "`mine` (default), `public` (everyone's public ones, yours "
            "included) or `all` (admins only)."
        },
    )
    q = Text(
        validate=validate.Length(max=100),
        metadata={
            "description": "Name contains this, ignoring case. Cleaned like any text (NFC, "
            "trimmed): a query of only spaces, like an empty one, filters nothing."
        },
    )
    template_id = fields.UUID(metadata={"description": "Made from this template."})
    sort = sort_field(["name", "created_at", "updated_at"], "-created_at")
