"""Templates: visibility, writes, versions, forks, previews, and the compiled-definition cache."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import selectinload, undefer
from sqlalchemy.orm.attributes import flag_modified

from app.auth.policy import Viewer, can_read_template, can_write_template
from app.character_templates.models import Template, TemplateTag, TemplateVersion
from app.common.database import answered_if_deleted
from app.common.fastjson import dumps, encoded_size
from app.common.pagination import (
    Page,
    contains,
    fold_text,
    folded,
    order_by_clause,
    paginate,
)
from app.common.types import utcnow
from app.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, field_errors
from app.extensions import db
from app.generation import (
    AttributesError,
    CompiledTemplate,
    Result,
    batch_seed,
    compile_definition,
    generate,
    random_seed,
)
from app.users.models import User

CACHE_SIZE = 512
# A definition is at most 64 KiB, but what it makes can be far larger: 200 `pick` fields of 1,000
# options each, from one shared table, make a character of ~10 MB. These bound what one
# generated character, and one preview, may come to (their attributes as compact UTF-8 JSON).
CHARACTER_MAX_BYTES = 1024 * 1024
PREVIEW_MAX_BYTES = 4 * 1024 * 1024
# ... and what a preview may cost, in the engine's units (CompiledTemplate.cost: a die thrown, a
# grammar step, ...): one character of the costliest definition within the limits costs ~1.8
# million (~0.1 s), the built-in 30-field template 111.
PREVIEW_MAX_COST = 2_000_000


class _CompiledCache:
    """Compiled definitions per (template id, version), per worker, least recently used out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[uuid.UUID, int], CompiledTemplate] = OrderedDict()
        self._lock = threading.Lock()
        self.compilations = 0

    def get(
        self, template_id: uuid.UUID, version: int, load: Callable[[], Any]
    ) -> CompiledTemplate | None:
        """The compiled definition; ``load`` fetches the definition on a miss only (a version's
        definition never changes), and may return None when there is none. It is compiled as
        a stored definition: rules added since it was saved do not refuse it."""
        key = (template_id, version)
        with self._lock:
            compiled = self._items.get(key)
            if compiled is not None:
                self._items.move_to_end(key)
                return compiled
        definition = load()
        if definition is None:
            return None
        compiled = compile_definition(definition, stored=True)
        with self._lock:
            self.compilations += 1
            self._items[key] = compiled
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return compiled


compiled_cache = _CompiledCache(CACHE_SIZE)


def compiled_for(template: Template) -> CompiledTemplate:
    """The template's current definition, compiled. On a miss it is read from
    ``template_versions`` by the version this request saw, never from the template's own
    (deferred) column, which a concurrent edit may already have moved on."""
    compiled = compiled_version(template.id, template.version)
    assert compiled is not None  # every version of a template is kept
    return compiled


def compiled_version(template_id: uuid.UUID, version: int) -> CompiledTemplate | None:
    """The compiled definition of an older (or current) version, or None if it is gone."""
    return compiled_cache.get(
        template_id,
        version,
        lambda: db.session.scalar(
            select(TemplateVersion.definition).where(
                TemplateVersion.template_id == template_id, TemplateVersion.version == version
            )
        ),
    )


# --- reading ---------------------------------------------------------------------------------


def visible_to(viewer: Viewer) -> Any:
    return or_(
        Template.owner_id.is_(None), Template.is_public.is_(True), Template.owner_id == viewer.id
    )


def get_readable(*, viewer: Viewer, template_id: uuid.UUID) -> Template:
    template = db.session.get(Template, template_id)
    if template is None or not can_read_template(viewer, template):
        raise NotFound("No such template.")
    return template


def get_writable(*, viewer: Viewer, template_id: uuid.UUID) -> Template:
    template = get_readable(viewer=viewer, template_id=template_id)
    if not can_write_template(viewer, template):
        what = "built-in templates" if template.is_builtin else "this template"
        raise Forbidden(
            f"Only {'admins' if template.is_builtin else 'its owner'} may change {what}."
        )
    return template


