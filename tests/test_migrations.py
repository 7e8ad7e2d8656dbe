"""Migrations build exactly the schema the models describe, forwards and backwards."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app import create_app
from app.common.schema_compare import include_object
from app.extensions import db
from tests.conftest import SERVER_URL, base_config, create_pg_database, drop_pg_database


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_models_and_migrations_agree(app):
    """Fails when a model changes without a migration (what `flask db check` reports)."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


@pytest.mark.postgres_only
def test_upgrade_downgrade_upgrade_on_postgres(tmp_path):
    from flask_migrate import downgrade, upgrade

    url = create_pg_database(SERVER_URL, prefix="cf_migrate")
    try:
        app = create_app(base_config(url, tmp_path))
        with app.app_context():
            upgrade()
            tables = set(inspect(db.engine).get_table_names())
            assert set(db.metadata.tables) <= tables
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade()
            assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())
            db.engine.dispose()
    finally:
        drop_pg_database(url)


@pytest.mark.postgres_only
def test_migrations_are_not_cut_short_by_the_request_statement_timeout(tmp_path):
    """An index built on a full table takes longer than a request may (the index of name
    pieces: ~7 s at a million characters, against DB_STATEMENT_TIMEOUT_MS' 5 s): migrations run
    without the timeout, on a connection the pool then discards."""
    import psycopg2
    from flask_migrate import upgrade
    from sqlalchemy import text

    from tests.support.sql import run_sql

    url = create_pg_database(SERVER_URL, prefix="cf_migrate")
    try:
        # 200 ms: the connection's own set-up queries stay well within it, even on a loaded
        # machine, while building the index over 100,000 names takes over a second
        app = create_app({**base_config(url, tmp_path), "DB_STATEMENT_TIMEOUT_MS": "200"})
        with app.app_context():
            upgrade(revision="bf2a392fa611")  # the one before the index of name pieces
            run_sql(  # 100,000 public characters, written past the app (no timeout)
                url,
                "INSERT INTO users (id, email, username, username_key, password_hash, "
                "display_name, bio, role, is_active, created_at, updated_at, row_version) "
                "VALUES (gen_random_uuid(), 'm@example.com', 'm', 'm', 'x', 'm', '', 'user', "
                "true, now(), now(), 1); "
                "INSERT INTO characters (id, owner_id, name, attributes, backstory, is_public, "
                "created_at, updated_at, row_version) "
                "SELECT gen_random_uuid(), (SELECT id FROM users), 'Name number ' || n, '{}', "
                "'', true, now(), now(), 1 FROM generate_series(1, 100000) AS n",
            )
            upgrade()  # builds the index over them: far longer than 200 ms
            with db.engine.connect() as connection:  # and requests keep their timeout
                assert connection.scalar(text("SHOW statement_timeout")) == "200ms"
            db.engine.dispose()
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_indexes WHERE indexname = %s",
                ("ix_characters_public_name_pieces",),
            )
            assert cursor.fetchone()[0] == 1
        connection.close()
    finally:
        drop_pg_database(url)


def test_characters_whose_template_was_deleted_lose_its_seed_and_versions(tmp_path):
    """Migration 5fa10b613398 clears, on characters whose template had been deleted, the seed,
    template version, generator version and rerolls they were made with; nothing else."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    url = create_pg_database(SERVER_URL, prefix="cf_migrate") if SERVER_URL else None
    try:
        app = create_app(base_config(url or f"sqlite:///{tmp_path / 'm.db'}", tmp_path))
        with app.app_context():
            upgrade(revision="e2a7c9d41f58")
            with db.engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO users (id, email, username, username_key, password_hash, "
                        "display_name, bio, role, is_active, created_at, updated_at, row_version) "
                        "VALUES ('00000000-0000-0000-0000-0000000000aa', 'm@example.com', 'm', "
                        "'m', 'x', 'm', '', 'user', true, '2026-11-26 00:00:00', "
                        "'2026-11-26 00:00:00', 1)"
                    )
                )
                for number, seed in ((1, 7), (2, None)):  # an orphan, and a free-form one
                    connection.execute(
                        text(
                            "INSERT INTO characters (id, owner_id, name, template_version, seed, "
                            "generator_version, rerolls, attributes, backstory, is_public, "
                            "created_at, updated_at, row_version) VALUES (:id, "
                            "'00000000-0000-0000-0000-0000000000aa', :name, :version, :seed, "
                            ":generator, :rerolls, '{\"str\": 12}', '', false, "
                            "'2026-11-26 00:00:00', '2026-11-26 00:00:00', 1)"
                        ),
                        {
                            "id": f"00000000-0000-0000-0000-00000000000{number}",
                            "name": f"Kept {number}",
                            "version": 3 if seed else None,
                            "seed": seed,
                            "generator": "1" if seed else None,
                            "rerolls": '{"str": 2}' if seed else None,
                        },
                    )
            upgrade()
            with db.engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "SELECT name, template_version, seed, generator_version, rerolls, "
                        "attributes FROM characters ORDER BY name"
                    )
                ).all()
            db.engine.dispose()
        # PostgreSQL's json columns come back parsed, SQLite's text as text
        attributes = [row[5] if isinstance(row[5], dict) else json.loads(row[5]) for row in rows]
        assert [tuple(row[:5]) for row in rows] == [
            ("Kept 1", None, None, None, None),
            ("Kept 2", None, None, None, None),
        ]
        assert attributes == [{"str": 12}, {"str": 12}]
    finally:
        if url:
            drop_pg_database(url)
