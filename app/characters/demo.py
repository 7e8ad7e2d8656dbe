"""``flask seed --demo``: a demo account with a dozen characters from the built-in templates."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import select

from app.character_templates.models import Template
from app.characters.models import Character
from app.characters.service import generate_character
from app.extensions import db
from app.users import service as users
from app.users.models import User

DEMO_USERNAME = "demo"
DEMO_EMAIL = "demo@character-forge.example"
DEMO_CHARACTERS = 12
FIRST_SEED = 1000


def seed_demo(echo: Callable[[str], None] = print) -> int:
    """Create the demo user (once) and its characters (each once); return how many were added."""
    user = db.session.scalar(select(User).where(User.username_key == DEMO_USERNAME))
    if user is None:
        password = secrets.token_urlsafe(12)  # never a fixed password: printed once, here
        user = users.create_user(
            email=DEMO_EMAIL, username=DEMO_USERNAME, password=password, display_name="Demo"
        )
        echo(f"Demo user created: {DEMO_EMAIL} / {password}  (shown once; keep it)")
    else:
        echo(f"Demo user {DEMO_EMAIL} exists (password unchanged).")
    builtins = db.session.scalars(
        select(Template).where(Template.owner_id.is_(None)).order_by(Template.slug)
    ).all()
    if not builtins:
        echo("No built-in templates: run `flask seed` first.")
        return 0
    added = 0
    for index in range(DEMO_CHARACTERS):
        template = builtins[index % len(builtins)]
        seed = FIRST_SEED + index
        exists = db.session.scalar(
            select(Character.id).where(
                Character.owner_id == user.id,
                Character.template_id == template.id,
                Character.seed == seed,
            )
        )
        if exists is None:
            generate_character(
                owner=user,
                data={
                    "template_id": template.id,
                    "seed": seed,
                    "locks": {},
                    "rerolls": {},
                    "is_public": index % 2 == 0,
                },
            )
            added += 1
    echo(f"Demo characters: {added} added, {DEMO_CHARACTERS - added} already there.")
    return added
