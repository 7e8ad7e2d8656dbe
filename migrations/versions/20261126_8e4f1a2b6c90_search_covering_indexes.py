"""Searches stay fast at a million rows: public order indexes carry the name; finer statistics.

A ``?q=`` search for a common fragment is fastest walking the list's order index and checking
each name there, without visiting the table: so on PostgreSQL the public (created_at) and
(updated_at) indexes now also carry ``name`` (INCLUDE), for index-only scans. A rare fragment is
fastest through the trigram index. Which is cheaper depends on how many names match, which the
planner estimates from the statistics on ``lower(name)``; at the default detail (100 entries)
it cannot tell a fragment in 0.3% of names from one in 0.01%, so those statistics keep 1,000.
ANALYZE runs at once (after the commit: it reads the targets as committed), so the finer
statistics are in place before the first search.

Revision ID: 8e4f1a2b6c90
Revises: 3b8f2d6a7c41
Create Date: 2026-11-26 03:00:00
"""

from alembic import op

revision = "8e4f1a2b6c90"
down_revision = "3b8f2d6a7c41"
branch_labels = None
depends_on = None

# (index, column number of lower(name) in it)
NAME_STATISTICS = (("ix_characters_name_trgm", 1), ("ix_characters_public_lower_name", 2))
NAME_STATISTICS_TARGET = 1000


def _public_indexes(include_name: bool) -> None:
    for sort in ("created", "updated"):
        name = f"ix_characters_public_{sort}"
        op.drop_index(name, table_name="characters")
        op.create_index(
            name,
            "characters",
            ["is_public", f"{sort}_at", "id"],
            postgresql_include=["name"] if include_name else [],
        )


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no INCLUDE and no per-column statistics targets
    _public_indexes(include_name=True)
    for index, column in NAME_STATISTICS:
        op.execute(
            f"ALTER INDEX {index} ALTER COLUMN {column} SET STATISTICS {NAME_STATISTICS_TARGET}"
        )
    # ANALYZE reads the targets as committed: inside the migration's transaction it would still
    # use the old ones
    with op.get_context().autocommit_block():
        op.execute("ANALYZE characters")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for index, column in NAME_STATISTICS:
        op.execute(f"ALTER INDEX {index} ALTER COLUMN {column} SET STATISTICS -1")
    _public_indexes(include_name=False)
