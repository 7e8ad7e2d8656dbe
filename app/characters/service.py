"""Characters: creation (free-form or checked against a template), generation, edits, lists."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Row, Select, Text, bindparam, func, select
from sqlalchemy.dialects import postgresql

from app.auth.policy import (
    Author,
    Viewer,
    can_read_character,
    can_read_template,
    can_write_character,
)
from app.character_templates import service as templates
from app.character_templates.models import Template
from app.characters import views
from app.characters.models import Character, search_pieces
from app.common.database import answered_if_deleted, connection
from app.common.fastjson import encoded_size
from app.common.idempotency import record_created
from app.common.pagination import (
    Order,
    Page,
    Search,
    contains,
    contains_pattern,
    fold_text,
    folded,
    paginate,
    sort_order,
)
from app.common.prepared import prepared
from app.common.types import utcnow
from app.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, field_errors
from app.extensions import db
from app.generation import (
    GENERATOR_VERSION,
    AttributesError,
    CompiledTemplate,
    Result,
    random_seed,
    validate_attributes,
)

FREE_FORM_MAX_BYTES = 64 * 1024
FREE_FORM_MAX_KEYS = 200


# --- helpers ---------------------------------------------------------------------------------


def _check_free_form(attributes: dict[str, Any]) -> dict[str, Any]:
    if len(attributes) > FREE_FORM_MAX_KEYS:
        raise ValidationFailed(
            errors=field_errors("json", "attributes", f"At most {FREE_FORM_MAX_KEYS} keys.")
        )
    size = encoded_size(attributes)
    if size > FREE_FORM_MAX_BYTES:
        raise ValidationFailed(
            errors=field_errors(
                "json",
                "attributes",
                f"At most {FREE_FORM_MAX_BYTES} bytes as JSON (the attributes would be {size}).",
            )
        )
    return attributes


def _merge_patch(stored: Any, patch: Any) -> Any:
    """RFC 7396: an object merges into an object member by member, recursively (null removes
    a member); any other value replaces what was there."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(stored) if isinstance(stored, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


def _lock_name(
    compiled: CompiledTemplate, values: dict[str, Any], name: str, member: str = "attributes"
) -> None:
    """``name`` acts as a lock on the template's name field (the engine's ``name``, which
    leaves the field out while its ``when`` is false): ``values`` (the body's ``attributes``
    or ``locks``) may repeat it, but a different value there (a typo, a wrong type) is an
    error, not silently replaced."""
    key = compiled.name_field
    if key is not None and key in values and values[key] != name:
        message = f"The name field is set by `name` ({name!r}): leave it out or give the same."
        raise ValidationFailed(errors={"json": {member: {key: [message]}}})


def _resolve(
    compiled: CompiledTemplate,
    supplied: dict[str, Any],
    seed: int,
    *,
    base: dict[str, Any] | None,
    rerolls: dict[str, int] | None,
    template_name: str,
    generator_version: str,
    name: str | None,
) -> Result:
    try:
        result = validate_attributes(
            compiled,
            supplied,
            seed,
            base=base,
            rerolls=rerolls,
            template_name=template_name,
            generator_version=generator_version,
            name=name,
        )
    except AttributesError as error:
        raise ValidationFailed(
            "Some attributes are not allowed by the template.",
            errors={"json": {"attributes": error.errors}},
        ) from None
    templates.checked_size(result.attributes, "attributes")
    return result


# What making a character needs of its template: who may use it, its version and name (the
# compiled definition comes from the per-worker cache, by version). Built once.
_TEMPLATE_IN_USE = prepared(
    select(
        Template.id, Template.owner_id, Template.is_public, Template.version, Template.name
    ).where(Template.id == bindparam("template_id")),
    "cf_template_in_use",
)


def _no_such_template() -> ValidationFailed:
    return ValidationFailed(
        errors=field_errors("json", "template_id", "No such template (or not visible to you).")
    )


def _usable_template(viewer: Viewer, template_id: uuid.UUID) -> tuple[Row[Any], CompiledTemplate]:
    """The template (as a row) and its current definition compiled; 422 if not usable."""
    template = connection().execute(_TEMPLATE_IN_USE, {"template_id": template_id}).first()
    compiled = None
    if template is not None and can_read_template(viewer, template):
        compiled = templates.compiled_version(template.id, template.version)
    if template is None or compiled is None:  # (compiled is None: deleted meanwhile)
        raise _no_such_template()
    return template, compiled


# --- reading ---------------------------------------------------------------------------------


def get_readable(*, viewer: Viewer, character_id: uuid.UUID) -> Character:
    character = db.session.get(Character, character_id)
    if character is None or not can_read_character(viewer, character):
        raise NotFound("No such character.")
    return character


def get_writable(*, viewer: Viewer, character_id: uuid.UUID) -> Character:
    character = get_readable(viewer=viewer, character_id=character_id)
    if not can_write_character(viewer, character):
        raise Forbidden("Only the owner may change this character.")
    return character


