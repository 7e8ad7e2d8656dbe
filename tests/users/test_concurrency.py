"""Two admins who demote each other at the same moment: one wins, one admin stays."""

from __future__ import annotations

import pytest
import requests

from tests.support.concurrency import simultaneously
from tests.support.factories import PASSWORD, unique_name

# on both databases: PostgreSQL locks the admins' rows, SQLite its write lock (users.service)


def _admin_over_http(app, base_url: str) -> tuple[str, dict[str, str]]:
    from app.users import service

    name = unique_name("admin")
    with app.app_context():
        user_id = str(service.create_user(
            email=f"{name}@example.com", username=name, password=PASSWORD, role="admin"
        ).id)  # fmt: skip
    login = requests.post(
        f"{base_url}/api/v1/auth/login",
        json={"email": f"{name}@example.com", "password": PASSWORD},
        timeout=10,
    )
    return user_id, {"Authorization": f"Bearer {login.json()['access_token']}"}


def _demote_each_other(app, base_url: str, change: dict) -> list[requests.Response]:
    """Make the only two admins, then have each send ``change`` for the other at once."""
    (first_id, first_auth), (second_id, second_auth) = (
        _admin_over_http(app, base_url),
        _admin_over_http(app, base_url),
    )
    pairs = iter([(first_auth, second_id), (second_auth, first_id)])

    def demote(session: requests.Session) -> requests.Response:
        auth, target = next(pairs)
        return session.patch(
            f"{base_url}/api/v1/users/{target}", json=change, headers=auth, timeout=30
        )

    return simultaneously(2, demote)


@pytest.mark.parametrize("change", [{"role": "user"}, {"is_active": False}])
def test_the_last_two_admins_demoting_each_other_leave_one(app, gunicorn_pg, change):
    from sqlalchemy import func, select, update

    from app.extensions import db
    from app.users.models import User

    active_admins = select(func.count()).where(User.role == "admin", User.is_active)
    for _ in range(10):
        with app.app_context():
            db.session.execute(update(User).values(role="user"))  # no admin left from before
            db.session.commit()
        responses = _demote_each_other(app, gunicorn_pg.url, change)
        statuses = sorted(r.status_code for r in responses)
        # the loser: 409 when both got past the admin check; when the winner had committed
        # before it, 403 (demoted) or 401 (deactivated: its tokens were revoked)
        assert statuses in ([200, 401], [200, 403], [200, 409]), [r.text for r in responses]
        with app.app_context():
            assert db.session.scalar(active_admins) == 1
