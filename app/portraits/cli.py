"""``flask portraits …``: portrait storage maintenance."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.portraits.service import collect_garbage

portraits_cli = AppGroup("portraits", help="Portrait storage.")


@portraits_cli.command("gc")
def gc() -> None:
    """Delete stored portraits that no character points at (run daily).

    Only those an hour old or more: an upload writes its image before its character points at
    it, so a younger one may belong to an upload that has not committed yet.
    """
    removed = collect_garbage()
    click.echo(
        f"Removed {removed} orphaned portraits (a full image and a thumbnail each) and "
        "temporary upload files."
    )
