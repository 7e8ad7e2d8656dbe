"""Pooled PostgreSQL connections: reads without a transaction or an ORM session of their own,
liveness checked without a ping unless in doubt (app.common.database)."""

from __future__ import annotations

from typing import Any

import psycopg2
import pytest
from flask import Flask

from app.common import database
from app.extensions import db

pytestmark = pytest.mark.postgres_only

CONNECTION = "/api/v1/_probe/connection"
PUBLIC_CONNECTION = "/api/v1/_probe/public-connection"


@pytest.fixture
def pings(probe_app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ping the dialect sends (the real ping still runs)."""
    with probe_app.app_context():
        dialect = db.engine.dialect
    sent: list[Any] = []
    real_ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        sent.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return sent


def terminate(database_url: str, pid: int) -> None:
    """End a backend as a restart would, and wait until it has gone (its socket closed)."""
    connection = psycopg2.connect(database_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            assert cursor.fetchone() == (True,)
    finally:
        connection.close()


def test_authenticated_reads_run_without_a_transaction_and_writes_with_one(probe_app, probe, alice):
    read = probe.get(CONNECTION, headers=alice.auth)
    assert read.status_code == 200
    assert read.get_json()["in_transaction"] is False  # no BEGIN, so no ROLLBACK either
    # every connection went back to the pool switched back to transactions
    with probe_app.app_context():
        pool = db.engine.pool
        held = [pool.connect() for _ in range(pool.checkedin())]
        try:
            assert held and all(not c.dbapi_connection.autocommit for c in held)
        finally:
            for connection in held:
                connection.close()
    write = probe.post(CONNECTION, headers=alice.auth)
    assert write.status_code == 200
    assert write.get_json()["in_transaction"] is True


def test_public_reads_run_without_a_transaction_too(probe):
    response = probe.get(PUBLIC_CONNECTION)
    assert response.status_code == 200
    assert response.get_json()["in_transaction"] is False


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_request_holds_one_connection_for_its_core_and_orm_statements(
    probe_app, probe, alice, method
):
    response = getattr(probe, method)(CONNECTION, headers=alice.auth)
    assert response.status_code == 200
    assert response.get_json()["shared"] is True
    assert response.get_json()["checked_out"] == 1
    with probe_app.app_context():
        assert db.engine.pool.checkedout() == 0  # and it went back at the end


def test_a_read_that_fails_gives_its_connection_back(probe_app, probe, alice):
    missing = probe.get(
        "/api/v1/characters/3f0c2a9e-5b8e-4e59-9d8f-0f5cf1d2b7a1", headers=alice.auth
    )
    assert missing.status_code == 404  # after its statement ran
    with probe_app.app_context():
        assert db.engine.pool.checkedout() == 0


def test_a_healthy_connection_is_not_pinged(probe, pings, monkeypatch):
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 3600.0)  # none counts as idle for long
    for _ in range(5):
        assert probe.get(PUBLIC_CONNECTION).status_code == 200
    assert pings == []


def pooled_backends(application: Flask) -> list[int]:
    """The server process ids of every connection resting in the app's pool."""
    with application.app_context():
        pool = db.engine.pool
        held = [pool.connect() for _ in range(pool.checkedin())]
        try:
            return [c.dbapi_connection.info.backend_pid for c in held]
        finally:
            for connection in held:
                connection.close()


def test_a_connection_the_server_closed_is_replaced_on_checkout(
    probe_app, probe, pings, database_url
):
    assert probe.get(PUBLIC_CONNECTION).status_code == 200
    before = pooled_backends(probe_app)
    for pid in before:  # what a restart or a crash does to every pooled connection
        terminate(database_url, pid)
    del pings[:]
    response = probe.get(PUBLIC_CONNECTION)
    assert response.status_code == 200, response.get_json()  # no 503: caught before use
    assert response.get_json()["pid"] not in before
    # the readable socket was confirmed dead by a real ping, and the pool invalidated
    assert len(pings) == 1


def test_a_connection_idle_for_long_is_pinged(probe, pings, monkeypatch):
    assert probe.get(PUBLIC_CONNECTION).status_code == 200
    monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)  # every used connection is "idle"
    for _ in range(3):
        assert probe.get(PUBLIC_CONNECTION).status_code == 200
    assert pings  # (a connection opened by this very checkout needs none)


def test_socket_has_data_sees_what_the_server_sent(database_url):
    connection = psycopg2.connect(database_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        assert database.socket_has_data(connection.fileno()) is False  # every reply was read
        terminate(database_url, pid)
        assert database.socket_has_data(connection.fileno()) is True  # the notice, then EOF
    finally:
        connection.close()
