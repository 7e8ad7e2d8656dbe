"""/users: your own account with ETag/If-Match, public profiles, admin moderation."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.factories import PASSWORD, login, make_account, register

ME = "/api/v1/users/me"


def test_me_has_an_etag_and_honours_if_none_match(client, alice):
    response = client.get(ME, headers=alice.auth)
    assert response.status_code == 200
    assert response.get_json()["email"] == alice.email
    assert response.headers["Cache-Control"] == "no-store"
    etag = response.headers["ETag"]
    again = client.get(ME, headers={**alice.auth, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    assert client.get(ME, headers={**alice.auth, "If-None-Match": '"other"'}).status_code == 200


def test_patch_me_requires_if_match(client, alice):
    missing = client.patch(ME, json={"display_name": "New"}, headers=alice.auth)
    assert missing.status_code == 428
    assert missing.get_json()["type"] == "/problems/precondition-required"
    stale = client.patch(
        ME, json={"display_name": "New"}, headers={**alice.auth, "If-Match": '"stale"'}
    )
    assert stale.status_code == 412
    assert stale.get_json()["type"] == "/problems/precondition-failed"
    assert client.get(ME, headers=alice.auth).get_json()["display_name"] == alice.username


def test_patch_me_updates_and_returns_the_next_etag(client, alice):
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    response = client.patch(
        ME,
        json={
            "display_name": "  Alice\u0007 the Bold ",
            "bio": '<p onclick="x">Hi</p><script>x</script>',
        },
        headers={**alice.auth, "If-Match": etag},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["display_name"] == "Alice the Bold"
    assert body["bio"] == "<p>Hi</p>"
    assert response.headers["ETag"] != etag
    assert client.get(ME, headers=alice.auth).headers["ETag"] == response.headers["ETag"]
    # the old ETag is stale now
    stale = client.patch(ME, json={"bio": ""}, headers={**alice.auth, "If-Match": etag})
    assert stale.status_code == 412


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin"},
        {"is_active": False},
        {"email": "new@example.com"},
        {"id": str(uuid.uuid4())},
        {"username": "renamed"},
        {"bio": "b" * 1001},
        {"display_name": ""},
        {"password": "a new password!"},
        {"current_password": PASSWORD},
        {"password": "short", "current_password": PASSWORD},
    ],
)
def test_patch_me_rejects_bad_or_server_owned_fields(client, alice, body):
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    response = client.patch(ME, json=body, headers={**alice.auth, "If-Match": etag})
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"]
    assert client.get(ME, headers=alice.auth).headers["ETag"] == etag


def test_long_form_length_counts_what_the_client_wrote(client, alice):
    # the sanitiser writes & and < as &amp; and &lt;: that must not make a bio of 1000
    # characters (the documented maxLength) count as more
    bio = ("Tom & Jerry <3 " * 100)[:1000]
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    response = client.patch(ME, json={"bio": bio}, headers={**alice.auth, "If-Match": etag})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["bio"].startswith("Tom &amp; Jerry &lt;3")
    etag = response.headers["ETag"]
    longer = client.patch(ME, json={"bio": bio + "&"}, headers={**alice.auth, "If-Match": etag})
    assert longer.status_code == 422
    assert "bio" in longer.get_json()["errors"]["json"]


def test_wrong_current_password_is_422_on_that_field(client, alice):
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    response = client.patch(
        ME,
        json={"password": "a new password!", "current_password": "not my password"},
        headers={**alice.auth, "If-Match": etag},
    )
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]) == ["current_password"]
    assert login(client, alice.email).status_code == 200


def test_delete_me(client, alice, bob):
    assert client.delete(ME, headers=alice.auth).status_code == 428
    assert client.delete(ME, headers={**alice.auth, "If-Match": '"x"'}).status_code == 412
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    assert client.delete(ME, headers={**alice.auth, "If-Match": etag}).status_code == 204
    assert client.get(ME, headers=alice.auth).status_code == 401
    assert login(client, alice.email).status_code == 401
    assert client.get(f"/api/v1/users/{alice.id}", headers=bob.auth).status_code == 404


def test_the_only_active_admin_cannot_delete_their_account(app, client):
    from tests.support.factories import make_admin

    only = make_admin(app, client)
    etag = client.get(ME, headers=only.auth).headers["ETag"]
    refused = client.delete(ME, headers={**only.auth, "If-Match": etag})
    assert refused.status_code == 409  # as demoting or deactivating them is
    assert refused.get_json()["errors"]["json"]["_schema"]
    assert client.get(ME, headers=only.auth).status_code == 200
    make_admin(app, client)  # with another admin, they may go
    assert client.delete(ME, headers={**only.auth, "If-Match": etag}).status_code == 204


def test_public_and_private_views(client, alice, bob, admin):
    public = client.get(f"/api/v1/users/{alice.id}", headers=bob.auth)
    assert public.status_code == 200
    assert set(public.get_json()) == {"id", "username", "display_name", "bio", "created_at"}
    assert public.headers["ETag"]
    own = client.get(f"/api/v1/users/{alice.id}", headers=alice.auth).get_json()
    assert own["email"] == alice.email
    moderated = client.get(f"/api/v1/users/{alice.id}", headers=admin.auth).get_json()
    assert moderated["email"] == alice.email and moderated["role"] == "user"


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_unknown_or_malformed_user_id_is_404(client, alice, user_id):
    response = client.get(f"/api/v1/users/{user_id}", headers=alice.auth)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_deactivated_users_are_hidden_except_from_admins(client, alice, bob, admin):
    response = client.patch(
        f"/api/v1/users/{alice.id}", json={"is_active": False}, headers=admin.auth
    )
    assert response.status_code == 200
    assert response.get_json()["is_active"] is False
    assert response.headers["ETag"]
    assert client.get(f"/api/v1/users/{alice.id}", headers=bob.auth).status_code == 404
    assert client.get(f"/api/v1/users/{alice.id}", headers=admin.auth).status_code == 200
    # reactivation does not revive the old tokens
    client.patch(f"/api/v1/users/{alice.id}", json={"is_active": True}, headers=admin.auth)
    assert client.get(ME, headers=alice.auth).status_code == 401
    assert login(client, alice.email).status_code == 200


def test_admin_endpoints_are_403_for_users(client, alice, bob):
    assert client.get("/api/v1/users", headers=alice.auth).status_code == 403
    response = client.patch(f"/api/v1/users/{bob.id}", json={"role": "admin"}, headers=alice.auth)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    me = client.patch(f"/api/v1/users/{alice.id}", json={"role": "admin"}, headers=alice.auth)
    assert me.status_code == 403


def test_admin_can_promote(client, alice, admin):
    response = client.patch(f"/api/v1/users/{alice.id}", json={"role": "admin"}, headers=admin.auth)
    assert response.get_json()["role"] == "admin"
    assert client.get("/api/v1/users", headers=alice.auth).status_code == 200


@pytest.mark.parametrize(
    "body", [{"role": "superuser"}, {"is_active": "no"}, {"email": "x@example.com"}, {"bio": "x"}]
)
def test_admin_patch_validates(client, alice, admin, body):
    response = client.patch(f"/api/v1/users/{alice.id}", json=body, headers=admin.auth)
    assert response.status_code == 422


def test_admin_patch_of_unknown_user_is_404(client, admin):
    response = client.patch(
        f"/api/v1/users/{uuid.uuid4()}", json={"role": "admin"}, headers=admin.auth
    )
    assert response.status_code == 404


def test_admin_list_search_sort_and_pages(client, admin):
    names = [f"zed_{i}_{uuid.uuid4().hex[:4]}" for i in range(5)]
    for name in names:
        make_account(client, username=name, email=f"{name}@zed.example")
    response = client.get(
        "/api/v1/users?q=ZED&sort=-username&page_size=2&page=1", headers=admin.auth
    )
    assert response.status_code == 200
    assert [u["username"] for u in response.get_json()] == sorted(names, reverse=True)[:2]
    meta = json.loads(response.headers["X-Pagination"])
    assert meta["total"] == 5 and meta["total_pages"] == 3
    assert 'rel="next"' in response.headers["Link"]
    by_email = client.get("/api/v1/users?q=zed.example", headers=admin.auth)
    assert json.loads(by_email.headers["X-Pagination"])["total"] == 5
    underscore = client.get("/api/v1/users?q=%25", headers=admin.auth)  # a literal '%'
    assert json.loads(underscore.headers["X-Pagination"])["total"] == 0
    assert client.get("/api/v1/users?sort=email", headers=admin.auth).status_code == 422
    assert client.get("/api/v1/users?role=admin", headers=admin.auth).status_code == 422


@pytest.mark.parametrize(
    "q",
    [
        "xn--bcher-kva",  # the ASCII form a mail log shows
        "XN--BCHER-KVA.example",
        "b\u00fccher.example",  # the stored Unicode form
        "b\u00fccher\u00ad.example",  # a soft-hyphenated spelling of it
    ],
)
def test_admins_find_an_address_by_any_spelling_of_its_domain(client, admin, q):
    account = make_account(client, email=f"{uuid.uuid4().hex[:8]}@xn--bcher-kva.example")
    found = client.get("/api/v1/users", query_string={"q": q}, headers=admin.auth).get_json()
    assert [user["id"] for user in found] == [account.id]


# --- ETags per view, If-None-Match on /users/{id}, If-Match on admin PATCH -------------------


def test_user_by_id_honours_if_none_match_in_each_view(client, alice, bob, admin):
    url = f"/api/v1/users/{alice.id}"
    for viewer in (bob, alice, admin):
        etag = client.get(url, headers=viewer.auth).headers["ETag"]
        again = client.get(url, headers={**viewer.auth, "If-None-Match": etag})
        assert again.status_code == 304
        assert again.headers["ETag"] == etag
        assert again.get_data() == b""
    assert client.get(url, headers={**bob.auth, "If-None-Match": '"other"'}).status_code == 200


def test_public_and_private_views_have_their_own_etags(client, alice, bob, admin):
    url = f"/api/v1/users/{alice.id}"
    public = client.get(url, headers=bob.auth).headers["ETag"]
    own = client.get(url, headers=alice.auth).headers["ETag"]
    moderated = client.get(url, headers=admin.auth).headers["ETag"]
    me = client.get(ME, headers=alice.auth).headers["ETag"]
    assert public != own
    assert own == moderated == me  # the private view is one body, so one ETag
    # a tag of one view is never a 304 for the other
    assert client.get(url, headers={**alice.auth, "If-None-Match": public}).status_code == 200
    assert client.get(url, headers={**bob.auth, "If-None-Match": own}).status_code == 200
    # If-Match on /users/me still takes the ETag of GET /users/me, and not the public one
    stale = client.patch(ME, json={"bio": "x"}, headers={**alice.auth, "If-Match": public})
    assert stale.status_code == 412
    current = client.patch(ME, json={"bio": "x"}, headers={**alice.auth, "If-Match": me})
    assert current.status_code == 200


def test_write_etags_equal_the_next_get_of_the_same_view(client, admin):
    registered = register(client)
    assert registered.status_code == 201
    user_id = registered.get_json()["id"]
    url = f"/api/v1/users/{user_id}"
    assert client.get(url, headers=admin.auth).headers["ETag"] == registered.headers["ETag"]
    promoted = client.patch(url, json={"role": "admin"}, headers=admin.auth)
    assert promoted.status_code == 200
    assert client.get(url, headers=admin.auth).headers["ETag"] == promoted.headers["ETag"]
    account = login(client, registered.get_json()["email"]).get_json()
    auth = {"Authorization": f"Bearer {account['access_token']}"}
    assert client.get(ME, headers=auth).headers["ETag"] == promoted.headers["ETag"]
    patched = client.patch(
        ME, json={"bio": "hi"}, headers={**auth, "If-Match": promoted.headers["ETag"]}
    )
    assert patched.status_code == 200
    assert client.get(ME, headers=auth).headers["ETag"] == patched.headers["ETag"]
    assert client.get(url, headers=auth).headers["ETag"] == patched.headers["ETag"]


def test_admin_patch_evaluates_an_if_match_that_is_sent(client, alice, admin):
    url = f"/api/v1/users/{alice.id}"
    etag = client.get(url, headers=admin.auth).headers["ETag"]
    stale = client.patch(url, json={"role": "admin"}, headers={**admin.auth, "If-Match": '"stale"'})
    assert stale.status_code == 412
    assert stale.get_json()["type"] == "/problems/precondition-failed"
    assert client.get(url, headers=admin.auth).get_json()["role"] == "user"
    assert client.get(url, headers=admin.auth).headers["ETag"] == etag  # nothing changed
    current = client.patch(url, json={"role": "admin"}, headers={**admin.auth, "If-Match": etag})
    assert current.status_code == 200 and current.get_json()["role"] == "admin"
    # the ETag of before the change is stale now
    again = client.patch(url, json={"role": "user"}, headers={**admin.auth, "If-Match": etag})
    assert again.status_code == 412
    # without If-Match it proceeds, as the contract says none is needed
    assert client.patch(url, json={"role": "user"}, headers=admin.auth).status_code == 200


# --- the last active admin ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"role": "user"}, {"role"}),
        ({"is_active": False}, {"is_active"}),
        ({"role": "user", "is_active": False}, {"role", "is_active"}),
        ({"role": "admin", "is_active": False}, {"is_active"}),
    ],
)
def test_the_only_active_admin_cannot_be_demoted_or_deactivated(client, admin, body, fields):
    url = f"/api/v1/users/{admin.id}"
    etag = client.get(url, headers=admin.auth).headers["ETag"]
    response = client.patch(url, json=body, headers=admin.auth)
    assert response.status_code == 409
    problem = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert "no active admin" in problem["detail"]
    assert set(problem["errors"]["json"]) == fields
    after = client.get(url, headers=admin.auth)  # nothing changed, the tokens still work
    assert after.status_code == 200 and after.headers["ETag"] == etag
    # a change that keeps them an active admin is fine
    unchanged = client.patch(url, json={"role": "admin", "is_active": True}, headers=admin.auth)
    assert unchanged.status_code == 200


def test_an_admin_can_step_down_once_there_is_another(client, admin, alice):
    make_admin_too = client.patch(
        f"/api/v1/users/{alice.id}", json={"role": "admin"}, headers=admin.auth
    )
    assert make_admin_too.status_code == 200
    stepped_down = client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=admin.auth
    )
    assert stepped_down.status_code == 200 and stepped_down.get_json()["role"] == "user"
    # now alice is the only one left
    alone = client.patch(f"/api/v1/users/{alice.id}", json={"is_active": False}, headers=alice.auth)
    assert alone.status_code == 409
    assert set(alone.get_json()["errors"]["json"]) == {"is_active"}


def test_a_deactivated_admin_does_not_count_as_an_active_one(client, admin, alice):
    url = f"/api/v1/users/{alice.id}"
    assert client.patch(url, json={"role": "admin"}, headers=admin.auth).status_code == 200
    assert client.patch(url, json={"is_active": False}, headers=admin.auth).status_code == 200
    response = client.patch(f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=admin.auth)
    assert response.status_code == 409
    # an inactive admin may still be demoted: it leaves the active admins as they are
    assert client.patch(url, json={"role": "user"}, headers=admin.auth).status_code == 200


# --- timestamps -----------------------------------------------------------------------------


def test_a_new_user_was_created_and_last_updated_at_the_same_instant(client, app):
    body = register(client).get_json()
    assert body["created_at"] == body["updated_at"]
    from app.extensions import db
    from app.users.models import User

    with app.app_context():
        stored = db.session.get(User, uuid.UUID(body["id"]))
        assert stored.created_at == stored.updated_at


@pytest.mark.parametrize("name", ["\u200b", "\u2060\u200d", "\u00ad", "\u202e", "\u0301\u0301"])
def test_display_name_must_show_something(client, alice, name):
    refused = register(client, display_name=name)
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["json"] == {
        "display_name": ["Must contain a visible character."]
    }
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    patched = client.patch(
        ME, json={"display_name": name}, headers={**alice.auth, "If-Match": etag}
    )
    assert patched.status_code == 422
    assert "display_name" in patched.get_json()["errors"]["json"]
    # a visible name with a joiner in it is stored exactly as sent
    emoji = "\U0001f469\u200d\U0001f4bb Ada"
    kept = client.patch(ME, json={"display_name": emoji}, headers={**alice.auth, "If-Match": etag})
    assert kept.status_code == 200
    assert kept.get_json()["display_name"] == emoji


def _change_privately(app, client, account, admin) -> None:
    """A new password, role and email for ``account``: nothing its public profile shows."""
    from app.extensions import db
    from app.users.models import User

    etag = client.get(ME, headers=account.auth).headers["ETag"]
    changed = client.patch(
        ME,
        json={"password": "another password 1", "current_password": account.password},
        headers={**account.auth, "If-Match": etag},
    )
    assert changed.status_code == 200
    url = f"/api/v1/users/{account.id}"
    assert client.patch(url, json={"role": "admin"}, headers=admin.auth).status_code == 200
    with app.app_context():  # no route changes an email: as an operator's fix would
        user = db.session.get(User, uuid.UUID(account.id))
        user.email = f"moved.{user.email}"
        db.session.commit()


def test_the_public_view_etag_ignores_private_changes(app, client, alice, bob, admin):
    url = f"/api/v1/users/{alice.id}"
    before = client.get(url, headers=bob.auth)
    private_before = client.get(url, headers=admin.auth).headers["ETag"]
    _change_privately(app, client, alice, admin)
    after = client.get(url, headers={**bob.auth, "If-None-Match": before.headers["ETag"]})
    assert after.status_code == 304  # nothing bob can see changed, and bob cannot tell
    assert after.headers["ETag"] == before.headers["ETag"]
    assert client.get(url, headers=admin.auth).headers["ETag"] != private_before
    # what the view shows still moves it
    auth = {
        "Authorization": "Bearer "
        + login(client, f"moved.{alice.email}", "another password 1").get_json()["access_token"]
    }
    etag = client.get(ME, headers=auth).headers["ETag"]
    renamed = client.patch(
        ME, json={"display_name": "Alice B."}, headers={**auth, "If-Match": etag}
    )
    assert renamed.status_code == 200
    shown = client.get(url, headers={**bob.auth, "If-None-Match": before.headers["ETag"]})
    assert shown.status_code == 200
    assert shown.get_json()["display_name"] == "Alice B."
    assert shown.headers["ETag"] != before.headers["ETag"]


def test_owner_embedding_views_ignore_the_owner_s_private_changes(app, client, alice, bob, admin):
    """A character's and a template's ETag cover the owner's public profile only."""
    from tests.support.factories import create_template

    template = create_template(client, alice, is_public=True)
    character = client.post(
        "/api/v1/characters", json={"name": "Brana", "is_public": True}, headers=alice.auth
    ).get_json()
    urls = [f"/api/v1/templates/{template['id']}", f"/api/v1/characters/{character['id']}"]
    before = {url: client.get(url, headers=bob.auth).headers["ETag"] for url in urls}
    _change_privately(app, client, alice, admin)
    for url in urls:
        again = client.get(url, headers={**bob.auth, "If-None-Match": before[url]})
        assert again.status_code == 304, url


