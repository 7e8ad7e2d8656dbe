"""Template schemas: create, update (PATCH), read, list query, preview."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.common.pagination import PageQuery, sort_field
from app.common.schemas import (
    TAG_PATTERN,
    BaseSchema,
    HTMLLength,
    SafeHTML,
    StrictBoolean,
    StrictInteger,
    Tag,
    Text,
    UserValues,
)
from app.generation import MAX_SEED, DefinitionError, compile_definition
from app.users.schemas import UserPublic

EXAMPLE_DEFINITION = {
    "names": {"human": {"parts": [["Al", "Bran", "Cor"], ["a", "e", ""], ["ric", "wyn", "dan"]]}},
    "tables": {"traits": ["brave", "greedy", "curious", "pious", "reckless", "honest"]},
    "fields": [
        {"key": "name", "type": "name", "generator": "human"},
        {"key": "klass", "label": "Class", "type": "choice", "options": ["Fighter", "Wizard"]},
        {"key": "str", "type": "integer", "dice": "4d6kh3", "group": "abilities"},
        {"key": "traits", "type": "pick", "table": "traits", "count": 2},
    ],
}


class Definition(fields.Raw):
    """A template definition, checked by the generation engine's compiler.

    Errors come back located, e.g. ``{"fields": {"3": {"dice": ["..."]}}}``. The value is kept
    exactly as sent.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            metadata={
                "type": "object",
                "description": "The rules to generate a character; see docs/templates.md.",
                "example": EXAMPLE_DEFINITION,
            },
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            compile_definition(value)
        except DefinitionError as error:
            raise ma.ValidationError(error.as_dict()) from None
        return value


class TagList(fields.List):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            Tag,
            validate=validate.Length(max=10, error="At most 10 tags."),
            metadata={"items": {"type": "string", "pattern": TAG_PATTERN}, "example": ["fantasy"]},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        tags = super()._deserialize(value, attr, data, **kwargs)
        if len(set(tags)) != len(tags):
            raise ma.ValidationError("Tags must not repeat.")
        return tags


class TemplateCreate(BaseSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    definition = Definition(required=True)
    description = SafeHTML(load_default="", validate=HTMLLength(max=2000))
    tags = TagList(load_default=list)
    is_public = StrictBoolean(load_default=False)


class TemplateUpdate(BaseSchema):
    name = Text(validate=validate.Length(min=1, max=100))
    definition = Definition()
    description = SafeHTML(validate=HTMLLength(max=2000))
    tags = TagList()
    is_public = StrictBoolean()


class TemplateRead(ma.Schema):
    id = fields.UUID(dump_only=True)
    owner = fields.Nested(
        UserPublic,
        allow_none=True,
        dump_only=True,
        metadata={"description": "null for built-in templates"},
    )
    name = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    tags = fields.List(fields.String(), dump_only=True)
    is_public = fields.Boolean(dump_only=True)
    version = fields.Integer(
        dump_only=True, metadata={"description": "1, then +1 whenever the definition changes"}
    )
    definition = fields.Raw(dump_only=True, metadata={"type": "object"})
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class TemplateListQuery(PageQuery):
    q = Text(
        validate=validate.Length(max=100),
        metadata={
            "description": "Name contains this, ignoring case. Cleaned like any text (NFC, "
            "trimmed): a query of only spaces, like an empty one, filters nothing."
        },
    )
    tag = fields.String(
        validate=validate.Regexp(TAG_PATTERN), metadata={"description": "Has this tag."}
    )
    owner = fields.String(
        validate=validate.OneOf(["me"]), metadata={"description": "`me`: only your own templates."}
    )
    sort = sort_field(["name", "created_at", "updated_at"], "name")


class RerollsField(fields.Dict):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=fields.String(),
            values=StrictInteger(validate=validate.Range(min=0, max=MAX_SEED)),
            metadata={
                "description": "`{key: n}`: the n-th alternative of that field (0 = original).",
                "example": {"traits": 1},
            },
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        """As ``fields.Dict``, with a member's problems keyed by the member alone
        (``rerolls.age``), as for an unknown or derived key, not nested one level further
        under marshmallow's ``key`` or ``value``."""
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ma.ValidationError as error:
            messages = error.messages
            if not isinstance(messages, dict):
                raise
            raise ma.ValidationError(
                {
                    key: [*problems.get("key", []), *problems.get("value", [])]
                    for key, problems in messages.items()
                },
                valid_data=error.valid_data,
            ) from None


def seed_field(**kwargs: Any) -> StrictInteger:
    return StrictInteger(
        validate=validate.Range(min=0, max=MAX_SEED),
        metadata={
            "description": "0..2^53-1; the server picks one when the member is absent and "
            "returns it (`null` is not a seed: 422).",
            "example": 42,
        },
        **kwargs,
    )


def locks_field(**kwargs: Any) -> UserValues:
    return UserValues(
        metadata={
            "description": "`{key: value}`: fields fixed to a value, validated like an edit.",
            "example": {"klass": "Wizard"},
        },
        **kwargs,
    )


class PreviewRequest(BaseSchema):
    seed = seed_field()
    count = StrictInteger(load_default=1, validate=validate.Range(min=1, max=50))
    locks = locks_field(load_default=dict)
    rerolls = RerollsField(load_default=dict)


class GeneratedCharacter(ma.Schema):
    name = fields.String(required=True)
    attributes = fields.Dict(required=True)
    seed = fields.Integer(required=True)
