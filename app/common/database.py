"""How requests use PostgreSQL connections without paying round trips they do not need.

Two measured costs of a pooled connection, and what replaces them here:

* **Liveness on checkout.** ``pool_pre_ping`` sends ``SELECT 1`` every time a connection leaves
  the pool: one round trip per request, about a tenth of an authenticated read. A connection
  that the server closed (a restart, a crash, ``pg_terminate_backend``) has something waiting on
  its socket while it sits idle in the pool: PostgreSQL's termination notice, or the end of the
  stream. A healthy idle connection has nothing, because every reply was read to its end. So on
  checkout a zero-timeout ``poll()`` of the socket tells the two apart without a round trip; a
  readable socket, or a connection idle for longer than ``IDLE_PING_SECONDS`` (where a silently
  dropped TCP connection could hide), gets the real ping, and a failed ping invalidates the
  whole pool, exactly like ``pool_pre_ping``. What neither can see is a server that vanished
  without closing its sockets in the last few seconds; the keepalive and ``tcp_user_timeout``
  settings in ``app.config`` bound that, and the request gets a 503.
* **Transactions for reads.** In psycopg2's default mode every request that touches the database
  sends ``BEGIN`` before its first statement and ``ROLLBACK`` when the connection goes back to the
  pool: two round trips that buy nothing for a request that only reads. ``GET`` and ``HEAD``
  requests (which never write) run their statements in autocommit mode instead; each statement
  still sees one consistent snapshot. Writes keep their transaction.
* **The ORM session, for reads that need none.** The hot reads (a character by id, a page of
  characters, the session check) are Core statements, yet running them through
  ``db.session.connection()`` created an ORM session, its transaction and its connection
  bookkeeping for every request, and closed them again: 42 µs against 12 µs for a plain
  ``engine.connect()`` and ``close()``, measured in-process; sampled with py-spy in a gunicorn
  worker under wrk, a tenth of an authenticated read. Without it a read costs 0.68 instead of
  0.73 ms of gunicorn CPU (``bench/bench_http.py --baseline``). So a read on PostgreSQL gets one
  plain :func:`read_connection`, checked out on first use and closed at the end of the request;
  Core statements run on it through :func:`connection`, and an ORM session that a read does
  open (a template, ``/users/me``) is bound to that same connection by :class:`RequestSession`,
  so a request never holds two. Writes, the CLI and SQLite use the ORM session as before.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from flask_sqlalchemy.session import Session
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import exc as orm_exc

log = logging.getLogger(__name__)
IDLE_PING_SECONDS = 10.0
SAFE_METHODS = frozenset({"GET", "HEAD"})
_IDLE_SINCE = "cf_idle_since"
_READ_ENGINE = "cf_read_engine"  # in app.extensions: the engine reads check out from
_READ_CONNECTION = "cf_read_connection"  # in g: this read's connection, once checked out
# (The session is reached as Flask-SQLAlchemy registers itself, app.extensions["sqlalchemy"]:
# app.extensions imports RequestSession from here, so this module cannot import db.)


# Letters whose lower case PostgreSQL folds only in a UTF-8 LC_CTYPE, and the folding ?q= and
# sort=name rely on (app.common.pagination.fold_text): É, a capital sigma, a dotted capital I.
_FOLDING_PROBE = ("\u00c9\u03a3\u0130", "\u00e9\u03c3i")


def install_ctype_check(engine: Engine) -> None:
    """On the first PostgreSQL connection, warn when ``lower()`` does not fold non-ASCII letters
    (a database created with ``LC_CTYPE`` C): searches and name sorting then ignore the case of
    ASCII letters only, which docs/operations.md says to avoid. Once per process."""

    @event.listens_for(engine, "first_connect")
    def _check_ctype(dbapi_connection: Any, record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT lower(%s), current_setting('lc_ctype')", (_FOLDING_PROBE[0],))
            folded, ctype = cursor.fetchone()
        dbapi_connection.rollback()
        if folded != _FOLDING_PROBE[1]:
            log.warning(
                "PostgreSQL's LC_CTYPE is %r: lower() does not fold letters such as É, so ?q= "
                "and sort=name ignore the case of ASCII letters only; create the database with "
                "a UTF-8 LC_CTYPE (C.UTF-8), see docs/operations.md",
                ctype,
            )


def install_liveness_check(engine: Engine) -> None:
    """Check pooled PostgreSQL connections on checkout, pinging only when in doubt."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None and dbapi_connection.autocommit:
            dbapi_connection.autocommit = False  # back to transactions (no round trip)
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None:  # a new connection: it has just talked to the server
            return
        if dbapi_connection.closed:
            raise exc.InvalidatePoolError("the connection was closed")
        recently_used = time.monotonic() - idle_since < IDLE_PING_SECONDS
        if recently_used and not socket_has_data(dbapi_connection.fileno()):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise exc.InvalidatePoolError(f"ping failed: {error}") from error