def list_templates(*, viewer: Viewer, query: dict[str, Any]) -> Page:
    statement = (
        select(Template)
        .where(visible_to(viewer))
        .options(
            selectinload(Template.owner),
            selectinload(Template.tag_rows),
            undefer(Template.definition),
        )
    )
    if query.get("owner") == "me":
        statement = statement.where(Template.owner_id == viewer.id)
    if query.get("tag"):
        statement = statement.where(
            Template.id.in_(select(TemplateTag.template_id).where(TemplateTag.tag == query["tag"]))
        )
    if query.get("q"):
        statement = statement.where(contains(folded(Template.name), fold_text(query["q"])))
    columns = {
        "name": folded(Template.name),
        "created_at": Template.created_at,
        "updated_at": Template.updated_at,
    }
    statement = statement.order_by(*order_by_clause(query["sort"], columns, Template.id))
    return paginate(statement, page=query["page"], page_size=query["page_size"])


# --- writing ---------------------------------------------------------------------------------


def create_template(
    *, owner: User | None, data: dict[str, Any], slug: str | None = None
) -> Template:
    template = Template(
        owner=owner,
        owner_id=owner.id if owner else None,
        slug=slug,
        name=data["name"],
        description=data.get("description", ""),
        is_public=data.get("is_public", False),
        version=1,
        definition=data["definition"],
        forked_from=data.get("forked_from"),
    )
    template.tags = data.get("tags", [])
    # the forked template (or the account) may have been deleted meanwhile
    with answered_if_deleted(
        (Template, data.get("forked_from"), NotFound("No such template.")),
        otherwise=Unauthorized("This account no longer exists."),
    ):
        db.session.add(template)
        db.session.flush()
        db.session.add(
            TemplateVersion(template_id=template.id, version=1, definition=data["definition"])
        )
        db.session.commit()
    return template


def update_template(*, template: Template, data: dict[str, Any]) -> Template:
    template_id = template.id
    for field in ("name", "description", "is_public"):
        if field in data:
            setattr(template, field, data[field])
    if "tags" in data and data["tags"] != template.tags:
        template.tags = data["tags"]
        # tags live in their own table: touch the row so its version (and ETag) moves too
        template.updated_at = utcnow()
    if "definition" in data and data["definition"] != template.definition:
        template.version += 1
        template.definition = data["definition"]
        db.session.add(
            TemplateVersion(
                template_id=template.id, version=template.version, definition=data["definition"]
            )
        )
    elif "definition" in data and dumps(data["definition"]) != dumps(template.definition):
        # the same definition written differently (members in another order): no new version,
        # but it is given back as last sent, so it is stored so (equal dicts would not be)
        template.definition = data["definition"]
        flag_modified(template, "definition")
    # deleted meanwhile: its row gone for the UPDATE, or for the new version's foreign key; a
    # GET would say 404, and so does this
    gone = NotFound("No such template (it was deleted meanwhile).")
    with answered_if_deleted((Template, template_id, gone)):
        db.session.commit()
    return template


def delete_template(*, template: Template) -> None:
    """Characters made from it keep their data and become characters without a template
    (:func:`release_characters`)."""
    release_characters(select(Template.id).where(Template.id == template.id))
    db.session.delete(template)
    db.session.commit()


def release_characters(templates: Select[tuple[uuid.UUID]]) -> None:
    """Before the ``templates`` (a select of their ids) are deleted, in the same transaction:
    the characters made from them become characters without a template. The foreign key sets
    their ``template_id`` to null; this clears what only had a meaning with the template — the
    ``seed``, ``template_version``, ``generator_version`` and ``rerolls`` it was made with — as
    API.md has them for any character without a template. Their attributes are kept, and are
    validated free-form from then on.

    The templates' rows are locked first (``FOR UPDATE``, PostgreSQL): a character being made
    from one of them is waited for, and none can be made until the deletion commits (its
    foreign key check then fails: 422), so no character is left holding a seed without its
    template.
    """
    from app.characters.models import Character

    ids = db.session.scalars(templates.with_for_update()).all()
    if not ids:
        return
    db.session.execute(
        update(Character)
        .where(Character.template_id.in_(ids))
        .values(seed=None, template_version=None, generator_version=None, rerolls=None),
        execution_options={"synchronize_session": False},
    )


