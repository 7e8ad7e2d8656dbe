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
from sqlalchemy import BindParameter, Row, Select, String, bindparam, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.common.database import connection
from app.common.prepared import prepared
from app.common.schemas import BaseSchema, QueryInteger
from app.errors import ValidationFailed
from app.extensions import db

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Counted exactly up to this many matching rows; beyond, an estimate (PostgreSQL).
EXACT_COUNT_LIMIT = 1000
# A search (see paginate) that the planner expects to match more rows than this is not counted.
# Chosen from the planner's estimates at a million names: rare fragments are put at 33 or 330
# rows (no or one hit in the statistics), fragments in 0.25% of names at 500-1,900.
UNCOUNTED_SEARCH_ESTIMATE = 500
# Such a search walks the list's order looking at no more than this many entries per item it
# needs (so at least one in a thousand must match), in case the estimate was wrong.
SEARCH_WALK_FACTOR = 1000
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
        "10,000 items deep (`last_page` is the last one served). A search (`q`) expected to "
        "match more than 500 items is not counted: its total is an estimate, flagged the same "
        "way, until its last page, whose total is exact. An estimate never hides an item: "
        "`next_page` is given while more follow, so following it reaches every item; a page "
        "past the end of an estimated list carries the exact total.",
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

    page = QueryInteger(
        load_default=1,
        validate=validate.Range(min=1),
        metadata={"description": "Page number, from 1."},
    )
    page_size = QueryInteger(
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


@dataclass(frozen=True)
class Order:
    """A list's order: its sort columns, the last one unique (a tiebreaker), all in one
    direction, so an index on (…, columns) serves it either way."""

    columns: tuple[Any, ...]
    descending: bool

    def clauses(self, columns: Sequence[Any] | None = None) -> list[Any]:
        """The ORDER BY, of ``columns`` in place of the order's own (say, a subquery's)."""
        return [
            column.desc() if self.descending else column.asc()
            for column in (self.columns if columns is None else columns)
        ]


def sort_order(sort: str, columns: dict[str, Any], tiebreaker: Any) -> Order:
    """``-created_at`` → ``created_at DESC, id DESC``: a stable order in one direction."""
    return Order((columns[sort.lstrip("-")], tiebreaker), descending=sort.startswith("-"))


def order_by_clause(sort: str, columns: dict[str, Any], tiebreaker: Any) -> list[Any]:
    """The ORDER BY of :func:`sort_order`."""
    return sort_order(sort, columns, tiebreaker).clauses()


@dataclass(frozen=True)
class Search:
    """A substring search (``?q=``) over a list, kept apart from the list's statement so that
    paginate can choose how to apply it: ``condition`` (see :func:`contains`), the list's
    ``order`` (the statement's ORDER BY), whether the list may be walked, and what else reaches
    its matches."""

    condition: Any
    order: Order
    # whether an index serves the order (and the list's other filters), so that walking the
    # list in its order, checking each entry, reads no more of it than it must
    walk: bool = True
    # a condition that every match also meets and an index finds faster than ``condition``'s
    # own (PostgreSQL), added where the matches are looked for in such an index: a search
    # expected to match few rows (see _Derived.searched). ``condition`` still decides.
    candidates: Any | None = None


class folded(FunctionElement[str]):  # used like func.lower
    """``lower(expression)``: how ``?q=`` and ``sort=name`` fold names; the searched text is
    folded alike by :func:`fold_text`.

    On PostgreSQL it is ``lower()`` (the indexes are on it), which folds every letter when the
    database's ``LC_CTYPE`` is a UTF-8 locale (docs/operations.md). SQLite's ``lower()`` folds
    ASCII letters only; there it is ``cf_lower()`` (:func:`fold_text`, registered on each
    connection by :func:`register_sqlite_functions`).
    """

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _folded(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    return f"cf_lower({compiler.process(element.clauses, **kw)})"


def fold_text(value: Any) -> Any:
    """Each character's simple lower-case mapping: what PostgreSQL's ``lower()`` applies in a
    UTF-8 locale (``towlower``), so that a searched text and the names it is compared with are
    folded alike. ``str.lower`` differs in two ways: it lowers a capital sigma by its place in
    the word (final or not), and the dotted capital I to two characters (``i`` and a combining
    dot), where the simple mapping is ``i``, the first of them."""
    return "".join([char.lower()[:1] for char in value]) if isinstance(value, str) else value


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """What :class:`folded` calls on SQLite (deterministic: same text, same result)."""
    dbapi_connection.create_function("cf_lower", 1, fold_text, deterministic=True)


def contains(expression: Any, text: str | BindParameter[Any]) -> Any:
    """``expression LIKE '%text%'``, with the LIKE wildcards in ``text`` taken literally: a
    case-insensitive match when ``expression`` and ``text`` are folded alike (``folded`` and
    :func:`fold_text`). ``text`` may be a bind parameter whose value is
    :func:`contains_pattern` of the text."""
    pattern = text if isinstance(text, BindParameter) else contains_pattern(text)
    return expression.like(pattern, escape="\\")


def contains_pattern(text: str) -> str:
    """The LIKE pattern of :func:`contains`: ``%text%``, its wildcards escaped."""
    needle = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
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
        page_url = _page_urls()
        headers["Link"] = ", ".join(
            f'<{page_url(number)}>; rel="{rel}"' for rel, number in links.items()
        )
        return headers


def deepest_page(page_size: int) -> int:
    """The last page served of a list whose total is an estimate: its offset < MAX_OFFSET."""
    return -(-MAX_OFFSET // page_size)


def _page_urls() -> Callable[[int], str]:
    """The URL of a page of this list: the request's, with ``page`` set (where it was in the
    query, or last). The rest of the query is encoded once for all the links."""
    args = request.args.copy()
    args["page"] = ""  # a place holder, encoded below for each page
    parts = [
        None if key == "page" else urlencode([(key, value)])
        for key, value in args.items(multi=True)
    ]
    base = request.base_url

    def page_url(number: int) -> str:
        query = "&".join(f"page={number}" if part is None else part for part in parts)
        return f"{base}?{query}"

    return page_url


def paginate(
    statement: Select[Any],
    *,
    page: int,
    page_size: int,
    key: Any | None = None,
    rows: Rows | None = None,
    params: Mapping[str, Any] | None = None,
    search: Search | None = None,
    prepare_as: str | None = None,
) -> Page:
    """One page of ``statement``, and its total.

    ``statement`` selects one ORM entity, the page's items; or, with ``rows``, plain columns
    (see :class:`Rows`).

    ``params`` marks a *prepared* statement: one built once (and kept) with ``bindparam``s,
    whose values ``params`` gives. The statements paginate derives from it, the page with its
    count and the count alone, are then built once too (:func:`_prepared`). Building them and
    their cache keys anew was a measured 137 µs per list, about a tenth of one.

    ``prepare_as`` also sends them as PostgreSQL prepared statements, named after it (see
    app.common.prepared), which PostgreSQL plans once per connection, not once per request.
    Only for a list whose one plan suits every value of its parameters (and never with a
    search, whose plans depend on the fragment); it needs ``params``.

    The total is counted exactly up to EXACT_COUNT_LIMIT matching rows (the count stops
    there, so it costs the same on a million rows as on ten thousand). Beyond that, on
    PostgreSQL, it is the planner's estimate and ``X-Pagination`` says ``"total_exact":
    false``; such large lists are served MAX_OFFSET items deep (deeper pages are 422: narrow the
    list with filters, or reverse the sort). Shallow pages come with their count in the same
    query; deep ones (from DEFERRED_JOIN_OFFSET) are counted first, so a page past the last is
    answered without asking for it — where the count is exact. An estimate may be short of the
    table or beyond it (see settled_total), so a deep page of an estimated list is always asked
    for, with one row more.

    ``search`` is a substring search (``?q=``) that ``statement`` does not yet filter on (see
    :class:`Search`). Its matches cannot be counted without visiting each one: the trigram
    index only names candidates, each checked in the table, so counting to
    EXACT_COUNT_LIMIT + 1 costs more than the page when a fragment is in, say, 0.3% of a
    million names. So on PostgreSQL a search asks the planner first (one EXPLAIN; the
    statistics on ``lower(name)`` are kept fine enough for this, see migration 8e4f1a2b6c90).
    When it expects more than UNCOUNTED_SEARCH_ESTIMATE rows nothing is counted: the list is
    walked in its order (index-only, where an index carries the name; where no index serves
    the order, see Search.walk, the planner finds them its own way) for the page's keys and
    one more, which tells whether another page follows; the total is the estimate, never less
    than what the page shows exists, flagged inexact. The walk looks at no more than
    SEARCH_WALK_FACTOR entries per item it needs: the estimate comes from a sample, and a rare
    fragment taken for a common one would otherwise walk the whole list. When the walk comes
    back short (the list's end, or matches sparser than expected), and when fewer rows are
    expected, the search is counted as above, its matches found once for the page and the
    count (see _Derived.searched). Any page found short is the last: its total is exact.
    """
    if search is not None and key is None:
        raise TypeError("a search is paged by its keys: give key")
    if prepare_as is not None and (params is None or search is not None):
        raise TypeError("only a list built once (params), without a search, is prepared")
    widen = rows.widen if rows else None
    derived = (_prepared if params is not None else _Derived)(
        statement, widen, key, search, prepare_as
    )
    values = params or {}
    offset = (page - 1) * page_size
    postgres = db.engine.dialect.name == "postgresql"

    def estimate() -> int:  # the planner's, of the (searched) list's total
        return _estimate_rows(derived.unordered, values, cached=params is not None)

    expected: int | None = None  # the estimate, once asked
    if search and offset < MAX_OFFSET and postgres:
        expected = estimate()
        if expected > UNCOUNTED_SEARCH_ESTIMATE:
            if search.walk:
                walk = (offset + page_size + 1) * SEARCH_WALK_FACTOR
                walk_values = {**values, _LIMIT: page_size + 1, _OFFSET: offset, _WALK: walk}
                found = _items(derived.walked, rows, walk_values)
            else:  # no index serves the order: the planner finds the page its own way
                found = _page_items(derived, rows, page_size + 1, offset, values)
            if len(found) > page_size:  # another page follows
                total = max(expected, offset + len(found))
                return Page(found[:page_size], total, page, page_size, total_exact=False)
            # the list's last page, or matches sparser than expected: counted below
    items: list[Any] | None = None
    if offset < DEFERRED_JOIN_OFFSET:
        # One round trip: the page, with the capped count beside each row (an uncorrelated
        # subquery, evaluated once). Only an empty page past the first needs the count alone.
        # A search expected to match few rows finds them once for both (see _Derived.searched).
        counted = derived.counted if expected is None else derived.searched
        found, items = _fetch(counted, rows, {**values, _LIMIT: page_size, _OFFSET: offset})
        total = found[0][-1] if found else 0
        if not found and page > 1:
            total = connection().scalar(derived.capped, values) or 0
    else:
        total = connection().scalar(derived.capped, values) or 0
    exact = True
    if total > EXACT_COUNT_LIMIT:
        if postgres:
            if expected is None:
                expected = estimate()
            total, exact = max(expected, EXACT_COUNT_LIMIT + 1), False
        else:  # SQLite has no estimates (and is not meant for large data): count it all
            everything = select(func.count()).select_from(derived.unordered.subquery())
            total = connection().scalar(everything, values) or 0
    if not exact and offset >= MAX_OFFSET:
        # served this deep only if the list is not, in fact, this large (the estimate may be
        # far beyond it): then the page is past its end, and its total is counted
        total = _count_to(derived, values, MAX_OFFSET + 1)
        if total > MAX_OFFSET:
            raise ValidationFailed(
                f"Lists this large are served {MAX_OFFSET} items deep; narrow the list (q, "
                "filters) or reverse the sort to reach the rest.",
                errors={"query": {"page": [f"At most page {deepest_page(page_size)} here."]}},
            )
        items, exact = [], True
    if items is None and exact:  # deep (a page past the last needs no asking)
        items = [] if offset >= total else _page_items(derived, rows, page_size, offset, values)
    elif items is None:  # deep, and the total is an estimate: the page itself says more
        found = _page_items(derived, rows, page_size + 1, offset, values)
        items = found[:page_size]
        if found:
            total, exact = settled_total(total, offset, page_size, len(found))
        else:  # past the end: the list holds at most `offset` items, few enough to count
            total, exact = _count_to(derived, values, offset), True
    return Page(items=items, total=total, page=page, page_size=page_size, total_exact=exact)


def settled_total(estimate: int, offset: int, page_size: int, found: int) -> tuple[int, bool]:
    """The total of a list whose count was estimated, and whether it is exact, once the page at
    ``offset`` was asked for ``page_size`` + 1 rows and ``found`` (some) came back.

    The estimate comes from the planner's statistics, which lag behind the table (rows added
    since the last ANALYZE are not in them), so it may be short of the page or beyond the end.
    The page settles what it can: a row past the page means another page follows, so the total
    is at least that far; a short page is the last one, so the total is exact. (An empty page
    is past the end: the list is then at most ``offset`` long, and paginate counts it.)"""
    if found > page_size:
        return max(estimate, offset + found), False
    return offset + found, True


def _count_to(derived: _Derived, values: Mapping[str, Any], limit: int) -> int:
    """How many items the list has, counting no further than ``limit``: the exact total of a
    list known to be no longer than that (``limit`` <= MAX_OFFSET + 1, so the work is bounded
    like a deep page's)."""
    return connection().scalar(derived.counted_to, {**values, _LIMIT: limit}) or 0


def _page_items(
    derived: _Derived, rows: Rows | None, limit: int, offset: int, values: Mapping[str, Any]
) -> list[Any]:
    """``limit`` items from ``offset``, no count. With a key, the page's keys are found first:
    that query needs only the key and what the statement filters and sorts on, which an index
    may hold (an index-only scan); then only the page's own rows are read."""
    page = derived.plain if derived.key is None else derived.keyed
    return _items(page, rows, {**values, _LIMIT: limit, _OFFSET: offset})


def _items(statement: Select[Any], rows: Rows | None, values: Mapping[str, Any]) -> list[Any]:
    return _fetch(statement, rows, values)[1]


def _fetch(
    statement: Select[Any], rows: Rows | None, values: Mapping[str, Any]
) -> tuple[Sequence[Row[Any]], list[Any]]:
    """``statement``'s result rows, and the items they hold: ORM entities, through the session;
    or, with ``rows``, plain columns on the request's connection, past the ORM session."""
    if rows is None:
        found = db.session.execute(statement, values).all()
        return found, [row[0] for row in found]
    found = connection().execute(statement, values).all()
    return found, [rows.item(row) for row in found]


# The bind parameters of a page's LIMIT and OFFSET, and of a search's walk (see _Derived).
_LIMIT, _OFFSET, _WALK = "cf_page_limit", "cf_page_offset", "cf_walk_limit"


class _Derived:
    """What paginate sends for ``statement``, each built when first needed. LIMIT and OFFSET
    are bind parameters, so none of these depends on which page is asked for."""

    def __init__(
        self,
        statement: Select[Any],
        widen: Callable[[Select[Any]], Select[Any]] | None,
        key: Any | None,
        search: Search | None = None,
        prepare_as: str | None = None,
    ) -> None:
        self.widen, self.key, self.search = widen, key, search
        self.prepare_as = prepare_as
        self.unsearched = statement
        # what the list is: the statement, searched
        self.statement = statement if search is None else statement.where(search.condition)

    @functools.cached_property
    def capped(self) -> Select[Any]:
        """The capped count."""
        return self._named(capped_count(self.statement), "count")

    @functools.cached_property
    def counted_to(self) -> Select[Any]:
        """The count, capped at ``_LIMIT``."""
        count = select(func.count()).select_from(self.statement.limit(bindparam(_LIMIT)).subquery())
        return self._named(count, "count_to")

    @functools.cached_property
    def counted(self) -> Select[Any]:
        """A shallow page, each row with the capped count."""
        page = page_with_count(self.statement, bindparam(_LIMIT), bindparam(_OFFSET), self.widen)
        return self._named(page, "page")

    @functools.cached_property
    def searched(self) -> Select[Any]:
        """A shallow page with the capped count, as ``counted``, for a search expected to match
        few rows (PostgreSQL). ``counted`` would find the matches twice (the trigram index is
        walked for the page and again for its count, 1-2 ms each at a million rows), and the
        planner, expecting a few hundred rows, joins them to every owner (a hash join over the
        whole users table, ~3 ms at 10,000 users). Here the matches are found once, ranked in
        the list's order and kept (a MATERIALIZED CTE, at most EXACT_COUNT_LIMIT + 1 of them):
        the count counts them, and only the page's keys are joined to the table and widened.
        The search's ``candidates``, if it has any, lead to them (see :class:`Search`). Needs a
        search (its order ranks the matches) and a key."""
        assert self.search is not None and self.key is not None
        rank = func.row_number().over(order_by=self.search.order.clauses()).label("cf_rank")
        found = self.statement
        if self.search.candidates is not None:  # an index that reaches them sooner
            found = found.where(self.search.candidates)
        matches = (
            found.with_only_columns(self.key.label("cf_key"), rank)
            .order_by(None)
            .order_by(rank)
            .limit(EXACT_COUNT_LIMIT + 1)
            .cte("cf_matches")
            .prefix_with("MATERIALIZED")
        )
        on_page = select(matches.c.cf_key).where(
            matches.c.cf_rank > bindparam(_OFFSET),
            matches.c.cf_rank <= bindparam(_OFFSET) + bindparam(_LIMIT),
        )
        total = select(func.count()).select_from(matches).scalar_subquery()
        return self._rows_of(on_page).add_columns(total)

    @functools.cached_property
    def walked(self) -> Select[Any]:
        """A search's page, found by walking the list in its order (no count): the walk looks
        at the first ``_WALK`` entries of the unsearched list, each with whether it matches
        (so the walk may stop there, and may stay in an index that holds what the search
        looks at); the page's keys are the matches from ``_OFFSET`` on, and only they are
        read and widened. The walk's columns carry the order, so the matches come out of it
        in order, and it stops at the last match the page needs. Needs a search and a key."""
        assert self.search is not None and self.key is not None
        order = self.search.order
        walk = (
            self.unsearched.with_only_columns(
                self.key.label("cf_key"),
                *(column.label(f"cf_order_{i}") for i, column in enumerate(order.columns)),
                self.search.condition.label("cf_match"),
            )
            .limit(bindparam(_WALK))
            .subquery("cf_walk")
        )
        walk_order = [walk.c[f"cf_order_{i}"] for i in range(len(order.columns))]
        keys = (
            select(walk.c.cf_key)
            .where(walk.c.cf_match)
            .order_by(*order.clauses(walk_order))
            .limit(bindparam(_LIMIT))
            .offset(bindparam(_OFFSET))
        )
        return self._rows_of(keys)

    def _rows_of(self, keys: Select[Any]) -> Select[Any]:
        """The page's rows, widened, once ``keys`` (a query of the key) has found them: every
        filter is in ``keys``, and the search is not asked again (which would cost the planner
        another estimate of it). Ordered as the list.

        On PostgreSQL the keys are a MATERIALIZED CTE, found once whatever the planner expects.
        As a plain ``IN (subquery)``, a list the statistics put at one row (a user whose
        characters all came since the last ANALYZE) was planned as a nested loop that ran the
        keys' query again for each of the list's rows: 18 million rows read for a page of 6,000,
        and deep pages ran into the statement timeout
        (``tests/characters/test_estimated_totals.py``)."""
        found = keys.cte("cf_page_keys").prefix_with("MATERIALIZED", dialect="postgresql")
        return self._widened(self.unsearched).where(self.key.in_(select(found.c[0])))

    def _widened(self, statement: Select[Any]) -> Select[Any]:
        return self.widen(statement) if self.widen else statement

    @functools.cached_property
    def plain(self) -> Select[Any]:
        """A page alone."""
        page = self._widened(self.statement).limit(bindparam(_LIMIT)).offset(bindparam(_OFFSET))
        return self._named(page, "rows")

    @functools.cached_property
    def keyed(self) -> Select[Any]:
        """A page found by its keys first (the key's column only, so the index may do)."""
        keys = self.statement.with_only_columns(self.key)
        keys = keys.limit(bindparam(_LIMIT)).offset(bindparam(_OFFSET))
        return self._named(self._rows_of(keys), "keyed")

    def _named(self, statement: Select[Any], kind: str) -> Select[Any]:
        """``statement``, marked to be sent prepared if the list is (``prepare_as``)."""
        return (
            statement
            if self.prepare_as is None
            else prepared(statement, f"{self.prepare_as}_{kind}")
        )

    @functools.cached_property
    def unordered(self) -> Select[Any]:
        """The statement without its ORDER BY: what an estimate is asked of."""
        return self.statement.order_by(None)


# For prepared statements: a handful per list endpoint (each kept by its module), so bounded.
_prepared = functools.lru_cache(maxsize=256)(_Derived)


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


def _estimate_rows(statement: Select[Any], values: Mapping[str, Any], *, cached: bool) -> int:
    """PostgreSQL's estimate of how many rows ``statement`` returns (EXPLAIN, not a count).
    ``cached``: ``statement`` is kept (prepared, see paginate), and so is its compiled form.

    Sent through the engine like any statement: its errors are SQLAlchemy's (a lost database
    is a 503), and a read's deferred session check may ride in front of it
    (app.auth.session_check)."""
    dialect = db.engine.dialect
    compiled = _compile(statement, dialect) if cached else statement.compile(dialect=dialect)
    params = {
        key: str(value) if isinstance(value, uuid.UUID) else value
        for key, value in compiled.construct_params(dict(values)).items()
    }
    explain = f"EXPLAIN (FORMAT JSON) {compiled.string}"
    plan = connection().exec_driver_sql(explain, params).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


@functools.lru_cache(maxsize=256)
def _compile(statement: Select[Any], dialect: Any) -> Any:
    return statement.compile(dialect=dialect)
