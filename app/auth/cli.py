"""``flask auth …``: maintenance of login sessions."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.auth.service import prune_sessions

auth_cli = AppGroup("auth", help="Login sessions.")


@auth_cli.command("prune")
def prune() -> None:
    """Delete expired login sessions and ones revoked more than a day ago (run daily)."""
    click.echo(f"Deleted {prune_sessions()} login sessions.")
