"""What Alembic compares between the models and the database (env.py and the drift test)."""

from __future__ import annotations

from typing import Any


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Expression indexes are written by hand in migrations; Alembic cannot compare them."""
    from app.characters.models import EXPRESSION_INDEXES

    return not (type_ == "index" and name in EXPRESSION_INDEXES)
