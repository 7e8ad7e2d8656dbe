"""Server-side prepared statements for the hottest lookups and lists, on PostgreSQL.

psycopg2 sends every statement as text, so PostgreSQL parses and plans it anew each time. For
``GET /characters/{id}`` that is most of the database's work: measured with pgbench on the
scale database, the statement took 0.157 ms as text and 0.072 ms prepared, and the difference
is planning (0.142 ms with ``plan_cache_mode=force_custom_plan``). A statement marked with
:func:`prepared` is, on PostgreSQL, ``PREPARE``d once per connection and from then on sent as
``EXECUTE name(…)`` with the same parameters (a prepared statement belongs to the connection,
not to a transaction: a rollback keeps it).

Every connection runs with ``plan_cache_mode = force_generic_plan`` (app.config), so a prepared
statement is planned once, for any values of its parameters: its *generic* plan. Left to
choose, PostgreSQL compares that plan's estimated cost with the plans it makes for each
execution's values, and for a statement with a ``LIMIT`` parameter it never picks it (not
knowing the limit, it costs the generic plan for a tenth of the rows): each ``EXECUTE`` was
planned anew and saved nothing. Measured with pgbench on an owner's list of 45 (page of 20 with
its count): 0.33 ms as text, 0.14 ms prepared; the setting only concerns prepared statements
(and PL/pgSQL's, such as the session check's lookups by key), never a statement sent as text.

So only statements chosen by hand are marked, each under a fixed name, and only those whose
one plan suits every value: lookups by key (the read by id, a write's session check, the
template a character is made from), and one's own list of characters in each order, which
walks the owner's index in that order whoever the owner is (app.characters.service; the plans
are checked in ``tests/characters/test_query_plans.py``). Everything else, SQLite included,
runs as before. The deferred session check (app.auth.session_check) is added in front of the
``EXECUTE`` as it would be in front of the statement. Prepared statements live as long as
their connection; the pool's record of which names a connection has prepared is dropped with
the connection.
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Executable

OPTION = "cf_prepared"
_PREPARED = "cf_prepared_names"  # in the pool record's info: the names this connection has
_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s")
_NAME = re.compile(r"^cf_[a-z0-9_]{1,40}$")
E = TypeVar("E", bound=Executable)


def prepared(statement: E, name: str) -> E:
    """``statement``, to be sent prepared as ``name`` (``cf_`` and lower-case letters, digits
    or ``_``) where :func:`install` applies."""
    if not _NAME.match(name):
        raise ValueError(f"not a prepared statement name: {name!r}")
    return statement.execution_options(**{OPTION: name})


def to_prepare(statement: str) -> tuple[str, list[str]]:
    """psycopg2's ``%(name)s`` statement as PostgreSQL's ``$n`` one, and the parameters' names
    in the order of their numbers (a name used twice is one parameter)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _PLACEHOLDER.sub(number, statement).replace("%%", "%"), names


@functools.lru_cache(maxsize=64)  # the marked statements (~25), each compiled once
def _rewritten(name: str, statement: str) -> tuple[str, str]:
    """What ``PREPARE name`` prepares for ``statement``, and the ``EXECUTE`` that runs it."""
    body, names = to_prepare(statement)
    arguments = ", ".join(f"%({key})s" for key in names)
    return body, f"EXECUTE {name}({arguments})" if names else f"EXECUTE {name}"


def install(engine: Engine) -> None:
    """Send marked statements prepared on this (PostgreSQL) engine."""

    # insert=True: before the session check's hook, which puts its call in front of the result
    @event.listens_for(engine, "before_cursor_execute", retval=True, insert=True)
    def _execute_prepared(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> tuple[str, Any]:
        name = context.execution_options.get(OPTION) if context is not None else None
        if name is None or executemany or not isinstance(parameters, dict):
            return statement, parameters
        body, execute = _rewritten(name, statement)
        known: dict[str, str] = conn.info.setdefault(_PREPARED, {})
        if known.get(name) != body:
            if name in known:  # one name for two statements: a programming error, said loudly
                raise RuntimeError(f"prepared statement {name} names two statements")
            # A failure here is reported like the statement's own (SQLAlchemy wraps errors from
            # this hook too): PREPARE fails where the statement would, a lost connection or a
            # lock timeout; a statement PostgreSQL cannot prepare at all fails every test.
            cursor.execute(f"PREPARE {name} AS {body}")
            known[name] = body
        return execute, parameters
