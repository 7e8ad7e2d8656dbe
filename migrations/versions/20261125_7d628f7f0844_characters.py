"""Characters.

A character is deleted with its owner; when its template is deleted it keeps its data and its
``template_id`` becomes null. Attributes are JSONB on PostgreSQL. The two composite indexes
serve the two main lists (a user's own characters, and public ones), newest first.

Revision ID: 7d628f7f0844
Revises: 2c4bced63e1b
Create Date: 2026-11-25 22:17:05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "7d628f7f0844"
down_revision = "2c4bced63e1b"
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "characters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("generator_version", sa.String(length=16), nullable=True),
        sa.Column("rerolls", JSON_DOCUMENT, nullable=True),
        sa.Column("attributes", JSON_DOCUMENT, nullable=False),
        sa.Column("backstory", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("portrait_digest", sa.String(length=64), nullable=True),
        sa.Column("portrait_content_type", sa.String(length=32), nullable=True),
        sa.Column("portrait_width", sa.Integer(), nullable=True),
        sa.Column("portrait_height", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_characters_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_characters_template_id_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characters")),
    )
    op.create_index("ix_characters_is_public_created_at", "characters", ["is_public", "created_at"])
    op.create_index("ix_characters_owner_id_created_at", "characters", ["owner_id", "created_at"])
    op.create_index("ix_characters_template_id", "characters", ["template_id"])


def downgrade():
    op.drop_index("ix_characters_template_id", table_name="characters")
    op.drop_index("ix_characters_owner_id_created_at", table_name="characters")
    op.drop_index("ix_characters_is_public_created_at", table_name="characters")
    op.drop_table("characters")
