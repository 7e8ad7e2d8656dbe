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
                        "attributes, row_version FROM characters ORDER BY name"
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
        assert [row[6] for row in rows] == [2, 1]  # the changed view has a new ETag
    finally:
        if url:
            drop_pg_database(url)


# --- bd41c7e90a52: stored email addresses in their canonical spelling -----------------------

BEFORE_CANONICAL_EMAILS = "5fa10b613398"


def _fresh_database(tmp_path):
    """A new, empty database of the suite's kind (PostgreSQL under scripts/test.sh)."""
    if SERVER_URL:
        return create_pg_database(SERVER_URL, prefix="cf_migrate")
    return f"sqlite:///{tmp_path / 'migrate.sqlite'}"


def test_stored_addresses_become_canonical_where_no_other_account_has_them(tmp_path, caplog):
    """Oldest first, rewritten unless the canonical spelling is taken; what is left keeps
    signing in with the spelling it registered, and every spelling reaches one account."""
    import logging
    import uuid
    from datetime import UTC, datetime, timedelta

    from flask_migrate import upgrade
    from sqlalchemy import select

    from app.auth import passwords
    from app.users.models import User

    url = _fresh_database(tmp_path)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # key: (address as stored by the earlier code, days after start it registered)
    stored = {
        "zws": ("old@x\u200b.example", 1),  # canonical old@x.example: free, so taken
        "shy": ("old@x\u00ad.example", 2),  # the same mailbox, later: left, warned
        "ace": ("v@xn--bcher-kva.example", 3),
        "quoted": ('"q"@x.example', 4),
        "plain": ("plain@x.example", 5),
        "fullwidth": ("w@\uff58.example", 6),  # older than "w", but w@x.example is taken
        "w": ("w@x.example", 7),
        "refused": ("bad@ab--c.example", 8),  # IDNA refuses the domain: left, warned
    }
    ids = {key: uuid.uuid4() for key in stored}
    try:
        app = create_app(base_config(url, tmp_path))
        with app.app_context():
            upgrade(revision=BEFORE_CANONICAL_EMAILS)
            db.session.execute(
                User.__table__.insert(),
                [
                    {
                        "id": ids[key],
                        "email": email,
                        "username": key,
                        "username_key": key,
                        "password_hash": passwords.hash_password(f"password of {key}"),
                        "display_name": key,
                        "bio": "",
                        "role": "user",
                        "is_active": True,
                        "created_at": start + timedelta(days=days),
                        "updated_at": start + timedelta(days=days),
                        "row_version": 1,
                    }
                    for key, (email, days) in stored.items()
                ],
            )
            db.session.commit()
            with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
                upgrade()
            rows = {
                row.id: row
                for row in db.session.execute(select(User.id, User.email, User.row_version)).all()
            }
            db.session.remove()
        email = {key: rows[ids[key]].email for key in stored}
        assert email == {
            "zws": "old@x.example",
            "shy": "old@x\u00ad.example",
            "ace": "v@b\u00fccher.example",
            "quoted": "q@x.example",
            "plain": "plain@x.example",
            "fullwidth": "w@\uff58.example",
            "w": "w@x.example",
            "refused": "bad@ab--c.example",
        }
        changed = {key for key in stored if rows[ids[key]].row_version == 2}
        assert changed == {"zws", "ace", "quoted"}  # a new ETag for a private view that changed
        warned = {
            key
            for key in stored
            if any(m.startswith(f"users {ids[key]}:") for m in caplog.messages)
        }
        assert warned == {"shy", "fullwidth", "refused"}

        client = app.test_client()

        def signs_in_to(address, key):
            response = client.post(
                "/api/v1/auth/login", json={"email": address, "password": f"password of {key}"}
            )
            assert response.status_code == 200, (address, response.get_json())
            token = response.get_json()["access_token"]
            me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert me.get_json()["id"] == str(ids[key]), address

        for address, key in [
            ("old@x.example", "zws"),
            ("old@x\u200b.example", "zws"),  # the spelling it registered with, rewritten
            ("old@\uff58.example", "zws"),
            ("old@x\u00ad.example", "shy"),  # left over: its own spelling still reaches it
            ("V@XN--BCHER-KVA.example", "ace"),
            ("v@B\u00dcCHER.example", "ace"),
            ('"q"@x.example', "quoted"),
            ("q@x.example", "quoted"),
            ("w@x.example", "w"),
            ("w@\uff58.example", "fullwidth"),
            ("bad@ab--c.example", "refused"),
        ]:
            signs_in_to(address, key)
        # a new account cannot take any spelling of a stored mailbox
        for address in ("old@x\u2060.example", "v@b\u00fccher.example", "w@X.example"):
            taken = client.post(
                "/api/v1/auth/register",
                json={
                    "email": address,
                    "username": f"n{uuid.uuid4().hex[:8]}",
                    "password": "p" * 12,
                },
            )
            assert taken.status_code == 409, address
        with app.app_context():
            db.engine.dispose()
    finally:
        if SERVER_URL:
            drop_pg_database(url)
