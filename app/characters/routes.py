"""``/api/v1/characters``: create, generate, read, share and edit characters."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app.auth.policy import current_account, current_caller
from app.characters import service
from app.characters.models import Character
from app.characters.schemas import (
    CharacterCreate,
    CharacterGenerate,
    CharacterListQuery,
    CharacterRead,
    CharacterUpdate,
)
from app.common.api import Blueprint, documented_errors
from app.common.concurrency import (
    ETAG_HEADER,
    IF_MATCH_PARAMETER,
    IF_NONE_MATCH_PARAMETER,
    check_if_match,
    etag_for,
    not_modified_response,
)
from app.common.created import Created
from app.common.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from app.common.pagination import PAGINATION_HEADERS

blp = Blueprint(
    "characters", __name__, description="Characters: generated from templates or free-form."
)

CREATED = Created(Character, CharacterRead(), "/api/v1/characters/{id}")
CREATED_HEADERS = CREATED.headers_doc("character")


@blp.route("")
class Characters(MethodView):
    @blp.arguments(CharacterListQuery, location="query")
    @blp.response(200, CharacterRead(many=True), headers=PAGINATION_HEADERS)
    @documented_errors(403)
    def get(self, query: dict[str, Any]) -> Any:
        """List characters: yours (`scope=mine`, default), everyone's public ones
        (`scope=public`), or all (`scope=all`, admins only).

        `?q=` matches names, `?template_id=` filters by template,
        `?sort=name|created_at|updated_at` (default `-created_at`).
        """
        page = service.list_characters(viewer=current_caller(), query=query)
        return page.items, 200, page.headers()

    @blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @blp.arguments(
        CharacterCreate,
        example={"name": "Brana", "template_id": "3f0c2a9e-5b8e-4e59-9d8f-0f5cf1d2b7a1",
                 "attributes": {"klass": "Wizard"}},
    )  # fmt: skip
    @idempotent("characters.create", CREATED)
    @blp.response(201, CharacterRead, headers=CREATED_HEADERS)
    @documented_errors(400, 409)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a character, free-form or checked against a template.

        With `template_id`, `attributes` are validated against the template (422 naming the
        key); missing ones are generated from a new seed and derived ones computed; `name` acts
        as a lock on the template's name field. Honours `Idempotency-Key`.
        """
        return CREATED.answer(service.create_character(owner=current_account(), data=data))


@blp.route("/generate")
class Generate(MethodView):
    @blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @blp.arguments(
        CharacterGenerate,
        example={"template_id": "3f0c2a9e-5b8e-4e59-9d8f-0f5cf1d2b7a1", "seed": 42,
                 "locks": {"klass": "Wizard"}, "rerolls": {"traits": 1}},
    )  # fmt: skip
    @idempotent("characters.generate", CREATED)
    @blp.response(201, CharacterRead, headers=CREATED_HEADERS)
    @documented_errors(400, 409)
    def post(self, data: dict[str, Any]) -> Any:
        """Generate and store a character: exactly what the template's preview shows for the
        same seed, locks and rerolls. `name` overrides the generated name. Honours
        `Idempotency-Key`.

        A character whose attributes would come to more than 1 MiB as JSON (a template that
        picks thousands of values) is 422 at `errors.json._schema`, and nothing is stored.
        """
        return CREATED.answer(service.generate_character(owner=current_account(), data=data))


@blp.route("/<uuid:character_id>")
class CharacterById(MethodView):
    @blp.doc(parameters=[IF_NONE_MATCH_PARAMETER])
    @blp.response(200, CharacterRead, headers=ETAG_HEADER)
    @documented_errors(304, 404)
    def get(self, character_id: uuid.UUID) -> Any:
        """A character of yours, or a public one (others' private characters are 404).

        The `ETag` covers the character, its owner's public profile and its template link;
        send it as `If-Match` to edit, or as `If-None-Match` to get 304 while nothing changed.
        """
        view = service.read_view(viewer=current_caller(), character_id=character_id)
        return not_modified_response(view) or (view, 200, {"ETag": etag_for(view)})

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(CharacterUpdate, example={"attributes": {"klass": "Wizard", "str": None}})
    @blp.response(200, CharacterRead, headers=ETAG_HEADER)
    @documented_errors(403, 404, 412, 428)
    def patch(self, data: dict[str, Any], character_id: uuid.UUID) -> Any:
        """Edit a character (owner only; `If-Match` required).

        `attributes` merge key by key (RFC 7396); the result is re-validated against the template
        version the character was made from, derived fields are recomputed, and a key set to
        null goes back to its generated value.

        A new `name` changes the name only: stored text that used the old one (a grammar's
        `#name#`) is kept as it is, like every stored value; set such a field to null in the
        same edit to generate it again, with the new name.
        """
        character = service.get_writable(viewer=current_caller(), character_id=character_id)
        check_if_match(character)
        character = service.update_character(character=character, data=data)
        return character, 200, {"ETag": etag_for(character)}

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.response(204)
    @documented_errors(403, 404, 412, 428)
    def delete(self, character_id: uuid.UUID) -> None:
        """Delete a character and its portrait (owner only; `If-Match` required).

        204; the portrait's files are removed once the deletion is committed. Others get 403
        on a public character and 404 on a private one.
        """
        character = service.get_writable(viewer=current_caller(), character_id=character_id)
        check_if_match(character)
        service.delete_character(character=character)
