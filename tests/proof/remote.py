"""Helpers for the proof tests, which talk to real gunicorn servers over sockets: accounts,
templates and characters made through the HTTP API, checks on problem responses, and table
locks held from a separate PostgreSQL connection to stall the app's statements on purpose."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from tests.support.factories import PASSWORD, SIMPLE_DEFINITION, unique_name

if TYPE_CHECKING:
    from tests.support.servers import Gunicorn

# Longer than any request may take (GUNICORN_TIMEOUT is 10 s in these tests), so a client
# timeout always means the server hung, never that the client gave up early.
CLIENT_TIMEOUT = 20
API = "/api/v1"


def wait_for_every_worker(server: Gunicorn, timeout: float = 60) -> set[int]:
    """Wait until every worker of ``server`` has loaded the app and answered (``Gunicorn``
    returns as soon as one worker answers); return their pids. Tests that need one request
    per worker at the same moment start with this, so no request waits for a slow boot."""
    tag = unique_label("warm-up")
    numbers = itertools.count()

    def ask(_: int) -> None:
        requests.get(
            f"{server.url}/health/ready",
            headers={"X-Request-ID": f"{tag}-{next(numbers)}", "Connection": "close"},
            timeout=CLIENT_TIMEOUT,
        )

    def everyone_answered() -> bool:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(ask, range(16)))
        served = {json.loads(line)["pid"] for line in server.stdout().splitlines() if tag in line}
        return served >= set(server.worker_pids())

    wait_until(everyone_answered, timeout, "every gunicorn worker answering")
    return set(server.worker_pids())


@dataclass
class RemoteAccount:
    email: str
    password: str
    access: str
    refresh: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def sign_up(
    register_at: str, login_at: str | None = None, *, forwarded_for: str | None = None
) -> RemoteAccount:
    """Register on one server and sign in on another (or the same); ``forwarded_for`` sets the
    client address the servers see when they trust one proxy hop (rate-limit buckets)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    username = unique_name("proof")
    email = f"{username}@example.com"
    registered = requests.post(
        f"{register_at}{API}/auth/register",
        json={"email": email, "username": username, "password": PASSWORD},
        headers=headers,
        timeout=CLIENT_TIMEOUT,
    )
    assert registered.status_code == 201, registered.text
    tokens = requests.post(
        f"{login_at or register_at}{API}/auth/login",
        json={"email": email, "password": PASSWORD},
        headers=headers,
        timeout=CLIENT_TIMEOUT,
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return RemoteAccount(email, PASSWORD, body["access_token"], body["refresh_token"])


def create_template(base: str, account: RemoteAccount) -> str:
    response = requests.post(
        f"{base}{API}/templates",
        json={"name": unique_name("Proof "), "definition": SIMPLE_DEFINITION},
        headers=account.auth,
        timeout=CLIENT_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_character(base: str, account: RemoteAccount, **fields: Any) -> requests.Response:
    body = {"name": unique_name("Hero "), **fields}
    response = requests.post(
        f"{base}{API}/characters", json=body, headers=account.auth, timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 201, response.text
    return response


def unique_label(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_problem(response: requests.Response, *statuses: int) -> dict[str, Any]:
    """An RFC 9457 problem with one of ``statuses``; a 503 must also say when to retry."""
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == response.status_code
    for member in ("type", "title", "detail", "request_id"):
        assert member in body, body
    if response.status_code == 503:
        assert int(response.headers["Retry-After"]) > 0, response.headers
    return body


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until it holds; return the seconds it took (fail after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


class TableLock:
    """A PostgreSQL connection of our own holding table locks in an open transaction, to stall
    the app's statements on purpose. The locks go on :meth:`release` (rollback), or when the
    server dies."""

    def __init__(self, database_url: str) -> None:
        import psycopg2

        self.connection = psycopg2.connect(database_url, application_name="proof-lock-holder")
        self.backend_pid: int = self.connection.get_backend_pid()

    def acquire(self, mode: str, tables: tuple[str, ...] = (), timeout_ms: int = 0) -> bool:
        """``LOCK TABLE <tables> IN <mode> MODE`` (every table of the app when ``tables`` is
        empty); with ``timeout_ms``, give up (and return False) rather than wait longer."""
        from psycopg2 import errors, sql

        with self.connection.cursor() as cursor:
            if not tables:
                cursor.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version' ORDER BY tablename"
                )
                tables = tuple(row[0] for row in cursor.fetchall())
            if timeout_ms:
                cursor.execute("SET LOCAL lock_timeout = %s", (f"{timeout_ms}ms",))
            try:
                cursor.execute(
                    sql.SQL("LOCK TABLE {} IN {} MODE").format(
                        sql.SQL(", ").join(map(sql.Identifier, tables)), sql.SQL(mode)
                    )
                )
            except errors.LockNotAvailable:
                self.connection.rollback()
                return False
        return True

    def release(self) -> None:
        import psycopg2

        with contextlib.suppress(psycopg2.Error):
            self.connection.rollback()
        with contextlib.suppress(psycopg2.Error):
            self.connection.close()


@contextlib.contextmanager
def tables_locked(
    database_url: str, mode: str, tables: tuple[str, ...] = ()
) -> Iterator[TableLock]:
    """Hold ``LOCK TABLE <tables> IN <mode> MODE`` (every table of the app when ``tables`` is
    empty) for the duration of the block."""
    holder = TableLock(database_url)
    try:
        holder.acquire(mode, tables)
        yield holder
    finally:
        holder.release()


def fetch_value(database_url: str, statement: str, parameters: tuple[Any, ...] = ()) -> Any:
    """The first column of the first row of a query, on a connection of our own."""
    import psycopg2

    connection = psycopg2.connect(database_url, application_name="proof-observer")
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement, parameters)
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        connection.close()


def app_backends_blocked_by(database_url: str, holder: TableLock) -> int:
    """How many of the app's connections are waiting for a lock that ``holder`` holds."""
    return fetch_value(
        database_url,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'character-forge' AND %s = ANY(pg_blocking_pids(pid))",
        (holder.backend_pid,),
    )
