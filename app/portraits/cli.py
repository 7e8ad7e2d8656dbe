"""``flask portraits …``: portrait storage maintenance."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.portraits.service import collect_garbage

portraits_cli = AppGroup("portraits", help="Portrait storage.")


@portraits_cli.command("gc")
def gc() -> None:
    """Delete stored portraits that no character points at (run daily)."""
    click.echo(f"Removed {collect_garbage()} orphaned portrait files or records.")
