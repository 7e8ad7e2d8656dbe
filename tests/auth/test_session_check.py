"""The login-session check carried by a read's first statement (app.auth.session_check): no
separate query, and every revocation, whoever makes it, refused by the very next request on
every worker."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.factories import PASSWORD
from tests.support.sql import run_sql, statements

pytestmark = pytest.mark.postgres_only

PRIVATE = "/api/v1/_probe/private"  # authenticated, touches nothing else
ME = "/api/v1/users/me"
USERS = "/api/v1/users"
GENERATE = "/api/v1/characters/generate"


def test_a_read_sends_its_session_check_with_its_first_statement(probe_app, probe, alice):
    with statements(probe_app) as sent:
        assert probe.get(ME, headers=alice.auth).status_code == 200
    assert len(sent) == 1  # the account, loaded with the check in the same round trip
    assert sent[0].startswith("SELECT cf_assert_live_session(")


def test_a_write_checks_its_session_first_with_a_query_of_its_own(probe_app, probe, alice):
    with statements(probe_app) as sent:
        response = probe.patch(ME, json={"bio": "x"}, headers={**alice.auth, "If-Match": "*"})
    assert response.status_code in (200, 412)
    assert "cf_assert_live_session" not in sent[0]
    assert sent[0].startswith("EXECUTE cf_live_session_account(")  # prepared (app.common.prepared)


def test_a_read_without_any_statement_is_checked_before_it_answers(probe_app, probe, alice):
    with statements(probe_app) as sent:
        assert probe.get(PRIVATE, headers=alice.auth).status_code == 200
    assert len(sent) == 1 and sent[0].startswith("EXECUTE cf_live_session_caller(")


def test_logout_is_seen_by_the_next_request(probe, client, alice):
    assert probe.get(PRIVATE, headers=alice.auth).status_code == 200  # cached by the probe app
    assert client.post("/api/v1/auth/logout", headers=alice.auth).status_code == 204
    response = probe.get(PRIVATE, headers=alice.auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE login_sessions SET revoked_at = now() WHERE user_id = %s",
        "DELETE FROM login_sessions WHERE user_id = %s",
        "UPDATE users SET is_active = false WHERE id = %s",
        "DELETE FROM users WHERE id = %s",
    ],
    ids=["session-revoked", "session-deleted", "user-deactivated", "user-deleted"],
)
@pytest.mark.parametrize("path", [ME, PRIVATE], ids=["with-statements", "without"])
def test_a_change_made_in_sql_is_seen_by_the_next_request(probe, alice, database_url, sql, path):
    assert probe.get(path, headers=alice.auth).status_code == 200
    run_sql(database_url, sql, alice.id)
    response = probe.get(path, headers=alice.auth)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_new_role_counts_from_the_next_request(probe_app, probe, alice, database_url):
    with statements(probe_app) as sent:
        assert probe.get(USERS, headers=alice.auth).status_code == 403
    assert len(sent) == 1  # the role, read with the session
    assert sent[0].startswith("EXECUTE cf_live_session_caller(")
    run_sql(database_url, "UPDATE users SET role = 'admin' WHERE id = %s", alice.id)
    assert probe.get(USERS, headers=alice.auth).status_code == 200
    run_sql(database_url, "UPDATE users SET role = 'user' WHERE id = %s", alice.id)
    assert probe.get(USERS, headers=alice.auth).status_code == 403


def test_reading_ones_own_character_never_asks_for_the_role(probe_app, probe, client, alice):
    created = client.post("/api/v1/characters", json={"name": "Mine"}, headers=alice.auth)
    with statements(probe_app) as sent:
        response = probe.get(f"/api/v1/characters/{created.get_json()['id']}", headers=alice.auth)
    assert response.status_code == 200
    assert len(sent) == 1 and sent[0].startswith("SELECT cf_assert_live_session(")


def test_a_revoked_token_gets_401_even_where_the_request_is_otherwise_invalid(
    probe, alice, database_url
):
    run_sql(
        database_url, "UPDATE login_sessions SET revoked_at = now() WHERE user_id = %s", alice.id
    )
    assert probe.get("/api/v1/characters?page=0", headers=alice.auth).status_code == 401
    assert probe.get(f"/api/v1/characters/{uuid.uuid4()}", headers=alice.auth).status_code == 401


def test_logout_reaches_every_gunicorn_worker_at_once(gunicorn_pg):
    """Eight workers: after a logout's 204, the very next request is refused by whichever worker
    takes it, time after time (reads whose check rides on their first statement)."""
    base = gunicorn_pg.url
    from tests.support.servers import sign_up_over_http

    header = sign_up_over_http(base)
    email = requests.get(f"{base}{ME}", headers=header, timeout=10).json()["email"]
    for _ in range(10):
        token = requests.post(
            f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        with requests.Session() as warm:  # every worker has served the session
            for _ in range(24):
                assert warm.get(f"{base}{ME}", headers=auth, timeout=10).status_code == 200
        assert (
            requests.post(f"{base}/api/v1/auth/logout", headers=auth, timeout=10).status_code == 204
        )
        refused = [
            requests.get(f"{base}{ME}", headers=auth, timeout=10).status_code for _ in range(8)
        ]
        assert refused == [401] * 8


def test_generating_twice_from_one_template_is_three_statements(probe_app, probe, alice):
    """The caller's check loads the account the new character needs, and a compiled template
    already in the worker's cache needs no definition: check, template, insert."""
    from tests.support.factories import create_template

    template = create_template(probe, alice)
    body = {"template_id": template["id"], "seed": 7}
    assert probe.post(GENERATE, json=body, headers=alice.auth).status_code == 201
    with statements(probe_app) as sent:
        assert probe.post(GENERATE, json=body, headers=alice.auth).status_code == 201
    assert len(sent) == 3, sent
    assert sent[0].startswith("EXECUTE cf_live_session_account(")
    assert sent[1].startswith("EXECUTE cf_template_in_use(")
    assert sent[2].startswith("INSERT INTO characters")
    from app.auth.session_check import _LIVE_SESSION_ACCOUNT
    from app.characters.service import _TEMPLATE_IN_USE

    assert "users.password_hash" in str(_LIVE_SESSION_ACCOUNT)  # the account, loaded whole
    assert "definition" not in str(_TEMPLATE_IN_USE)  # the template: five columns


