"""Templates (with every version's definition and their tags) and Idempotency-Key records.

Definitions are JSONB on PostgreSQL and JSON text on SQLite. Tags live in their own table with
an index on ``tag``, so ``?tag=`` is an indexed lookup on both backends. A template is deleted
with its owner; a fork's ``forked_from`` becomes null when the original goes.

Revision ID: 2c4bced63e1b
Revises: d9579b77073c
Create Date: 2026-11-25 22:11:57
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "2c4bced63e1b"
down_revision = "d9579b77073c"
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_headers", JSON_DOCUMENT, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "user_id", "operation", "key", name=op.f("uq_idempotency_keys_user_id_operation_key")
        ),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"])

    op.create_table(
        "templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("slug", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSON_DOCUMENT, nullable=False),
        sa.Column("forked_from", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["forked_from"],
            ["templates.id"],
            name=op.f("fk_templates_forked_from_templates"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_templates_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("slug", name=op.f("uq_templates_slug")),
    )
    op.create_index("ix_templates_is_public", "templates", ["is_public"])
    op.create_index("ix_templates_owner_id_name", "templates", ["owner_id", "name"])

    op.create_table(
        "template_tags",
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=30), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_tags_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("template_id", "tag", name=op.f("pk_template_tags")),
    )
    op.create_index(op.f("ix_template_tags_tag"), "template_tags", ["tag"])

    op.create_table(
        "template_versions",
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_versions_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("template_id", "version", name=op.f("pk_template_versions")),
    )


def downgrade():
    op.drop_table("template_versions")
    op.drop_index(op.f("ix_template_tags_tag"), table_name="template_tags")
    op.drop_table("template_tags")
    op.drop_index("ix_templates_owner_id_name", table_name="templates")
    op.drop_index("ix_templates_is_public", table_name="templates")
    op.drop_table("templates")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
