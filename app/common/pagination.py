"""Page-number pagination shared by every list endpoint.

Query: ``page`` (≥ 1, default 1) and ``page_size`` (1..100, default 20), plus ``sort`` from an
allowlist (``name`` or ``-name``). Response: a JSON array, ``X-Pagination`` in flask-smorest's
format and an RFC 8288 ``Link`` header (``first``/``last`` always, ``prev``/``next`` where they
exist, every other query parameter kept).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import request
from marshmallow import fields, validate
from sqlalchemy import Select, func, select

from app.common.schemas import BaseSchema
from app.extensions import db

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

PAGINATION_HEADERS = {
    "X-Pagination": {
        "description": 'Pagination metadata as JSON: `{"total", "total_pages", "first_page", '
        '"last_page", "page", "previous_page", "next_page"}` (`previous_page`/`next_page` '
        'absent on the first/last page; `{"total": 0, "total_pages": 0}` when empty).',
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
    """``-created_at`` → ``created_at DESC``, with a stable tiebreaker."""
    descending = sort.startswith("-")
    column = columns[sort.lstrip("-")]
    return [column.desc() if descending else column.asc(), tiebreaker]


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    page_size: int

    @property
    def metadata(self) -> dict[str, int]:
        meta: dict[str, int] = {"total": self.total}
        if self.total == 0:
            meta["total_pages"] = 0
            return meta
        last = (self.total - 1) // self.page_size + 1
        meta.update(total_pages=last, first_page=1, last_page=last)
        if self.page <= last:
            meta["page"] = self.page
            if self.page > 1:
                meta["previous_page"] = self.page - 1
            if self.page < last:
                meta["next_page"] = self.page + 1
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


def _page_url(number: int) -> str:
    args = request.args.copy()
    args["page"] = str(number)
    return f"{request.base_url}?{urlencode(list(args.items(multi=True)))}"


def paginate(statement: Select[Any], *, page: int, page_size: int) -> Page:
    """Run ``statement`` for one page, plus one COUNT for the total.

    A page past the last is answered without asking the database for it (any page number is
    valid: a huge one must not overflow the database's OFFSET).
    """
    total = (
        db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
        or 0
    )
    offset = (page - 1) * page_size
    if offset >= total:
        return Page(items=[], total=total, page=page, page_size=page_size)
    items = db.session.scalars(statement.limit(page_size).offset(offset)).all()
    return Page(items=list(items), total=total, page=page, page_size=page_size)
