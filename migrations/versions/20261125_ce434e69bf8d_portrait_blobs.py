"""Portrait blobs, for PORTRAIT_STORAGE=database (shared by every instance).

Each (character, digest) has a ``full`` and a ``thumb`` rendition; blobs are deleted with their
character.

Revision ID: ce434e69bf8d
Revises: 7d628f7f0844
Create Date: 2026-11-25 22:20:02
"""

import sqlalchemy as sa
from alembic import op

revision = "ce434e69bf8d"
down_revision = "7d628f7f0844"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "portrait_blobs",
        sa.Column("character_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("rendition", sa.String(length=8), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["character_id"],
            ["characters.id"],
            name=op.f("fk_portrait_blobs_character_id_characters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "character_id", "digest", "rendition", name=op.f("pk_portrait_blobs")
        ),
    )


def downgrade():
    op.drop_table("portrait_blobs")
