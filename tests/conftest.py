"""Shared fixtures: one migrated database and app per test session, tables emptied after each
test that touched them. ``TEST_DATABASE_URL`` (set by scripts/test.sh) selects PostgreSQL; without
it the suite runs on a SQLite file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db, limiter

SERVER_URL = os.environ.get("TEST_DATABASE_URL")
IS_POSTGRES = bool(SERVER_URL)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs PostgreSQL (TEST_DATABASE_URL)")
    for item in items:
        if "postgres_only" in item.keywords and not IS_POSTGRES:
            item.add_marker(skip)


def create_pg_database(server_url: str, prefix: str = "cf_test") -> str:
    """A fresh, empty database on the test server; returns its URL."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = make_url(server_url)
    conn = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database or "postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(database_url: str) -> None:
    import psycopg2

    url = make_url(database_url)
    conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    conn.close()


def base_config(database_url: str, instance: Path) -> dict[str, Any]:
    return {
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "INSTANCE_PATH": str(instance),
        "PORTRAIT_DIR": str(instance / "portraits"),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "RATELIMIT_LOGIN": "10000 per minute",
        "RATELIMIT_REGISTER": "10000 per minute",
        "RATELIMIT_STORAGE_URI": "memory://",
        "CORS_ORIGINS": "https://app.example.com,http://localhost:3000",
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if SERVER_URL:
        url = create_pg_database(SERVER_URL)
        yield url
        drop_pg_database(url)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def app(database_url: str, instance_dir: Path) -> Iterator[Flask]:
    from flask_migrate import upgrade

    application = create_app(base_config(database_url, instance_dir))
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def truncate_all(application: Flask) -> None:
    with application.app_context():
        tables = [t.name for t in db.metadata.sorted_tables]
        if not tables:
            return
        if db.engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{name}"' for name in tables)
            db.session.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                db.session.execute(text(f'DELETE FROM "{name}"'))
        db.session.commit()
        db.session.remove()


@pytest.fixture(autouse=True)
def _isolate(request: pytest.FixtureRequest) -> Iterator[None]:
    """Empty the tables after every test that used the app (unless its data is shared by a
    module-scoped fixture that cleans up itself: mark the test ``shared_data``)."""
    yield
    if "app" in request.fixturenames and "shared_data" not in request.keywords:
        application = request.getfixturevalue("app")
        truncate_all(application)
        with application.app_context():
            limiter.reset()


@pytest.fixture(scope="session")
def probe_app(app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """An app with the tests-only probe blueprint (depends on ``app`` for the migrations)."""
    from tests.support.probe import register_probe

    return register_probe(
        create_app(base_config(database_url, tmp_path_factory.mktemp("probe-instance")))
    )


@pytest.fixture
def probe(probe_app: Flask) -> FlaskClient:
    return probe_app.test_client()


@pytest.fixture
def app_factory(app: Flask, database_url: str, tmp_path: Path):
    """Build a throw-away app with some settings changed (``None`` removes a setting)."""
    created: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config = {**base_config(database_url, tmp_path), **overrides}
        config = {k: v for k, v in config.items() if v is not None}
        application = create_app(config)
        created.append(application)
        return application

    yield factory
    for application in created:
        with application.app_context():
            db.engine.dispose()
    # restore the suite's logging configuration
    from app.logs import configure_logging

    configure_logging("INFO", "json")


@pytest.fixture
def alice(client: FlaskClient):
    from tests.support.factories import make_account

    return make_account(client, username=f"alice_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def bob(client: FlaskClient):
    from tests.support.factories import make_account

    return make_account(client, username=f"bob_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def admin(app: Flask, client: FlaskClient):
    from tests.support.factories import make_admin

    return make_admin(app, client)


@pytest.fixture(scope="module")
def gunicorn_pg(app: Flask, database_url: str) -> Iterator[Any]:
    """The app under real gunicorn (8 workers) on the suite's database, for concurrency tests."""
    from tests.support.servers import Gunicorn, server_env

    with Gunicorn(server_env(database_url), workers=8) as server:
        yield server


@pytest.fixture
def token(gunicorn_pg: Any) -> dict[str, str]:
    """A fresh user's Authorization header on ``gunicorn_pg``."""
    from tests.support.servers import sign_up_over_http

    return sign_up_over_http(gunicorn_pg.url)