def read_view(*, viewer: Viewer, character_id: uuid.UUID) -> views.CharacterView:
    """What ``GET /characters/{id}`` shows (a read-side view: app.characters.views)."""
    row = connection().execute(views.BY_ID, {"character_id": character_id}).first()
    if row is None or not can_read_character(viewer, row):
        raise NotFound("No such character.")
    return views.from_row(row)


def list_characters(*, viewer: Viewer, query: dict[str, Any]) -> Page:
    """A page of views (app.characters.views)."""
    statement, params, search = list_statement(viewer=viewer, query=query)
    return paginate(
        statement,
        page=query["page"],
        page_size=query["page_size"],
        key=Character.id,
        rows=views.ROWS,
        params=params,
        search=search,
        prepare_as=_prepared_name(query, params),
    )


def _prepared_name(query: dict[str, Any], params: dict[str, Any]) -> str | None:
    """The name one's own list (no search, no filter) is sent prepared under, by sort order.

    Its one (generic) plan walks the owner's index for that order, whoever the owner and
    however many characters they have: ``tests/characters/test_query_plans.py`` checks each.
    The other lists are planned for their values: public and admin lists by how far the page
    is, a template filter by how common the template is, a search by its fragment.
    """
    if query["scope"] != "mine" or params.keys() != {"viewer_id"}:
        return None
    sort = query["sort"]
    return f"cf_mine_{sort.lstrip('-')}{'_desc' if sort.startswith('-') else ''}"


def list_statement(
    *, viewer: Viewer, query: dict[str, Any]
) -> tuple[Select[Any], dict[str, Any], Search | None]:
    """The query behind a list, prepared (see paginate), the values of its parameters, and its
    name search (``q``), which the query does not apply itself: paginate does."""
    scope = query["scope"]
    if scope == "all" and not viewer.is_admin:
        raise Forbidden("Only administrators may list every character.")
    params: dict[str, Any] = {}
    if scope == "mine":
        params["viewer_id"] = viewer.id
    if query.get("template_id"):
        params["template_id"] = query["template_id"]
    if query.get("q"):
        text = fold_text(query["q"])  # folded as the names are
        params["name_pattern"] = contains_pattern(text)
        # public names have an index of their short pieces (PostgreSQL), which finds a rare
        # text's candidates sooner than the trigram index (see _name_search)
        pieces = search_pieces(text) if scope == "public" else None
        if pieces:
            params["name_pieces"] = pieces
    statement, order = _list_statement(scope, "template_id" in params, query["sort"])
    # a search may walk the list in its order when an index serves both (see paginate): not
    # for scope=all (admins only: no index has its order) nor by template (the walk would
    # visit each row for its template)
    walk = scope != "all" and "template_id" not in params
    by_pieces = "name_pieces" in params
    search = _name_search(order, walk, by_pieces) if "name_pattern" in params else None
    return statement, params, search


@functools.lru_cache(maxsize=64)  # 3 scopes x 2 x 6 sort orders: 36 at most
def _list_statement(scope: str, by_template: bool, sort: str) -> tuple[Select[Any], Order]:
    """Each variant of the list, built once (each is served by an index; see the models), and
    its order."""
    statement = views.CHARACTERS
    if scope == "public":
        statement = statement.where(Character.is_public.is_(True))
    elif scope == "mine":
        statement = statement.where(Character.owner_id == bindparam("viewer_id"))
    if by_template:
        statement = statement.where(Character.template_id == bindparam("template_id"))
    columns = {
        "name": folded(Character.name),
        "created_at": Character.created_at,
        "updated_at": Character.updated_at,
    }
    order = sort_order(sort, columns, Character.id)
    return statement.order_by(*order.clauses()), order


@functools.lru_cache(maxsize=64)  # one per list variant
def _name_search(order: Order, walk: bool, by_pieces: bool) -> Search:
    """``?q=``: the name contains the text (the value of ``name_pattern``).

    With ``by_pieces``, for public names on PostgreSQL, its matches are also the names whose
    pieces include the text's (``name_pieces``, see search_pieces): that is what the index of
    migration c6d1e7a4f203 finds, much sooner than the trigram index for a rare text (at a
    million characters: 0.03 against ~250 ms for a rare two-letter text, which has no trigram;
    ~0.2-0.3 against 1.15 ms for ``halkabar``). Only where the matches are looked for in an
    index (see Search.candidates)."""
    candidates = None
    if by_pieces:
        name_pieces = func.cf_name_pieces(func.lower(Character.name))
        text_pieces = bindparam("name_pieces", type_=postgresql.ARRAY(Text))
        candidates = name_pieces.op("@>", is_comparison=True)(text_pieces)
    condition = contains(folded(Character.name), bindparam("name_pattern"))
    return Search(condition, order, walk, candidates)


# --- writing ---------------------------------------------------------------------------------


