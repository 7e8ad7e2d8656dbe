"""Migrations build exactly the schema the models describe, forwards and backwards."""

from __future__ import annotations

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
