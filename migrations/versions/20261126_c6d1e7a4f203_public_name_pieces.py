"""An index of the short pieces of public names, for rare public searches (PostgreSQL).

``cf_name_pieces(text)`` is every distinct substring of one, two and four characters of its
argument; the index holds ``cf_name_pieces(lower(name))`` of public characters. A name that
contains a text contains the text's pieces, so a public search may add "the name's pieces
include these" to its ``LIKE`` to reach its candidates through this index (app.characters
.service); the ``LIKE`` still decides. It looks up the text itself when it has one or two
letters, and its four-letter pieces when it has four or more; three letters keep the trigram
index, which finds exactly that trigram.

What it saves, measured on bench/bench_scale.py's million characters (``EXPLAIN ANALYZE`` of
the count of public matches, warm):

* One or two letters have no trigram, so the trigram index cannot narrow them and reads
  itself whole: a rare one (``xq``, ``ü``: no match) took ~250 ms, here 0.03 ms.
* A rare long name made of common trigrams costs the trigram index at least the list of rows of
  its rarest trigram, which grows with the table: ``halkabar`` (24 public matches; ``kab`` is
  in 2,605 public names) took 1.15 ms against 0.13 ms at ten thousand characters. Its
  four-letter pieces (``halk``, ``alka``, ``lkab``…) are much rarer: ~0.2-0.3 ms.

Every public insert or rename also writes the name's pieces (~18 for an eight-letter name):
5,000 public inserts in one statement took ~27 µs more per row with the index. Private
characters are not in it. The function's body is SQL-standard (``RETURN``), bound when it is
created, so it does not depend on the ``search_path`` of whoever calls it.

Building it takes ~7 s at a million characters (and the ANALYZE ~6 s), and blocks writes to
``characters`` meanwhile (as the earlier index migrations do). ANALYZE runs at once, after the
commit. Migrations run without the requests' statement timeout (migrations/env.py).

Revision ID: c6d1e7a4f203
Revises: bf2a392fa611
Create Date: 2026-11-26 07:00:00
"""

from alembic import op

revision = "c6d1e7a4f203"
down_revision = "bf2a392fa611"
branch_labels = None
depends_on = None

INDEX = "ix_characters_public_name_pieces"
FUNCTION = """
CREATE FUNCTION cf_name_pieces(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(
    SELECT DISTINCT substr($1, start, size)
      FROM generate_series(1, length($1)) AS start, unnest('{1,2,4}'::int[]) AS size
     WHERE start + size - 1 <= length($1)
)
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no index for searches at all
    op.execute(FUNCTION)
    # the predicate is written as the list's filter is (is_public IS true), so the planner can
    # prove the filter implies it
    op.execute(
        f"CREATE INDEX {INDEX} ON characters USING gin (cf_name_pieces(lower(name))) "
        "WHERE is_public IS TRUE"
    )
    with op.get_context().autocommit_block():
        op.execute("ANALYZE characters")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
    op.execute("DROP FUNCTION IF EXISTS cf_name_pieces(text)")