def test_reads_on_a_schema_without_the_function_are_503_not_500(probe, alice, database_url):
    """A release started before 'flask db upgrade': its reads say so (503, Retry-After)."""
    run_sql(database_url, "ALTER FUNCTION cf_assert_live_session(uuid, uuid) RENAME TO cf_hidden")
    try:
        response = probe.get(ME, headers=alice.auth)
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
    finally:
        run_sql(
            database_url, "ALTER FUNCTION cf_hidden(uuid, uuid) RENAME TO cf_assert_live_session"
        )
    assert probe.get(ME, headers=alice.auth).status_code == 200


def test_a_write_to_the_account_uses_the_checks_row_and_reads_nothing_else(probe_app, probe, alice):
    """The write's check reads the whole account; the mapped ``User`` the change needs is made
    from that row (app.users.models.Account.as_user), and its UPDATE still checks the version."""
    etag = probe.get(ME, headers=alice.auth).headers["ETag"]
    with statements(probe_app) as sent:
        response = probe.patch(ME, json={"bio": "new"}, headers={**alice.auth, "If-Match": etag})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["bio"] == "new"
    assert sent[0].startswith("EXECUTE cf_live_session_account(")
    assert not [s for s in sent[1:] if s.startswith("SELECT")], sent
    (update,) = [s for s in sent if s.startswith("UPDATE users")]
    assert "users.row_version = " in update  # the version read by the check
    stale = probe.patch(ME, json={"bio": "old"}, headers={**alice.auth, "If-Match": etag})
    assert stale.status_code == 412
    assert probe.get(ME, headers=alice.auth).get_json()["bio"] == "new"


def test_a_template_made_by_a_write_is_owned_without_loading_the_owner_again(
    probe_app, probe, alice
):
    from tests.support.factories import create_template

    with statements(probe_app) as sent:
        template = create_template(probe, alice)
    assert template["owner"]["username"] == alice.username
    assert sent[0].startswith("EXECUTE cf_live_session_account(")
    assert not [s for s in sent[1:] if "FROM users" in s], sent
