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
  pool: two round trips that buy nothing for a request that only reads. Authenticated ``GET`` and
  ``HEAD`` requests (which never write) run their statements in autocommit mode instead; each
  statement still sees one consistent snapshot. Writes keep their transaction.
"""

from __future__ import annotations

import select
import time
from typing import Any

from flask import request
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

from app.extensions import db

IDLE_PING_SECONDS = 10.0
SAFE_METHODS = frozenset({"GET", "HEAD"})
_IDLE_SINCE = "cf_idle_since"


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


def use_autocommit_for_safe_methods() -> None:
    """On PostgreSQL, run this request's statements without a transaction if it is a read.

    Must be called before the request's first statement. psycopg2's ``autocommit`` attribute is
    switched directly: SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` option would do the same, but
    its reset when the connection goes back to the pool costs a round trip (``SET
    default_transaction_isolation TO DEFAULT``). The pool's checkin listener above switches it
    back, client-side only; the session's closing ``ROLLBACK`` is a no-op in autocommit mode.
    """
    if request.method not in SAFE_METHODS:
        return
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
