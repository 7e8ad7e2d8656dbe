"""Health, readiness, metrics, and recovery from a database outage."""

from __future__ import annotations

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
