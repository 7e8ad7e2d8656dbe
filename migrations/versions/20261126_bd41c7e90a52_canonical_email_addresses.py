"""Stored email addresses in their canonical spelling: one mailbox, one account.

Registration stored an address as typed (NFC, trimmed, lower-cased), so one mailbox could
register under several spellings of its domain (``x.example`` with a zero-width space or a soft
hyphen in it, in fullwidth letters; ``bücher.example`` and ``xn--bcher-kva.example``), or with
a needlessly quoted local part (``"v"@x.example``). Registration and sign-in now use one
canonical spelling (``app.users.schemas.normalise_email``): the domain as IDNA 2008 with UTS #46
mapping gives it back in Unicode, a quoted local part whose content is a dot-atom unquoted.

This rewrites the stored addresses to that spelling, oldest account first, where no other
account already has it. An account whose canonical spelling is taken (the same mailbox
registered twice), or whose domain IDNA refuses, is left as it is and named in a warning; it
keeps signing in with the spelling it registered (``app.auth.service``), and an operator can
merge or remove it. The canonicalisation is copied here, not imported: a migration must do
tomorrow what it does today, whatever the application's code becomes.

Downgrade changes nothing: the canonical spellings are valid addresses for the earlier code too,
and the spellings they replaced are not kept.

Revision ID: bd41c7e90a52
Revises: 5fa10b613398
Create Date: 2026-11-26 13:00:00
"""

import logging
import re
import unicodedata
from datetime import UTC, datetime

import idna
import sqlalchemy as sa
from alembic import op

revision = "bd41c7e90a52"
down_revision = "5fa10b613398"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

BATCH = 1000
DOT_ATOM = re.compile(r"[-!#$%&'*+/=?^`{}|~\w]+(\.[-!#$%&'*+/=?^`{}|~\w]+)*\Z")
QUOTED_PAIR = re.compile(r"\\(.)")

users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("row_version", sa.Integer()),
)


def canonical(address):
    """The canonical spelling of a stored address (already NFC and lower-cased), or None when
    its domain is not a valid IDNA domain name."""
    address = unicodedata.normalize("NFC", address).strip().lower()
    local, at, domain = address.rpartition("@")
    if not at:
        return None
    if len(local) >= 2 and local[0] == local[-1] == '"':
        content = QUOTED_PAIR.sub(r"\1", local[1:-1])
        if DOT_ATOM.match(content):
            local = content
    if domain and not domain.startswith("["):  # an address literal is no name
        try:
            domain = idna.decode(idna.encode(domain, uts46=True))
        except idna.IDNAError:
            return None
    return f"{local}@{domain}"


def _misspelt(bind):
    """Every account whose address is not canonical, read in batches of ids: (created_at, id,
    email, canonical or None)."""
    found, last = [], None
    while True:
        statement = sa.select(users.c.id, users.c.email, users.c.created_at).order_by(users.c.id)
        if last is not None:
            statement = statement.where(users.c.id > last)
        rows = bind.execute(statement.limit(BATCH)).all()
        if not rows:
            return found
        for row in rows:
            spelling = canonical(row.email)
            if spelling != row.email:
                found.append((row.created_at, row.id, row.email, spelling))
        last = rows[-1].id


def upgrade():
    bind = op.get_bind()
    for _created_at, user_id, email, spelling in sorted(_misspelt(bind)):
        if spelling is None:
            log.warning(
                "users %s: %r left as it is: its domain is not a valid IDNA domain name",
                user_id,
                email,
            )
            continue
        taken = bind.execute(sa.select(users.c.id).where(users.c.email == spelling)).first()
        if taken is not None:
            log.warning(
                "users %s: %r left as it is: its canonical spelling %r is the address of "
                "users %s (the same mailbox registered twice); it still signs in as spelt",
                user_id,
                email,
                spelling,
                taken.id,
            )
            continue
        bind.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                email=spelling,
                # the private view changed: a new ETag, and when
                row_version=users.c.row_version + 1,
                updated_at=datetime.now(UTC),
            )
        )


def downgrade():
    pass