def get_forkable(*, viewer: Viewer, template_id: uuid.UUID) -> Template:
    """A readable template with everything a fork copies loaded at once: read later, a
    deferred column of a template deleted meanwhile could no longer be loaded."""
    template = db.session.get(
        Template,
        template_id,
        options=[undefer(Template.definition), selectinload(Template.tag_rows)],
    )
    if template is None or not can_read_template(viewer, template):
        raise NotFound("No such template.")
    return template


def fork_template(*, viewer: User, template: Template) -> Template:
    return create_template(
        owner=viewer,
        data={
            "name": template.name,
            "description": template.description,
            "tags": template.tags,
            "is_public": False,
            "definition": template.definition,
            "forked_from": template.id,
        },
    )


# --- generation ------------------------------------------------------------------------------


def run_generation(
    compiled: CompiledTemplate,
    *,
    seed: int,
    locks: dict[str, Any],
    rerolls: dict[str, int],
    template_name: str,
    name: str | None = None,
) -> Result:
    """Generate, turning the engine's complaints into a 422 on ``locks`` or ``rerolls``
    (``name``: the character's given name, see ``generation.validate_attributes``)."""
    reroll_errors = {
        key: ["Unknown field."] if key not in compiled.keys else ["A derived field is computed."]
        for key in rerolls
        if key not in compiled.keys or compiled.field(key).type == "derived"
    }
    if reroll_errors:
        raise ValidationFailed(errors={"json": {"rerolls": reroll_errors}})
    try:
        return generate(
            compiled, seed, locks=locks, rerolls=rerolls, template_name=template_name, name=name
        )
    except AttributesError as error:
        raise ValidationFailed(
            "Some locked values are not allowed by the template.",
            errors={"json": {"locks": error.errors}},
        ) from None


def checked_size(attributes: dict[str, Any], member: str = "_schema") -> int:
    """The size of a template-made character's attributes as JSON; 422 on ``member`` when it is
    over ``CHARACTER_MAX_BYTES`` (nothing is stored, nothing is shown)."""
    size = encoded_size(attributes)
    if size > CHARACTER_MAX_BYTES:
        raise ValidationFailed(
            "The character is too large.",
            errors=field_errors(
                "json",
                member,
                f"This character's attributes come to {size} bytes as JSON (at most "
                f"{CHARACTER_MAX_BYTES}): the template picks too many or too long values.",
            ),
        )
    return size


def preview(*, template: Template, data: dict[str, Any]) -> list[dict[str, Any]]:
    """``count`` characters, item i from ``batch_seed(seed, i)``.

    422 at ``count`` when ``count`` characters could cost more than ``PREVIEW_MAX_COST`` (known
    before any is made), or once their attributes together pass ``PREVIEW_MAX_BYTES``; either
    names the count that fits, which (items do not depend on ``count``) is then answered.
    """
    compiled = compiled_for(template)
    affordable = max(1, PREVIEW_MAX_COST // max(1, compiled.cost))
    if data["count"] > affordable:
        raise ValidationFailed(
            "The preview is too costly.",
            errors=field_errors(
                "json",
                "count",
                f"Each character of this template can take up to {compiled.cost} steps to make "
                f"(dice thrown, grammar steps, name parts, options weighed), and a preview may "
                f"take {PREVIEW_MAX_COST}: ask for at most {affordable}.",
            ),
        )
    seed = data["seed"] if data.get("seed") is not None else random_seed()
    items = []
    total = 0
    for index in range(data["count"]):
        item_seed = batch_seed(seed, index)
        result = run_generation(
            compiled,
            seed=item_seed,
            locks=data["locks"],
            rerolls=data["rerolls"],
            template_name=template.name,
        )
        total += checked_size(result.attributes)
        if total > PREVIEW_MAX_BYTES:
            raise ValidationFailed(
                "The preview is too large.",
                errors=field_errors(
                    "json",
                    "count",
                    f"These characters' attributes pass {PREVIEW_MAX_BYTES} bytes as JSON at "
                    f"item {index}: ask for at most {index} with this seed.",
                ),
            )
        items.append({"name": result.name, "attributes": result.attributes, "seed": item_seed})
    return items
