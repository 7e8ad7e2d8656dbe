"""Health, readiness, metrics, and recovery from a database outage."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy.engine import make_url

from tests.support.tcpproxy import TCPProxy


def test_live(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["latency_ms"] >= 0


def test_metrics_are_labelled_by_route_rule(client):
    client.get("/health/live")
    client.get("/no/such/path")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{endpoint="/health/live",method="GET",status="200"}' in text
    assert 'endpoint="<unmatched>"' in text
    assert "http_request_duration_seconds_bucket{" in text
    for gauge in ("db_pool_size", "db_pool_checked_out", "db_pool_overflow"):
        assert f"# TYPE {gauge} gauge" in text
    assert "/no/such/path" not in text


def test_metrics_label_a_405_with_the_route_it_reached(client):
    client.post("/health/live")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{endpoint="/health/live",method="POST",status="405"}' in text


def test_unreachable_database_gives_503(app_factory, tmp_path):
    dead = app_factory(DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/db.sqlite")
    client = dead.test_client()
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.mimetype == "application/json"
    assert ready.get_json()["status"] == "fail"
    assert ready.get_json()["checks"]["database"]["status"] == "fail"
    assert client.get("/health/live").status_code == 200


@pytest.mark.postgres_only
def test_outage_and_recovery_on_postgres(database_url, tmp_path):
    """Cut PostgreSQL off mid-session, then reconnect it: 503s, then recovery without restart."""
    from app import create_app
    from tests.conftest import base_config
    from tests.support.probe import register_probe

    url = make_url(database_url)
    proxy = TCPProxy(url.host, url.port)
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = register_probe(create_app({**base_config(proxied, tmp_path), "DB_CONNECT_TIMEOUT": "2"}))
    client = app.test_client()
    try:
        assert client.get("/api/v1/_probe/db").status_code == 200
        proxy.stop()
        response = client.get("/api/v1/_probe/db")
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["type"] == "/problems/database-unavailable"
        assert int(response.headers["Retry-After"]) > 0
        assert client.get("/health/ready").status_code == 503
        proxy.start()  # same port: the database is back
        deadline = time.monotonic() + 5
        while client.get("/api/v1/_probe/db").status_code != 200:
            assert time.monotonic() < deadline, "no recovery within 5 s"
            time.sleep(0.1)
        assert client.get("/health/ready").status_code == 200
    finally:
        proxy.stop()
        with app.app_context():
            from app.extensions import db

            db.engine.dispose()


def test_database_error_inside_request_is_503_problem(app_factory, tmp_path):
    from tests.support.probe import register_probe

    dead = register_probe(app_factory(DATABASE_URL=f"sqlite:///{tmp_path}/nope/db.sqlite"))
    response = dead.test_client().get("/api/v1/_probe/db")
    assert response.status_code == 503
    assert response.get_json()["type"] == "/problems/database-unavailable"
    assert response.headers["Retry-After"] == "5"


def _empty_database(database_url: str, tmp_path) -> str:
    """A database of the suite's kind that was never migrated."""
    if database_url.startswith("postgresql"):
        from tests.conftest import create_pg_database

        return create_pg_database(database_url, prefix="cf_unmigrated")
    return f"sqlite:///{tmp_path}/never-migrated.sqlite"


def test_a_database_never_migrated_is_not_ready_and_requests_are_503(
    app_factory, database_url, tmp_path
):
    bare = app_factory(DATABASE_URL=_empty_database(database_url, tmp_path))
    client = bare.test_client()
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert "flask db upgrade" in ready.get_json()["checks"]["database"]["error"]
    # no table: a state of the database, 503 with Retry-After, on PostgreSQL too (was a 500)
    login = client.post("/api/v1/auth/login", json={"email": "a@b.example", "password": "x" * 12})
    assert login.status_code == 503
    assert login.get_json()["type"] == "/problems/database-unavailable"


def test_pending_migrations_are_not_ready(app_factory, database_url, tmp_path):
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from app.extensions import db

    behind = app_factory(DATABASE_URL=_empty_database(database_url, tmp_path))
    with behind.app_context():
        script = ScriptDirectory(behind.extensions["migrate"].directory)
        first = next(r for r in script.walk_revisions() if r.down_revision is None).revision
        db.session.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        db.session.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": first})
        db.session.commit()
        ready = behind.test_client().get("/health/ready")
        assert ready.status_code == 503
        assert "migrations pending" in ready.get_json()["checks"]["database"]["error"]
        # a revision this release does not know: a newer release migrated it (rolling deploy)
        db.session.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
        db.session.commit()
        assert behind.test_client().get("/health/ready").status_code == 200


def test_a_file_that_is_not_a_database_is_503(app_factory, tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not an SQLite database file, not at all" * 100)
    broken = app_factory(DATABASE_URL=f"sqlite:///{garbage}")
    client = broken.test_client()
    assert client.get("/health/ready").status_code == 503
    login = client.post("/api/v1/auth/login", json={"email": "a@b.example", "password": "x" * 12})
    assert login.status_code == 503  # was a 500


def test_unknown_methods_do_not_make_new_metric_series(client):
    for method in ("XQYFVEDYSFD", "BREW"):
        client.open("/health/live", method=method)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="other"' in text
    assert "XQYFVEDYSFD" not in text and "BREW" not in text


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("table", 503),  # its cause is logged: the message's first line, no values
        pytest.param("cast", 500, marks=pytest.mark.postgres_only),  # only PostgreSQL fails it
    ],
)
def test_database_errors_never_log_the_values_of_a_statement(probe, caplog, capsys, kind, status):
    secret = "hunter2-4e1f"
    with caplog.at_level(logging.DEBUG):
        response = probe.get(f"/api/v1/_probe/failing-statement?kind={kind}&secret={secret}")
    assert response.status_code == status
    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    logged += "".join(str(record.exc_info) for record in caplog.records if record.exc_info)
    assert "no_such_table" in logged or kind == "cast"  # the cause is there...
    assert secret not in logged  # ...the value is not


@pytest.mark.postgres_only
@pytest.mark.parametrize(("ctype", "warned"), [("C", True), ("C.UTF-8", False)])
def test_a_database_whose_lower_folds_ascii_only_is_reported(
    app_factory, database_url, caplog, ctype, warned
):
    import uuid

    import psycopg2

    url = make_url(database_url)
    name = f"cf_ctype_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            f"LC_COLLATE 'C' LC_CTYPE '{ctype}'"
        )
    admin.close()
    other = url.set(database=name).render_as_string(hide_password=False)
    with caplog.at_level(logging.WARNING, logger="app.common.database"):
        assert app_factory(DATABASE_URL=other).test_client().get("/health/ready").status_code
    assert ("does not fold letters such as É" in caplog.text) is warned
