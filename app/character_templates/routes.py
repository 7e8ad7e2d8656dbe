"""``/api/v1/templates``: the rules to generate characters."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from app.auth.policy import current_caller, current_user
from app.character_templates import service
from app.character_templates.models import Template
from app.character_templates.schemas import (
    GeneratedCharacter,
    PreviewRequest,
    TemplateCreate,
    TemplateListQuery,
    TemplateRead,
    TemplateUpdate,
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
    "templates",
    __name__,
    description="Templates: the rules (dice, tables, names, grammars) to generate characters.",
)

CREATED = Created(Template, TemplateRead(), "/api/v1/templates/{id}")
CREATED_HEADERS = CREATED.headers_doc("template")


@blp.route("")
class Templates(MethodView):
    @blp.arguments(TemplateListQuery, location="query")
    @blp.response(200, TemplateRead(many=True), headers=PAGINATION_HEADERS)
    def get(self, query: dict[str, Any]) -> Any:
        """List the templates you can see: your own, public ones and the built-ins.

        `?q=` matches names (case-insensitive), `?tag=` one tag, `?owner=me` your own only;
        `?sort=name|created_at|updated_at` (prefix `-` for descending).
        """
        page = service.list_templates(viewer=current_caller(), query=query)
        return page.items, 200, page.headers()

    @blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER])
    @blp.arguments(TemplateCreate)
    @idempotent("templates.create", CREATED)
    @blp.response(201, TemplateRead, headers=CREATED_HEADERS)
    @documented_errors(400, 409)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a template (private unless `is_public`).

        The definition is checked by the engine; every problem comes back located under
        `errors.json.definition` (e.g. `fields.3.dice`). Honours `Idempotency-Key`.
        """
        return CREATED.answer(service.create_template(owner=current_user(), data=data))


@blp.route("/<uuid:template_id>")
class TemplateById(MethodView):
    @blp.doc(parameters=[IF_NONE_MATCH_PARAMETER])
    @blp.response(200, TemplateRead, headers=ETAG_HEADER)
    @documented_errors(304, 404)
    def get(self, template_id: uuid.UUID) -> Any:
        """A template you can see (404 for others' private templates).

        Built-in templates (owner null) are visible to everyone. `definition` is returned
        exactly as it was last sent; the `ETag` covers the template and its owner's public
        profile (`If-None-Match` gets 304).
        """
        template = service.get_readable(viewer=current_caller(), template_id=template_id)
        return not_modified_response(template) or (template, 200, {"ETag": etag_for(template)})

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.arguments(TemplateUpdate, example={"name": "Hero (revised)", "tags": ["fantasy"]})
    @blp.response(200, TemplateRead, headers=ETAG_HEADER)
    @documented_errors(403, 404, 412, 428)
    def patch(self, data: dict[str, Any], template_id: uuid.UUID) -> Any:
        """Change a template (owner, or admin; built-ins admins only). `If-Match` required.

        `version` goes up by one when — and only when — the definition changes.
        """
        template = service.get_writable(viewer=current_caller(), template_id=template_id)
        check_if_match(template)
        template = service.update_template(template=template, data=data)
        return template, 200, {"ETag": etag_for(template)}

    @blp.doc(parameters=[IF_MATCH_PARAMETER])
    @blp.response(204)
    @documented_errors(403, 404, 412, 428)
    def delete(self, template_id: uuid.UUID) -> None:
        """Delete a template (`If-Match`). Characters made from it keep their data.

        They become characters without a template: `template_id`, `seed`, `template_version`
        and `generator_version` become null, and their attributes are then validated as
        free-form. Built-in templates can be deleted by admins only. 204; 412 when `If-Match`
        is stale.
        """
        template = service.get_writable(viewer=current_caller(), template_id=template_id)
        check_if_match(template)
        service.delete_template(template=template)


@blp.route("/<uuid:template_id>/fork")
class Fork(MethodView):
    @blp.response(201, TemplateRead, headers=CREATED_HEADERS)
    @documented_errors(404)
    def post(self, template_id: uuid.UUID) -> Any:
        """Copy a template you can see into a private template of yours, at version 1.

        The copy has the template's name, description, tags and current definition, and no
        characters. 201 with its view, `Location` and `ETag`; 404 when the template is not
        visible to you (or was deleted meanwhile).
        """
        viewer = current_user()
        template = service.get_forkable(viewer=viewer, template_id=template_id)
        return CREATED.answer(service.fork_template(viewer=viewer, template=template))


@blp.route("/<uuid:template_id>/preview")
class Preview(MethodView):
    @blp.arguments(PreviewRequest, example={"seed": 42, "count": 3, "locks": {}, "rerolls": {}})
    @blp.response(200, GeneratedCharacter(many=True))
    @documented_errors(404)
    def post(self, data: dict[str, Any], template_id: uuid.UUID) -> Any:
        """Generate characters without storing them.

        Item 0 uses `seed` (picked by the server when absent); item i > 0 a seed derived from
        (seed, i), so a batch never depends on `count`. `locks` fix values (validated like an
        edit); `rerolls` pick the n-th alternative of a field.

        Bounds, each a 422: one character's attributes over 1 MiB as JSON (as
        `POST /characters/generate` would refuse it) at `errors.json._schema`; at
        `errors.json.count`, naming the largest count allowed, a batch whose attributes pass
        4 MiB together, or whose characters could cost more than 2,000,000 units of work in
        all (dice thrown, grammar steps, name parts, options weighed: see the template
        guide; a built-in template's character costs ~100).
        """
        template = service.get_readable(viewer=current_caller(), template_id=template_id)
        return service.preview(template=template, data=data)
