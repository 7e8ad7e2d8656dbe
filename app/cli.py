"""Top-level CLI commands: ``flask seed`` and ``flask idempotency prune``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError
from sqlalchemy import select

from app.character_templates import service as templates
from app.character_templates.models import Template
from app.character_templates.schemas import TemplateCreate
from app.common.idempotency import prune_expired
from app.extensions import db

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seed_builtin_templates(directory: Path = SEEDS / "templates") -> dict[str, int]:
    """Upsert every ``*.json`` in ``directory`` by its slug; running twice changes nothing."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        slug = raw.pop("slug")
        try:
            data = TemplateCreate().load({**raw, "is_public": True})
        except ValidationError as error:
            raise click.ClickException(f"{path.name}: {error.normalized_messages()}") from None
        existing = db.session.scalar(select(Template).where(Template.slug == slug))
        if existing is None:
            templates.create_template(owner=None, data=data, slug=slug)
            counts["created"] += 1
            continue
        changes = {
            key: value
            for key, value in data.items()
            if (existing.tags if key == "tags" else getattr(existing, key)) != value
        }
        if changes:
            templates.update_template(template=existing, data=changes)
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    return counts


@click.command("seed")
@with_appcontext
@click.option("--demo", is_flag=True, help="Also add a demo user with characters.")
def seed_command(demo: bool) -> None:
    """Load the built-in templates from seeds/templates (safe to run twice)."""
    counts = seed_builtin_templates()
    click.echo(
        "Built-in templates: {created} created, {updated} updated, {unchanged} unchanged.".format(
            **counts
        )
    )
    if demo:
        from app.characters.demo import seed_demo

        seed_demo(echo=click.echo)


idempotency_cli = AppGroup("idempotency", help="Idempotency-Key records.")


@idempotency_cli.command("prune")
def prune_idempotency() -> None:
    """Delete Idempotency-Key records past their retention (run daily)."""
    click.echo(f"Deleted {prune_expired()} expired idempotency keys.")
