"""Page-number pagination shared by every list endpoint.

Query: ``page`` (≥ 1, default 1) and ``page_size`` (1..100, default 20), plus ``sort`` from an
allowlist (``name`` or ``-name``). Response: a JSON array, ``X-Pagination`` in flask-smorest's
format and an RFC 8288 ``Link`` header (``first``/``last`` always, ``prev``/``next`` where they
exist, every other query parameter kept).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import request
from marshmallow import fields, validate
from sqlalchemy import BindParameter, Row, Select, bindparam, func, select

from app.common.schemas import BaseSchema
from app.errors import ValidationFailed
from app.extensions import db

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Counted exactly up to this many matching rows; beyond, an estimate (PostgreSQL).
EXACT_COUNT_LIMIT = 1000
# How deep (in items) a list with an estimated total is served.
MAX_OFFSET = 10_000
# From this offset on, pages are fetched with a deferred join (see paginate).
DEFERRED_JOIN_OFFSET = 500

PAGINATION_HEADERS = {
    "X-Pagination": {
        "description": 'Pagination metadata as JSON: `{"total", "total_pages", "first_page", '
        '"last_page", "page", "previous_page", "next_page"}` (`previous_page`/`next_page` '
        'absent on the first/last page; `{"total": 0, "total_pages": 0}` when empty). Totals '
        'above 1,000 may be estimates, flagged `"total_exact": false`; such lists are served '
        "10,000 items deep (`last_page` is the last one served).",
        "schema": {"type": "string"},
        "example": '{"total": 45, "total_pages": 3, "first_page": 1, "last_page": 3, '
        '"page": 2, "previous_page": 1, "next_page": 3}',
    },
    "Link": {
        "description": "RFC 8288 links to the `first`, `last`, `prev` and `next` pages "
        "(absent when there are no items).",
        "schema": {"type": "string"},
    },
}


class PageQuery(BaseSchema):
    """Base of every list's query schema; unknown parameters are 422."""

    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1),
        metadata={"description": "Page number, from 1."},
    )
    page_size = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Items per page, 1..{MAX_PAGE_SIZE}."},
    )


def sort_field(allowed: Sequence[str], default: str) -> fields.String:
    """``?sort=field`` (ascending) or ``?sort=-field`` (descending), from ``allowed``."""
    choices = [*allowed, *(f"-{name}" for name in allowed)]
    return fields.String(
        load_default=default,
        validate=validate.OneOf(choices),
        metadata={"description": f"Sort order: one of {', '.join(choices)}."},
    )


def order_by_clause(sort: str, columns: dict[str, Any], tiebreaker: Any) -> list[Any]:
    """``-created_at`` → ``created_at DESC, id DESC``: a stable order in one direction, so an
    index on (…, column, id) serves it in either direction."""
    column = columns[sort.lstrip("-")]
    if sort.startswith("-"):
        return [column.desc(), tiebreaker.desc()]
    return [column.asc(), tiebreaker.asc()]


def contains(expression: Any, text: str | BindParameter[Any]) -> Any:
    """``expression LIKE '%text%'``, case-insensitive on a lower-cased ``expression``, with the
    LIKE wildcards in ``text`` taken literally. ``text`` may be a bind parameter whose value is
    :func:`contains_pattern` of the text."""
    pattern = text if isinstance(text, BindParameter) else contains_pattern(text)
    return expression.like(pattern, escape="\\")


def contains_pattern(text: str) -> str:
    """The LIKE pattern of :func:`contains`: ``%text%``, lower-cased, wildcards escaped."""
    needle = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{needle}%"


