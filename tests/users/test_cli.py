"""`flask users create-admin` and `flask auth prune`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.support.factories import login, make_account, unique_name


def test_create_admin_from_stdin(app, client):
    name = unique_name("root")
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "--email", f"{name}@example.com", "--username", name,
              "--password-stdin"],
        input="a long admin password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created admin" in result.output
    tokens = login(client, f"{name}@example.com", "a long admin password").get_json()
    me = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.get_json()["role"] == "admin"


def test_create_admin_prompts_twice_and_hides_the_password(app):
    name = unique_name("root")
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "--email", f"{name}@example.com", "--username", name],
        input="a long admin password\na long admin password\n",
    )
    assert result.exit_code == 0, result.output
    assert "a long admin password" not in result.output


def test_create_admin_rejects_bad_input(app, client):
    runner = app.test_cli_runner()
    weak = runner.invoke(
        args=["users", "create-admin", "--email", "x@example.com", "--username", "root_x",
              "--password-stdin"],
        input="short\n",
    )  # fmt: skip
    assert weak.exit_code == 1
    assert "password" in weak.output
    taken = make_account(client)
    duplicate = runner.invoke(
        args=["users", "create-admin", "--email", taken.email, "--username", "fresh_name",
              "--password-stdin"],
        input="a long admin password\n",
    )  # fmt: skip
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output


def test_auth_prune_removes_expired_and_old_revoked_sessions(app, client):
    from app.auth.models import LoginSession
    from app.common.types import utcnow
    from app.extensions import db

    live = make_account(client)
    old = make_account(client)
    with app.app_context():
        sessions = db.session.scalars(select(LoginSession)).all()
        for session in sessions:
            if str(session.user_id) == old.id:
                session.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["auth", "prune"])
    assert result.exit_code == 0
    assert "Deleted 1 login sessions" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 1
    assert client.get("/api/v1/users/me", headers=live.auth).status_code == 200
    assert client.get("/api/v1/users/me", headers=old.auth).status_code == 401


def test_create_admin_counts_the_password_on_its_nfc_form(app, client):
    runner = app.test_cli_runner()
    name = unique_name("root")
    short = runner.invoke(
        args=["users", "create-admin", "--email", f"{name}@example.com", "--username", name,
              "--password-stdin"],
        input="e\u0301" * 5 + "\n",  # 10 code points, 5 characters once composed
    )  # fmt: skip
    assert short.exit_code == 1
    assert "password" in short.output
    long_enough = runner.invoke(
        args=["users", "create-admin", "--email", f"{name}@example.com", "--username", name,
              "--password-stdin"],
        input="e\u0301" * 10 + "\n",
    )  # fmt: skip
    assert long_enough.exit_code == 0, long_enough.output
    assert login(client, f"{name}@example.com", "\u00e9" * 10).status_code == 200
