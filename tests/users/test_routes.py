"""/users: your own account with ETag/If-Match, public profiles, admin moderation."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.factories import PASSWORD, login, make_account

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