@dataclass(frozen=True)
class Rows:
    """How a list of plain rows (rather than ORM entities) is paged.

    The statement given to :func:`paginate` filters and orders; ``widen`` adds what only the
    rows of the page need (say, a join for their owners' columns), so the count and the search
    for a deep page's keys never pay for it; ``item`` turns each row into an item.
    """

    item: Callable[[Row[Any]], Any]
    widen: Callable[[Select[Any]], Select[Any]]


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    page_size: int
    total_exact: bool = True

    @property
    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"total": self.total}
        if self.total == 0:
            meta["total_pages"] = 0
            return meta
        pages = (self.total - 1) // self.page_size + 1
        # only MAX_OFFSET items deep are served when the total is large (see paginate)
        last = pages if self.total_exact else min(pages, deepest_page(self.page_size))
        meta.update(total_pages=pages, first_page=1, last_page=last)
        if self.page <= last:
            meta["page"] = self.page
            if self.page > 1:
                meta["previous_page"] = self.page - 1
            if self.page < last:
                meta["next_page"] = self.page + 1
        if not self.total_exact:
            meta["total_exact"] = False
        return meta

    def headers(self) -> dict[str, str]:
        meta = self.metadata
        headers = {"X-Pagination": json.dumps(meta)}
        if self.total == 0:
            return headers
        links = {"first": meta["first_page"], "last": meta["last_page"]}
        if "previous_page" in meta:
            links["prev"] = meta["previous_page"]
        if "next_page" in meta:
            links["next"] = meta["next_page"]
        headers["Link"] = ", ".join(
            f'<{_page_url(number)}>; rel="{rel}"' for rel, number in links.items()
        )
        return headers


