"""JSON documents kept as sent on PostgreSQL: ``json``, not ``jsonb``.

API.md: a template's ``definition`` "is returned exactly as it was sent (no normalisation)".
``jsonb`` stores a parsed form and gives its members back in its own order (shorter keys
first), so a definition sent as ``{"key", "type", "dice"}`` came back as ``{"key", "dice",
"type"}`` on PostgreSQL while SQLite, which stores the text, kept it. A character's
``attributes`` were reordered the same way (a generated character's came back in that order,
not in its template's field order). ``json`` keeps the text the service wrote, so every backend
answers in the order sent. Nothing queries inside these documents (no ``jsonb`` operator or
index uses them); a ``json`` value also reads back without being re-serialised.

The rows already stored keep the order ``jsonb`` gave them: it is all that was kept. Changing a
column's type rewrites its table and blocks writes to it meanwhile (as the index migrations do).

Revision ID: e2a7c9d41f58
Revises: c6d1e7a4f203
Create Date: 2026-11-26 11:20:00
"""

from alembic import op

revision = "e2a7c9d41f58"
down_revision = "c6d1e7a4f203"
branch_labels = None
depends_on = None

COLUMNS = (
    ("templates", "definition"),
    ("template_versions", "definition"),
    ("characters", "attributes"),
    ("characters", "rerolls"),
)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite stores JSON as text already
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE json USING {column}::json")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE jsonb USING {column}::jsonb")
