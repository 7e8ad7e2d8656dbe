"""Indexes that keep every character list fast at a million rows.

(scope column, sort column, id) for both scopes (owner_id for scope=mine, is_public for
scope=public) and every sort (created_at, updated_at, lower(name)), so a page is an index range
scan in either direction; and on PostgreSQL a trigram GIN index on lower(name) for ``?q=``
(pg_trgm, a trusted extension the database owner may create).

Revision ID: 5a1e0c3d9b21
Revises: ce434e69bf8d
Create Date: 2026-11-25 22:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5a1e0c3d9b21"
down_revision = "ce434e69bf8d"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_characters_owner_id_created_at", table_name="characters")
    op.drop_index("ix_characters_is_public_created_at", table_name="characters")
    op.create_index("ix_characters_owner_created", "characters", ["owner_id", "created_at", "id"])
    op.create_index("ix_characters_owner_updated", "characters", ["owner_id", "updated_at", "id"])
    op.create_index("ix_characters_public_created", "characters", ["is_public", "created_at", "id"])
    op.create_index("ix_characters_public_updated", "characters", ["is_public", "updated_at", "id"])
    op.create_index(
        "ix_characters_owner_lower_name",
        "characters",
        ["owner_id", sa.text("lower(name)"), "id"],
    )
    op.create_index(
        "ix_characters_public_lower_name",
        "characters",
        ["is_public", sa.text("lower(name)"), "id"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_characters_name_trgm ON characters "
            "USING gin (lower(name) gin_trgm_ops)"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_characters_name_trgm")
    op.drop_index("ix_characters_public_lower_name", table_name="characters")
    op.drop_index("ix_characters_owner_lower_name", table_name="characters")
    op.drop_index("ix_characters_public_updated", table_name="characters")
    op.drop_index("ix_characters_public_created", table_name="characters")
    op.drop_index("ix_characters_owner_updated", table_name="characters")
    op.drop_index("ix_characters_owner_created", table_name="characters")
    op.create_index("ix_characters_is_public_created_at", "characters", ["is_public", "created_at"])
    op.create_index("ix_characters_owner_id_created_at", "characters", ["owner_id", "created_at"])