def create_character(*, owner: Author, data: dict[str, Any]) -> views.CharacterView:
    attributes = data.get("attributes") or {}
    values: dict[str, Any] = {
        "name": data["name"],
        "backstory": data.get("backstory", ""),
        "is_public": data.get("is_public", False),
    }
    if data.get("template_id") is None:
        values["attributes"] = _check_free_form(attributes)
    else:
        template, compiled = _usable_template(owner, data["template_id"])
        seed = random_seed()
        _lock_name(compiled, attributes, data["name"])
        result = _resolve(
            compiled,
            attributes,
            seed,
            base=None,
            rerolls=None,
            template_name=template.name,
            generator_version=GENERATOR_VERSION,
            name=data["name"],
        )
        values.update(
            template_id=template.id,
            template_version=template.version,
            seed=seed,
            generator_version=GENERATOR_VERSION,
            rerolls={},
            attributes=result.attributes,
        )
    return _insert(owner, values)


def generate_character(*, owner: Author, data: dict[str, Any]) -> views.CharacterView:
    """Store exactly what ``POST /templates/{id}/preview`` shows for the same inputs."""
    template, compiled = _usable_template(owner, data["template_id"])
    seed = data["seed"] if data.get("seed") is not None else random_seed()
    locks = dict(data["locks"])
    if data.get("name") is not None:
        _lock_name(compiled, locks, data["name"], member="locks")
    result = templates.run_generation(
        compiled,
        seed=seed,
        locks=locks,
        rerolls=data["rerolls"],
        template_name=template.name,
        name=data.get("name"),
    )
    templates.checked_size(result.attributes)
    values = {
        "name": data.get("name") or result.name,
        "template_id": template.id,
        "template_version": template.version,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "rerolls": dict(data["rerolls"]),
        "attributes": result.attributes,
        "backstory": "",
        "is_public": data.get("is_public", False),
    }
    return _insert(owner, values)


# What a new character holds unless it is given: a free-form one has no template or seed, and
# no character starts with a portrait. (A free-form one's rerolls are left out of the INSERT:
# None would be stored as JSON null, where the column means SQL NULL.)
_NEW_CHARACTER: dict[str, Any] = {
    "template_id": None,
    "template_version": None,
    "seed": None,
    "generator_version": None,
    "portrait_digest": None,
    "portrait_content_type": None,
    "portrait_width": None,
    "portrait_height": None,
}
_INSERT_CHARACTER = Character.__table__.insert()


def _insert(owner: Author, values: dict[str, Any]) -> views.CharacterView:
    """Store a new character of ``owner`` and answer with its view.

    Every value of the new row is known here, so it is one Core ``INSERT`` rather than the ORM's
    unit of work, which spent more than twice the CPU on the same row (measured in-process on
    PostgreSQL, insert and commit: ~190 against 430-490 us). The row is exactly what the model
    would have written: its defaults are set here, ``row_version`` starting at 1 as the
    mapper's version counter does.
    """
    now = utcnow()
    row = {
        **_NEW_CHARACTER,
        **values,
        "id": uuid.uuid4(),
        "owner_id": owner.id,
        "created_at": now,
        "updated_at": now,
        "row_version": 1,
    }
    # the template (or the account) may have been deleted since it was read
    with answered_if_deleted(
        (Template, row["template_id"], _no_such_template()),
        otherwise=Unauthorized("This account no longer exists."),
    ):
        connection().execute(_INSERT_CHARACTER, row)
        record_created(row["id"])
        db.session.commit()
    return views.from_values(row, owner)


def update_character(*, character: Character, data: dict[str, Any]) -> Character:
    compiled = _compiled_of(character)
    if compiled is not None and ("attributes" in data or "name" in data):
        supplied = dict(data.get("attributes") or {})
        if "name" in data:
            _lock_name(compiled, supplied, data["name"])
        result = _resolve(
            compiled,
            supplied,
            character.seed if character.seed is not None else 0,
            base=character.attributes,
            rerolls=character.rerolls or {},
            # only the attributes are kept: the fallback name of the result is never used
            template_name=character.name,
            generator_version=character.generator_version or GENERATOR_VERSION,
            name=data.get("name"),
        )
        character.attributes = result.attributes
        named = result.attributes.get(compiled.name_field) if compiled.name_field else None
        if isinstance(named, str):
            character.name = named
    elif "attributes" in data:
        patch = data["attributes"]
        character.attributes = _check_free_form(_merge_patch(character.attributes or {}, patch))
    for field in ("name", "backstory", "is_public"):
        if field in data:
            setattr(character, field, data[field])
    db.session.commit()
    return character


def _compiled_of(character: Character) -> CompiledTemplate | None:
    """The definition the character was made from, or None when it is free-form (or orphaned)."""
    if character.template_id is None or character.template_version is None:
        return None
    return templates.compiled_version(character.template_id, character.template_version)


def delete_character(*, character: Character) -> None:
    """Delete the character; its portrait goes with it."""
    from app.portraits.service import forget

    files = [(character.id, character.portrait_digest)] if character.portrait_digest else []
    db.session.delete(character)
    db.session.commit()
    forget(files)
