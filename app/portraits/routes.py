"""``/api/v1/characters/{id}/portrait``: upload, read and remove a character's portrait."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from app.auth.policy import current_caller
from app.characters import service as characters
from app.characters.schemas import CharacterRead
from app.common.api import Blueprint, documented_errors
from app.common.concurrency import (
    ETAG_HEADER,
    IF_MATCH_PARAMETER,
    check_if_match,
    check_if_match_on_read,
    etag_for,
    matches_if_none_match,
)
from app.common.schemas import BaseSchema, Text
from app.errors import PayloadTooLarge
from app.portraits import service
from app.portraits.processing import OUTPUT_CONTENT_TYPE

blp = Blueprint("portraits", __name__, description="Character portraits (PNG, JPEG or WebP in).")

# multipart framing around the file: boundaries and part headers
MULTIPART_OVERHEAD = 64 * 1024


class PortraitUpload(BaseSchema):
    file = Upload(
        required=True,
        metadata={"description": "PNG, JPEG or WebP, detected from the bytes."},
    )


SIZES = ("full", "thumb")


class PortraitQuery(BaseSchema):
    """``size``, and ``v``: a cache-buster a client may put on an image URL (``?v=3``), taken
    and ignored. Any other parameter is 422, as everywhere (a mistyped ``?szie=thumb`` would
    otherwise silently serve the full image)."""

    size = fields.String(
        load_default="full",
        validate=validate.OneOf(SIZES),
        metadata={"description": "`thumb` for the thumbnail (fits 256 x 256)."},
    )
    v = Text(
        metadata={
            "description": "Ignored: a cache-buster a client may add to the image's URL "
            "(the image's `ETag` already tells a cache when it changed). Any other "
            "parameter is 422."
        }
    )


@blp.before_request
def _refuse_large_uploads_before_reading() -> None:
    if request.method != "PUT":
        return
    limit = current_app.config["MAX_PORTRAIT_BYTES"] + MULTIPART_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"The portrait is larger than the limit of {current_app.config['MAX_PORTRAIT_BYTES']}"
            " bytes."
        )


IMAGE_RESPONSE = {
    "200": {
        "description": "The image bytes (WebP).",
        "content": {OUTPUT_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            **ETAG_HEADER,
            "Cache-Control": {
                "description": "`public, no-cache` for public characters, `private, no-cache` "
                "otherwise: caches may keep the image but ask each time (`If-None-Match`, a "
                "304 while it is unchanged), so a new portrait or a character made private "
                "shows at once.",
                "schema": {"type": "string"},
            },
        },
    }
}
# flask-smorest's doc(parameters=...) replaces the parameters it documents from arguments, so
# the query's `size` and `v` are listed here beside the header (tests/test_openapi.py checks
# every operation's query parameters are documented)
_SIZE = PortraitQuery._declared_fields["size"]
SIZE_PARAMETER = {
    "in": "query",
    "name": "size",
    "required": False,
    "description": _SIZE.metadata["description"],
    "schema": {"type": "string", "enum": list(SIZES), "default": _SIZE.load_default},
}
CACHE_BUSTER_PARAMETER = {
    "in": "query",
    "name": "v",
    "required": False,
    "description": PortraitQuery._declared_fields["v"].metadata["description"],
    "schema": {"type": "string"},
}


@blp.route("/<uuid:character_id>/portrait")
class Portrait(MethodView):
    @blp.arguments(PortraitQuery, location="query")
    @blp.doc(
        responses=IMAGE_RESPONSE,
        parameters=[
            SIZE_PARAMETER,
            CACHE_BUSTER_PARAMETER,
            {
                "in": "header",
                "name": "If-None-Match",
                "required": False,
                "description": "The image's `ETag` as last read (or `*`): 304 while it is current.",
                "schema": {"type": "string"},
            },
        ],
    )
    @documented_errors(304, 404)
    def get(self, query: dict[str, Any], character_id: uuid.UUID) -> Response:
        """The portrait (or `?size=thumb`), for anyone who can see the character.

        The image is WebP, as stored: at most 1024 px on its longer side, the thumbnail
        256 px. Its `ETag` names the image (digest and size), so `If-None-Match` gets 304; public
        characters' images are `public, no-cache` (a new portrait shows at once), others'
        `private, no-cache`. 404 when the character has no portrait.
        """
        character = characters.get_readable(viewer=current_caller(), character_id=character_id)
        rendition = query["size"]
        tag = f'"{character.portrait_digest}-{rendition}"'
        cache = "public, no-cache" if character.is_public else "private, no-cache"
        if character.portrait_digest:
            check_if_match_on_read(tag)
        if character.portrait_digest and matches_if_none_match(tag):
            response = current_app.response_class(status=304)
        else:
            data = service.read_portrait(character=character, rendition=rendition)
            response = current_app.response_class(data, mimetype=character.portrait_content_type)
        response.headers["ETag"] = tag
        response.headers["Cache-Control"] = cache
        return response

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(PortraitUpload, location="files")
    @blp.response(200, CharacterRead, headers=ETAG_HEADER)
    @documented_errors(403, 404, 412, 413, 415, 428)
    def put(self, files: dict[str, Any], character_id: uuid.UUID) -> Any:
        """Upload or replace the portrait (owner or admin; `If-Match` of the character).

        Multipart form with one file field `file`. PNG, JPEG or WebP detected from the bytes
        (else 415); larger than `MAX_PORTRAIT_BYTES`: 413; over 40 megapixels or a
        decompression bomb: 422. Stored re-encoded without metadata, ≤ 1024 px, plus a 256 px
        thumbnail. Answers with the character's view and its new `ETag`.
        """
        character = characters.get_writable(viewer=current_caller(), character_id=character_id)
        check_if_match(character)
        character = service.replace_portrait(character=character, upload=files["file"].stream)
        return character, 200, {"ETag": etag_for(character)}

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.response(204)
    @documented_errors(403, 404, 412, 428)
    def delete(self, character_id: uuid.UUID) -> None:
        """Remove the portrait (owner or admin; `If-Match` of the character).

        204, and the character's `ETag` changes; both image files are removed. 404 when the
        character has no portrait; 412 when `If-Match` is not the character's current `ETag`.
        """
        character = characters.get_writable(viewer=current_caller(), character_id=character_id)
        check_if_match(character)
        service.delete_portrait(character=character)
