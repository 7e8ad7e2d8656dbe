"""Rate-limit counters shared by the worker processes of one instance, without Redis.

``RATELIMIT_STORAGE_URI=memory://`` (the default) is meant for one process: flask-limiter's
memory storage lives in the process, so under gunicorn each worker would count on its own and a
client could sign in ``workers`` times as often as ``RATELIMIT_LOGIN`` allows, depending on which
worker took each request. So when gunicorn runs several workers with ``memory://``,
``gunicorn.conf.py`` makes a file for the instance and names it in ``SHARED_FILE_VARIABLE``; the
workers then keep the counts in that file, through :class:`HostStorage`, a storage of the
``limits`` library backed by SQLite (which serialises the writers of several processes). Each
count is one short transaction, and only the rate-limited operations (sign-up, sign-in) count.
The instances of a deployment still need ``redis://`` to share their counts.

Only what the fixed-window strategy (flask-limiter's default, and this service's) uses is
stored: a counter and its expiry per key.
"""

from __future__ import annotations

import os
import sqlite3
import time
from urllib.parse import urlsplit

from limits.storage import Storage

SCHEME = "cf-host"
SHARED_FILE_VARIABLE = "CF_SHARED_RATELIMIT_FILE"  # set by gunicorn.conf.py, for its workers

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires REAL NOT NULL
)
"""


def storage_uri(configured: str) -> str:
    """The storage to use for ``configured``: the shared file when it is ``memory://`` and
    gunicorn named one, else ``configured`` itself."""
    shared = os.environ.get(SHARED_FILE_VARIABLE)
    if configured.startswith("memory://") and shared:
        return f"{SCHEME}://{shared}"
    return configured


class HostStorage(Storage):
    """Fixed-window counters in an SQLite file that every worker of the instance opens."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        self.path = urlsplit(uri or "").path
        if not self.path:
            raise ValueError(f"{SCHEME}:// needs a file path, as in {SCHEME}:///tmp/limits.db")
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        """This process's connection (one per process: a connection must not cross a fork)."""
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        db = self._db()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")  # one writer at a time, across the processes
        try:
            db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            db.execute(
                "INSERT INTO counters (key, count, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET count = count + excluded.count",
                (key, amount, now + expiry),
            )
            (count,) = db.execute("SELECT count FROM counters WHERE key = ?", (key,)).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(count)

    def get(self, key: str) -> int:
        row = (
            self._db()
            .execute("SELECT count FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = (
            self._db()
            .execute(
                "SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, time.time())
            )
            .fetchone()
        )
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        db = self._db()
        (count,) = db.execute("SELECT count(*) FROM counters").fetchone()
        db.execute("DELETE FROM counters")
        return int(count)

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM counters WHERE key = ?", (key,))