def deepest_page(page_size: int) -> int:
    """The last page served of a list whose total is an estimate: its offset < MAX_OFFSET."""
    return -(-MAX_OFFSET // page_size)


def _page_url(number: int) -> str:
    args = request.args.copy()
    args["page"] = str(number)
    return f"{request.base_url}?{urlencode(list(args.items(multi=True)))}"


def paginate(
    statement: Select[Any],
    *,
    page: int,
    page_size: int,
    key: Any | None = None,
    rows: Rows | None = None,
    params: Mapping[str, Any] | None = None,
) -> Page:
    """One page of ``statement``, and its total.

    ``statement`` selects one ORM entity, the page's items; or, with ``rows``, plain columns
    (see :class:`Rows`).

    ``params`` marks a *prepared* statement: one built once (and kept) with ``bindparam``s,
    whose values ``params`` gives. The statements paginate derives from it, the page with its
    count and the count alone, are then built once too (:func:`_prepared`). Building them and
    their cache keys anew was a measured 137 µs per list, about a tenth of one.

    The total is counted exactly up to EXACT_COUNT_LIMIT matching rows (the count stops
    there, so it costs the same on a million rows as on ten thousand). Beyond that, on
    PostgreSQL, it is the planner's estimate and ``X-Pagination`` says ``"total_exact":
    false``; such large lists are served MAX_OFFSET items deep (deeper pages are 422: narrow the
    list with filters, or reverse the sort). Shallow pages come with their count in the same
    query; deep ones (from DEFERRED_JOIN_OFFSET) are counted first, so a page past the last is
    answered without asking for it.
    """
    widen = rows.widen if rows else None
    capped, counted = (_prepared if params is not None else _derived)(statement, widen)
    values = params or {}
    offset = (page - 1) * page_size
    items: list[Any] | None = None
    if offset < DEFERRED_JOIN_OFFSET:
        # One round trip: the page, with the capped count beside each row (an uncorrelated
        # subquery, evaluated once). Only an empty page past the first needs the count alone.
        page_values = {**values, _LIMIT: page_size, _OFFSET: offset}
        if rows is None:
            found = db.session.execute(counted, page_values).all()
            items = [row[0] for row in found]
        else:  # plain columns: no ORM entities to build, so past the ORM session's execute
            found = db.session.connection().execute(counted, page_values).all()
            items = [rows.item(row) for row in found]
        total = found[0][-1] if found else 0
        if not found and page > 1:
            total = db.session.scalar(capped, values) or 0
    else:
        total = db.session.scalar(capped, values) or 0
    exact = True
    if total > EXACT_COUNT_LIMIT:
        unordered = statement.order_by(None)
        if db.engine.dialect.name == "postgresql":
            total, exact = max(_estimate_rows(unordered, values), EXACT_COUNT_LIMIT + 1), False
        else:  # SQLite has no estimates (and is not meant for large data): count it all
            everything = select(func.count()).select_from(unordered.subquery())
            total = db.session.scalar(everything, values) or 0
    if not exact and offset >= MAX_OFFSET:
        raise ValidationFailed(
            f"Lists this large are served {MAX_OFFSET} items deep; narrow the list (q, filters) "
            "or reverse the sort to reach the rest.",
            errors={"query": {"page": [f"At most page {deepest_page(page_size)} here."]}},
        )
    if items is None:
        if offset >= total:  # a page past the last: no need to ask for it
            items = []
        elif key is not None:  # deep: find the page's keys in the index first
            keys = statement.with_only_columns(key).limit(page_size).offset(offset)
            narrow = lambda s: s.where(key.in_(keys.scalar_subquery()))  # noqa: E731
            items = _fetch(statement, rows, narrow, values)
        else:
            items = _fetch(statement, rows, lambda s: s.limit(page_size).offset(offset), values)
    return Page(items=items, total=total, page=page, page_size=page_size, total_exact=exact)


def _fetch(
    statement: Select[Any],
    rows: Rows | None,
    narrow: Callable[[Select[Any]], Select[Any]],
    values: Mapping[str, Any],
) -> list[Any]:
    if rows is None:
        return list(db.session.scalars(narrow(statement), values))
    found = db.session.connection().execute(narrow(rows.widen(statement)), values)
    return [rows.item(row) for row in found]


# The bind parameters of a shallow page's LIMIT and OFFSET (see _derived).
_LIMIT, _OFFSET = "cf_page_limit", "cf_page_offset"


def _derived(
    statement: Select[Any], widen: Callable[[Select[Any]], Select[Any]] | None
) -> tuple[Select[Any], Select[Any]]:
    """The capped count of ``statement``, and a shallow page with that count, whose LIMIT and
    OFFSET are bind parameters: neither depends on which page is asked for."""
    return capped_count(statement), page_with_count(
        statement, bindparam(_LIMIT), bindparam(_OFFSET), widen
    )


# For prepared statements: a handful per list endpoint (each kept by its module), so bounded.
_prepared = functools.lru_cache(maxsize=256)(_derived)


def capped_count(statement: Select[Any]) -> Select[Any]:
    """How many rows ``statement`` has, counting no further than EXACT_COUNT_LIMIT + 1 (it keeps
    the ORDER BY, so the count walks the same index as the page itself)."""
    return select(func.count()).select_from(statement.limit(EXACT_COUNT_LIMIT + 1).subquery())


def page_with_count(
    statement: Select[Any],
    limit: int | BindParameter[Any],
    offset: int | BindParameter[Any],
    widen: Callable[[Select[Any]], Select[Any]] | None = None,
) -> Select[Any]:
    """One page of ``statement`` (``widen``-ed), each row followed by the capped count (of the
    statement as it is)."""
    page = widen(statement) if widen else statement
    return page.add_columns(capped_count(statement).scalar_subquery()).limit(limit).offset(offset)


def _estimate_rows(statement: Select[Any], values: Mapping[str, Any]) -> int:
    """PostgreSQL's estimate of how many rows ``statement`` returns (EXPLAIN, not a count)."""
    compiled = statement.compile(dialect=db.engine.dialect)
    params = {
        key: str(value) if isinstance(value, uuid.UUID) else value
        for key, value in compiled.construct_params(dict(values)).items()
    }
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {compiled.string}", params)
        plan = cursor.fetchone()[0]
    finally:
        cursor.close()
    return int(plan[0]["Plan"]["Plan Rows"])
