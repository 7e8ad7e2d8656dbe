"""Idempotency keys remember the resource their work created, in the work's own transaction.

Revision ID: 9075fd19dd01
Revises: 5a1e0c3d9b21
Create Date: 2026-11-25 22:54:10
"""

import sqlalchemy as sa
from alembic import op

revision = "9075fd19dd01"
down_revision = "5a1e0c3d9b21"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.add_column(sa.Column("resource_id", sa.Uuid(), nullable=True))


def downgrade():
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.drop_column("resource_id")