def test_wrong_current_passwords_are_limited_per_account(client, app, alice, bob):
    """A stolen access token is no password oracle: RATELIMIT_LOGIN wrong current passwords
    per account, then 429 even for the right one; other changes are not limited."""
    app.config["RATELIMIT_LOGIN"] = "3 per minute"
    try:
        etag = client.get(ME, headers=alice.auth).headers["ETag"]
        headers = {**alice.auth, "If-Match": etag}

        def attempt(current, address="203.0.113.7", **more):
            body = {"password": "a brand new password", "current_password": current, **more}
            return client.patch(
                ME, json=body, headers=headers, environ_base={"REMOTE_ADDR": address}
            )

        # what carries no current password, or fails before it is checked, does not count
        for _ in range(4):
            assert (
                client.patch(
                    ME, json={"bio": "x"}, headers={**alice.auth, "If-Match": '"stale"'}
                ).status_code
                == 412
            )
            assert attempt("wrong", **{"bio": 5}).status_code == 422  # schema error
        stale = client.patch(
            ME,
            json={"password": "a brand new password", "current_password": "wrong"},
            headers={**alice.auth, "If-Match": '"stale"'},
        )
        assert stale.status_code == 412
        # three wrong guesses, from three addresses: one account's budget
        for address in ("203.0.113.7", "198.51.100.1", "2001:db8::1"):
            wrong = attempt("wrong guess", address)
            assert wrong.status_code == 422
            assert "current_password" in wrong.get_json()["errors"]["json"]
        limited = attempt(PASSWORD, "192.0.2.99")  # the right one, from a fourth address
        assert limited.status_code == 429
        assert limited.mimetype == "application/problem+json"
        body = limited.get_json()
        assert body["type"] == "/problems/rate-limited"
        assert "this account" in body["detail"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 61
        # nothing changed: the old password still signs in
        assert login(client, alice.email).status_code == 200
        # changes without current_password go on; another account has its own budget
        assert client.patch(ME, json={"bio": "still me"}, headers=headers).status_code == 200
        bob_etag = client.get(ME, headers=bob.auth).headers["ETag"]
        bob_change = client.patch(
            ME,
            json={"password": "a brand new password", "current_password": PASSWORD},
            headers={**bob.auth, "If-Match": bob_etag},
        )
        assert bob_change.status_code == 200
    finally:
        app.config["RATELIMIT_LOGIN"] = "10000 per minute"


def test_right_current_passwords_do_not_count(client, app, alice):
    app.config["RATELIMIT_LOGIN"] = "2 per minute"
    try:
        password = PASSWORD
        for round_ in range(4):
            etag = client.get(ME, headers=alice.auth).headers["ETag"]
            new = f"new password number {round_}"
            changed = client.patch(
                ME,
                json={"password": new, "current_password": password},
                headers={**alice.auth, "If-Match": etag},
            )
            assert changed.status_code == 200, changed.get_json()
            password = new
    finally:
        app.config["RATELIMIT_LOGIN"] = "10000 per minute"
