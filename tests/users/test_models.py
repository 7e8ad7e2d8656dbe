"""app.users.models.Account: a user's row read by Core, made into the mapped User on demand."""

from __future__ import annotations

import uuid

from sqlalchemy import inspect, select

from app.extensions import db
from app.users.models import Account, User


def _account(user_id: uuid.UUID) -> Account:
    row = db.session.execute(select(*User.__table__.columns).where(User.id == user_id)).one()
    return Account(row._mapping)


def test_as_user_is_a_clean_persistent_user_with_every_column(app, alice):
    with app.app_context():
        account = _account(uuid.UUID(alice.id))
        user = account.as_user(db.session())
        state = inspect(user)
        assert state.persistent and not db.session.dirty
        assert not state.expired_attributes  # every column came with the row: no lazy load
        assert (user.id, user.username, user.row_version) == (
            account.id,
            account.username,
            account.columns["row_version"],
        )
        assert account.is_admin is False


def test_as_user_is_the_one_already_loaded_and_its_changes_are_versioned(app, alice):
    with app.app_context():
        loaded = db.session.get(User, uuid.UUID(alice.id))
        account = _account(loaded.id)
        assert account.as_user(db.session()) is loaded
        loaded.bio = "changed"
        db.session.commit()
        assert loaded.row_version == account.columns["row_version"] + 1
