"""``flask users …``: account administration from the command line."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from marshmallow import ValidationError

from app.errors import Conflict
from app.users import service
from app.users.schemas import RegisterSchema

users_cli = AppGroup("users", help="Manage accounts.")


@users_cli.command("create-admin")
@click.option("--email", required=True, help="The admin's email address.")
@click.option("--username", required=True, help="3..32 of A-Z a-z 0-9 _ -")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of prompting (never from argv).",
)
def create_admin(email: str, username: str, password_stdin: bool) -> None:
    """Create an administrator account (the only way to make the first admin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = RegisterSchema().load({"email": email, "username": username, "password": password})
    except ValidationError as error:
        for field, messages in error.normalized_messages().items():
            click.echo(f"error: {field}: {' '.join(map(str, messages))}", err=True)
        raise SystemExit(1) from None
    try:
        user = service.create_user(**data, role="admin")
    except Conflict as error:
        click.echo(f"error: {error.detail}", err=True)
        raise SystemExit(1) from None
    click.echo(f"Created admin {user.username} ({user.id}).")
