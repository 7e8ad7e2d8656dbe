"""An index of every four-letter piece of public names, for rare public searches (PostgreSQL).

A trigram index finds a fragment's candidates by intersecting the lists of rows that hold each
of its trigrams, and costs at least its rarest trigram's list, which grows with the table. A
rare name made of common trigrams pays for it: ``halkabar`` (24 public matches in a million
characters) has ``kab`` in 2,605 public names, and the trigram index took 1.15 ms to find its
candidates, against 0.13 ms at ten thousand characters. Four letters are much rarer than three:
the same search through an index of every four-letter piece (``halk``, ``alka``, ``lkab``…)
took 0.22 ms (0.04 at ten thousand); ``torpelel`` 1.32 → 0.35 ms, ``barquinwen`` 1.72 → 0.71
ms (``EXPLAIN ANALYZE`` of the count of public matches, warm, on bench/bench_scale.py's data).

``cf_name_grams(text)`` is the distinct four-character substrings of its argument, and the
index holds ``cf_name_grams(lower(name))`` of public characters. Whatever contains a text
contains each of its four-letter pieces, so ``cf_name_grams(lower(name)) @>
cf_name_grams(text)`` holds for every name that contains ``text``: a search of four letters or
more may add it to its ``LIKE`` to reach its candidates through this index (app.characters
.service), and the ``LIKE`` still decides. Shorter texts have no piece; they keep the trigram
index. The function's body is SQL-standard (``RETURN``), so it is bound when created and does
not depend on the ``search_path`` of whoever calls it.

Building it takes a few seconds at a million characters and blocks writes to ``characters``
meanwhile (as the earlier index migrations do). ANALYZE runs at once, after the commit, so the
planner knows the new expression.

Revision ID: c6d1e7a4f203
Revises: bf2a392fa611
Create Date: 2026-11-26 07:00:00
"""

from alembic import op

revision = "c6d1e7a4f203"
down_revision = "bf2a392fa611"
branch_labels = None
depends_on = None

INDEX = "ix_characters_public_name_grams"
FUNCTION = """
CREATE FUNCTION cf_name_grams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(SELECT DISTINCT substr($1, i, 4) FROM generate_series(1, length($1) - 3) AS i)
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no index for searches at all
    op.execute(FUNCTION)
    # the predicate is written as the list's filter is (is_public IS true), so the planner can
    # prove the filter implies it
    op.execute(
        f"CREATE INDEX {INDEX} ON characters USING gin (cf_name_grams(lower(name))) "
        "WHERE is_public IS TRUE"
    )
    with op.get_context().autocommit_block():
        op.execute("ANALYZE characters")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute("DROP FUNCTION IF EXISTS cf_name_grams(text)")