def socket_has_data(fd: int) -> bool:
    """Whether anything (data, an error or the end of the stream) waits on the socket ``fd``."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def install_read_connections(app: Flask, engine: Engine) -> None:
    """Give ``app``'s reads a plain autocommit connection of ``engine`` (PostgreSQL), closed
    at the end of each request."""
    app.extensions[_READ_ENGINE] = engine
    app.teardown_request(_close_read_connection)


def read_connection() -> Connection | None:
    """This request's connection if it is a read (``GET``/``HEAD``) on PostgreSQL, checked out
    on first use; ``None`` anywhere else (writes, SQLite, no request).

    psycopg2's ``autocommit`` attribute is switched directly: SQLAlchemy's
    ``isolation_level="AUTOCOMMIT"`` option would do the same, but its reset when the connection
    goes back to the pool costs a round trip (``SET default_transaction_isolation TO DEFAULT``).
    The pool's checkin listener above switches it back, client-side only; the ``ROLLBACK`` that
    closing a connection implies is a no-op in autocommit mode (psycopg2 sends nothing).
    """
    if not has_request_context() or request.method not in SAFE_METHODS:
        return None
    connection: Connection | None = g.get(_READ_CONNECTION)
    if connection is not None:
        return connection
    engine: Engine | None = current_app.extensions.get(_READ_ENGINE)
    if engine is None:
        return None
    connection = engine.connect()
    connection.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
    setattr(g, _READ_CONNECTION, connection)
    return connection


def connection() -> Connection:
    """Where this request's Core statements run: the read's connection
    (:func:`read_connection`), or else the ORM session's connection and transaction."""
    reading = read_connection()
    if reading is not None:
        return reading
    return current_app.extensions["sqlalchemy"].session.connection()


def _close_read_connection(_error: BaseException | None) -> None:
    connection: Connection | None = g.pop(_READ_CONNECTION, None)
    if connection is None:
        return
    # an ORM session bound to it lets go first (Flask-SQLAlchemy's own removal comes later,
    # with the app context, and then finds nothing to do)
    try:
        current_app.extensions["sqlalchemy"].session.remove()
    finally:
        connection.close()


class RequestSession(Session):
    """Flask-SQLAlchemy's session, bound to the request's read connection where there is one
    (:func:`read_connection`), so a read's ORM queries and Core statements share it."""

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: Engine | Connection | None = None,
        **kwargs: Any,
    ) -> Engine | Connection:
        if bind is None:
            reading = read_connection()
            if reading is not None:
                return reading
        return super().get_bind(mapper, clause=clause, bind=bind, **kwargs)


def is_foreign_key_violation(error: exc.IntegrityError) -> bool:
    """Whether a write failed because a row it refers to is gone (deleted by a concurrent
    request), as opposed to a duplicate of a unique value."""
    code = getattr(error.orig, "pgcode", None)  # psycopg2
    if code is not None:
        return code == "23503"
    return "FOREIGN KEY constraint failed" in str(error.orig)  # sqlite3


def row_is_gone(model: type, key: Any) -> bool:
    """Asked after a failed write was rolled back: whether the ``model`` row ``key`` no longer
    exists (a concurrent request deleted it). False when that cannot be told (the database is
    unreachable), so that the caller keeps its original error."""
    session = current_app.extensions["sqlalchemy"].session
    try:
        return session.get(model, key) is None
    except exc.SQLAlchemyError:
        return False


@contextmanager
def answered_if_deleted(
    *referents: tuple[type, Any, Exception], otherwise: Exception | None = None
) -> Iterator[None]:
    """Around a write (up to its commit) that refers to rows a concurrent request may delete:
    when it fails for that — a foreign key finds its row gone, or an UPDATE finds no row
    (``StaleDataError``) — roll back and raise the answer of the first ``(model, key,
    answer)`` whose row is gone (a key of None is skipped), else ``otherwise``, else the error
    itself. Any other failure goes on as it is."""
    try:
        yield
    except (exc.IntegrityError, orm_exc.StaleDataError) as error:
        if isinstance(error, exc.IntegrityError) and not is_foreign_key_violation(error):
            raise
        current_app.extensions["sqlalchemy"].session.rollback()
        for model, key, answer in referents:
            if key is not None and row_is_gone(model, key):
                raise answer from None
        if otherwise is None:
            raise
        raise otherwise from None


def lock_for_writing() -> None:
    """On SQLite, take the database's write lock now, with a write that changes nothing.

    PostgreSQL locks the rows a ``SELECT … FOR UPDATE`` reads, until the transaction ends;
    SQLite has no row locks and ignores ``FOR UPDATE``, and a transaction there takes the
    (single) write lock only at its first write. Called before such a read, this makes a
    concurrent writer wait until the caller commits, as the row locks would, and the read see
    every change committed before it. Nothing on PostgreSQL.
    """
    session = current_app.extensions["sqlalchemy"].session
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE users SET id = id WHERE 0"))  # any table: SQLite locks all
