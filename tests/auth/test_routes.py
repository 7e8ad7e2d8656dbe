"""Registration, login, refresh rotation, logout and every way a token can be bad."""

from __future__ import annotations

import json
import statistics
import time
from datetime import timedelta

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_access_token

from tests.support.factories import PASSWORD, login, make_account, register, unique_name

ME = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response) -> None:
    assert response.status_code == 401, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- register -------------------------------------------------------------------------------


def test_register_returns_the_private_view(client):
    name = unique_name()
    response = register(client, username=name, email=f"  {name.upper()}@Example.COM ")
    assert response.status_code == 201
    user = response.get_json()
    assert response.headers["Location"] == f"/api/v1/users/{user['id']}"
    assert response.headers["ETag"].startswith('"')
    assert user["email"] == f"{name}@example.com"
    assert user["display_name"] == name
    assert user["role"] == "user" and user["is_active"] is True and user["bio"] == ""
    assert set(user) == {
        "id", "email", "username", "display_name", "bio", "role", "is_active",
        "created_at", "updated_at",
    }  # fmt: skip
    assert "+00:00" in user["created_at"]
    assert "password" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"username": "ab"}, "username"),
        ({"username": "x" * 33}, "username"),
        ({"username": "bad name!"}, "username"),
        ({"password": "123456789"}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "d" * 65}, "display_name"),
        ({"role": "admin"}, "role"),
        ({"is_active": True}, "is_active"),
        ({"id": "3f0c2a9e-0000-0000-0000-000000000000"}, "id"),
    ],
)
def test_register_rejects_bad_input(client, fields, bad):
    response = register(client, **fields)
    assert response.status_code == 422
    assert bad in response.get_json()["errors"]["json"]


def test_register_accepts_exact_limits(client):
    response = register(client, password="p" * 10, display_name="d" * 64)
    assert response.status_code == 201
    assert register(client, password="p" * 128).status_code == 201


def test_duplicate_email_and_username_in_any_case(client):
    name = unique_name()
    assert register(client, username=name).status_code == 201
    same_email = register(client, email=f"{name.upper()}@EXAMPLE.com")
    assert same_email.status_code == 409
    assert same_email.get_json()["type"] == "/problems/duplicate"
    assert "email" in same_email.get_json()["errors"]["json"]
    same_name = register(client, username=name.upper(), email="other@example.com")
    assert same_name.status_code == 409
    assert "username" in same_name.get_json()["errors"]["json"]


def test_duplicate_email_and_username_both_named(client):
    name = unique_name()
    assert register(client, username=name).status_code == 201
    both = register(client, username=name.upper(), email=f"{name}@example.com")
    assert both.status_code == 409
    assert set(both.get_json()["errors"]["json"]) == {"email", "username"}
    assert "email and username" in both.get_json()["detail"]


def test_password_length_is_counted_on_the_nfc_form_that_is_hashed(client):
    # "e" + combining acute is one character once composed, as it is hashed and checked
    short = register(client, password="e\u0301" * 5)  # 10 code points, 5 characters
    assert short.status_code == 422
    assert "password" in short.get_json()["errors"]["json"]
    decomposed = "e\u0301" * 10  # 20 code points, 10 characters
    account = make_account(client, password=decomposed)
    assert login(client, account.email, "\u00e9" * 10).status_code == 200
    assert login(client, account.email, decomposed).status_code == 200
    assert register(client, password="e\u0301" * 128).status_code == 201  # 128 characters
    assert register(client, password="e\u0301" * 129).status_code == 422


def test_new_password_length_is_counted_on_the_nfc_form_too(client, alice):
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    response = client.patch(
        ME,
        json={"password": "e\u0301" * 5, "current_password": PASSWORD},
        headers={**alice.auth, "If-Match": etag},
    )
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]) == ["password"]
    assert login(client, alice.email).status_code == 200


def test_email_is_nfc_normalised_on_register_and_login(client):
    name = unique_name()
    decomposed = f"cafe\u0301{name}@example.com"
    composed = f"caf\u00e9{name}@example.com"
    response = register(client, username=name, email=decomposed)
    assert response.status_code == 201
    assert response.get_json()["email"] == composed
    assert login(client, composed).status_code == 200
    assert login(client, decomposed.upper()).status_code == 200
    other = unique_name()
    assert (
        register(client, username=other, email=f"caf\u00e9{other}@example.com").status_code == 201
    )
    assert login(client, f"CAFE\u0301{other}@example.com").status_code == 200
    # and the two spellings are one address
    assert register(client, email=decomposed).status_code == 409


def test_email_local_part_is_at_most_64_octets(client):
    assert register(client, email=f"{'a' * 64}@example.com").status_code == 201
    response = register(client, email=f"{'a' * 65}@example.com")
    assert response.status_code == 422
    assert list(response.get_json()["errors"]["json"]) == ["email"]


def _spellings(local: str) -> list[str]:
    """Spellings of one mailbox: domains IDNA (UTS #46) maps to one name, a needless quote."""
    return [
        f"{local}@x.example",
        f"{local}@x\u200b.example",  # zero-width space
        f"{local}@x\u00ad.example",  # soft hyphen
        f"{local}@\uff58.example",  # fullwidth x
        f'"{local}"@x.example',  # a quoted dot-atom is the dot-atom (RFC 5321)
        f"{local}@X.EXAMPLE",
    ]


@pytest.mark.parametrize("index", range(6))
def test_one_mailbox_is_one_account_whatever_the_domain_spelling(client, index):
    local = unique_name("v")
    spellings = _spellings(local)
    first = register(client, username=unique_name(), email=spellings[index])
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["email"] == f"{local}@x.example"
    for other in spellings:
        again = register(client, username=unique_name(), email=other)
        assert again.status_code == 409, other
        assert "email" in again.get_json()["errors"]["json"]
        assert login(client, other).status_code == 200, other


def test_an_ace_domain_and_its_unicode_form_are_one_address(client):
    local = unique_name("v")
    first = register(client, email=f"{local}@xn--bcher-kva.example")
    assert first.status_code == 201
    assert first.get_json()["email"] == f"{local}@b\u00fccher.example"
    assert register(client, email=f"{local}@B\u00dcCHER.example").status_code == 409
    assert login(client, f"{local}@b\u00fccher.example").status_code == 200
    assert login(client, f"{local}@XN--BCHER-KVA.example").status_code == 200
    other = unique_name("v")
    assert register(client, email=f"{other}@b\u00fccher.example").status_code == 201
    assert register(client, email=f"{other}@xn--bcher-kva.example").status_code == 409


def test_a_spelling_that_registered_signs_in_however_long(client):
    # 250 soft hyphens: 267 characters typed, a 20-character address once canonical
    local = unique_name("l")
    padded = f"{local}@x{chr(0xAD) * 250}.example"
    assert register(client, email=padded).status_code == 201
    assert login(client, padded).status_code == 200


@pytest.mark.parametrize(
    "domain",
    [
        "ab--c.example",  # hyphens in the 3rd and 4th place of a label that is no A-label
        "xn--zz.example",  # not punycode
        "x\u200d.example",  # a joiner where no script needs one
        "\u0661.example",  # an Arabic-Indic digit alone: a right-to-left label it cannot be
    ],
)
def test_a_domain_idna_refuses_is_not_an_address(client, domain):
    response = register(client, email=f"v@{domain}")
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"] == {"email": ["Not a valid email address."]}
    assert_401(login(client, f"v@{domain}"))  # no account, the usual answer


def test_localhost_and_address_literals_stay_valid(client):
    for email in ("admin@localhost", "ops@[192.0.2.1]", '"a..b"@x.example'):
        response = register(client, email=email)
        assert response.status_code == 201, email
        assert response.get_json()["email"] == email
        assert login(client, email).status_code == 200


# --- login ----------------------------------------------------------------------------------


def test_login_returns_a_token_pair(client, app):
    account = make_account(client)
    response = login(client, account.email.upper())
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["ACCESS_TOKEN_TTL"] == 900
    claims = pyjwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"sub", "sid", "jti", "type", "exp"} <= set(claims)
    assert claims["type"] == "access" and claims["sub"] == account.id
    assert "password" not in str(claims) and "email" not in str(claims)
    assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200


def test_wrong_password_and_unknown_email_are_the_same_401(client):
    account = make_account(client)
    wrong = login(client, account.email, "wrong password!")
    unknown = login(client, "nobody@example.com", "wrong password!")
    assert_401(wrong)
    assert_401(unknown)
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.get_json()) == strip(unknown.get_json())
    assert wrong.get_json()["type"] == "/problems/invalid-credentials"


def test_login_timing_does_not_reveal_emails(client, app):
    """Measured loosely: the medians of both failures are within 2x of each other."""
    app.config["PASSWORD_HASH_PROFILE"] = "rfc9106-low-memory"
    try:
        account = make_account(client)

        def timed(email: str) -> float:
            started = time.perf_counter()
            assert login(client, email, "wrong password!").status_code == 401
            return time.perf_counter() - started

        # alternated, so that a change in the machine's load touches both alike
        samples: dict[str, list[float]] = {account.email: [], "ghost@example.com": []}
        for _ in range(7):
            for email, times in samples.items():
                times.append(timed(email))
        known, unknown = (statistics.median(times) for times in samples.values())
        assert max(known, unknown) / min(known, unknown) < 2, (known, unknown)
    finally:
        app.config["PASSWORD_HASH_PROFILE"] = "testing"


def test_hash_is_upgraded_on_login_when_parameters_change(client, app):
    from app.extensions import db
    from app.users.models import User

    account = make_account(client)  # hashed with the cheap test profile
    app.config["PASSWORD_HASH_PROFILE"] = "rfc9106-low-memory"
    try:
        assert login(client, account.email).status_code == 200
    finally:
        app.config["PASSWORD_HASH_PROFILE"] = "testing"
    with app.app_context():
        stored = db.session.get(User, __import__("uuid").UUID(account.id)).password_hash
    assert stored.startswith("$argon2id$") and "m=65536,t=3,p=4" in stored


def test_deactivated_account(client, admin):
    account = make_account(client)
    response = client.patch(
        f"/api/v1/users/{account.id}", json={"is_active": False}, headers=admin.auth
    )
    assert response.status_code == 200
    assert_401(client.get(ME, headers=account.auth))  # tokens stop working at once
    assert_401(client.post("/api/v1/auth/refresh", headers=bearer(account.refresh)))
    right = login(client, account.email)
    assert right.status_code == 403
    assert right.get_json()["type"] == "/problems/account-disabled"
    assert_401(login(client, account.email, "wrong password!"))


# --- bad tokens -----------------------------------------------------------------------------


def _forged(app, account, **changes) -> str:
    claims = pyjwt.decode(account.access, options={"verify_signature": False})
    claims.update(changes)
    return pyjwt.encode(claims, "some-other-secret-key-that-is-long-enough", algorithm="HS256")


def test_every_token_failure_is_401(client, app, alice):
    header, payload, _ = alice.access.split(".")
    none_header = pyjwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    with app.test_request_context():
        expired = create_access_token(identity=alice.id, expires_delta=timedelta(seconds=-5))
        no_session = create_access_token(identity=alice.id)  # validly signed, no `sid`
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Token {alice.access}"},
        "empty bearer": {"Authorization": "Bearer "},
        "garbage": bearer("not.a.jwt"),
        "forged signature": bearer(_forged(app, alice)),
        "alg none": bearer(f"{none_header}.{payload}."),
        "tampered payload": bearer(f"{header}.{payload}x.{alice.access.split('.')[2]}"),
        "expired": bearer(expired),
        "no session claim": bearer(no_session),
        "refresh as access": bearer(alice.refresh),
    }
    for name, headers in cases.items():
        response = client.get(ME, headers=headers)
        assert response.status_code == 401, name
        assert_401(response)
        assert response.get_json()["type"] == "/problems/invalid-token", name


def test_a_token_verified_earlier_is_still_refused_once_it_expires(client, app, alice):
    """Signatures are verified once per token and worker; the expiry is checked every time."""
    claims = pyjwt.decode(alice.access, options={"verify_signature": False})
    claims["exp"] = int(time.time()) + 2
    short = pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert client.get(ME, headers=bearer(short)).status_code == 200  # verified, remembered
    time.sleep(2.1)
    response = client.get(ME, headers=bearer(short))
    assert_401(response)
    assert response.get_json()["detail"] == "The token has expired."


def test_a_token_from_an_instance_whose_clock_is_ahead_is_accepted(client, app, alice):
    # another instance, 5 s ahead, issued it: its nbf and iat are in this one's future
    claims = pyjwt.decode(alice.access, options={"verify_signature": False})
    ahead = int(time.time()) + 5
    skewed = pyjwt.encode({**claims, "nbf": ahead, "iat": ahead}, app.config["JWT_SECRET_KEY"])
    assert client.get(ME, headers=bearer(skewed)).status_code == 200
    far = int(time.time()) + 120  # no clock is that far off: not valid yet
    early = pyjwt.encode({**claims, "nbf": far, "iat": far}, app.config["JWT_SECRET_KEY"])
    response = client.get(ME, headers=bearer(early))
    assert_401(response)
    assert response.get_json()["detail"] == "The token is not valid yet."


def _signed(app, token: str, drop: tuple[str, ...] = (), **changes) -> str:
    """``token``'s claims with ``changes`` (and without ``drop``), signed with the app's key:
    a token only this service (or whoever holds its key) could make."""
    claims = pyjwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    for name in drop:
        del claims[name]
    return pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")


def _odd_claims(token: str) -> dict[str, dict]:
    """Claims of a shape this service never issues, by case name."""
    claims = pyjwt.decode(token, options={"verify_signature": False})
    sub, now = claims["sub"], int(time.time())
    return {
        "exp float": {"exp": 1e20},
        "exp bool": {"exp": True},
        "exp string": {"exp": str(now + 600)},
        "exp list": {"exp": [now + 600]},
        "nbf string": {"nbf": "x"},
        "iat string": {"iat": "x"},
        "iat float": {"iat": float(now)},
        "iat null": {"iat": None},
        "sub braced": {"sub": "{" + sub + "}"},
        "sub undashed": {"sub": sub.replace("-", "")},
        "sub urn": {"sub": f"urn:uuid:{sub}"},
        "sub upper": {"sub": sub.upper()},
        "sub not a uuid": {"sub": "not-a-uuid"},
        "sid int": {"sid": 123},
        "sid null": {"sid": None},
        "jti not a uuid": {"jti": "abc"},
        "jti upper": {"jti": claims["jti"].upper()},
        "type upper": {"type": claims["type"].upper()},
        "type other": {"type": "id"},
        "type list": {"type": [claims["type"]]},
        "type object": {"type": {}},
    }


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_a_signed_token_of_another_shape_is_malformed(client, app, alice, kind):
    token = alice.access if kind == "access" else alice.refresh
    call = (
        (lambda t: client.get(ME, headers=bearer(t)))
        if kind == "access"
        else (lambda t: client.post("/api/v1/auth/refresh", headers=bearer(t)))
    )
    cases = {name: _signed(app, token, **changes) for name, changes in _odd_claims(token).items()}
    cases |= {f"no {name}": _signed(app, token, drop=(name,)) for name in ("iat", "nbf")}
    for name, odd in cases.items():
        response = call(odd)
        assert_401(response)
        assert response.get_json()["detail"] == (
            "The token is malformed or its signature is invalid."
        ), name
    # the genuine token, and the same claims signed again, still work: none of it was a reuse
    assert call(_signed(app, token)).status_code == 200


def test_an_issued_at_in_the_future_is_refused_even_with_a_current_not_before(client, app, alice):
    now = int(time.time())
    early = _signed(app, alice.access, nbf=now, iat=now + 120)
    response = client.get(ME, headers=bearer(early))
    assert_401(response)
    assert response.get_json()["detail"] == "The token is not valid yet."
    assert (
        client.get(ME, headers=bearer(_signed(app, alice.access, iat=now + 5))).status_code == 200
    )


def test_access_token_is_not_a_refresh_token(client, alice):
    assert_401(client.post("/api/v1/auth/refresh", headers=alice.auth))
    assert_401(client.post("/api/v1/auth/refresh"))


# --- refresh rotation -----------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_session(client, alice):
    first = client.post("/api/v1/auth/refresh", headers=bearer(alice.refresh))
    assert first.status_code == 200
    pair = first.get_json()
    assert pair["refresh_token"] != alice.refresh
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200
    # reusing the rotated-out refresh token: 401, and the whole session dies
    assert_401(client.post("/api/v1/auth/refresh", headers=bearer(alice.refresh)))
    assert_401(client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])))
    assert_401(client.get(ME, headers=bearer(pair["access_token"])))
    assert_401(client.get(ME, headers=alice.auth))
    # other sessions of the same user are untouched
    other = login(client, alice.email).get_json()
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200


def test_logout_revokes_the_session(client, alice):
    other = login(client, alice.email).get_json()
    assert client.post("/api/v1/auth/logout", headers=alice.auth).status_code == 204
    assert_401(client.get(ME, headers=alice.auth))
    assert_401(client.post("/api/v1/auth/refresh", headers=bearer(alice.refresh)))
    assert_401(client.post("/api/v1/auth/logout", headers=alice.auth))
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200


def test_password_change_revokes_other_sessions(client, alice):
    other = login(client, alice.email).get_json()
    etag = client.get(ME, headers=alice.auth).headers["ETag"]
    response = client.patch(
        ME,
        json={"password": "a brand new password", "current_password": PASSWORD},
        headers={**alice.auth, "If-Match": etag},
    )
    assert response.status_code == 200
    assert client.get(ME, headers=alice.auth).status_code == 200  # this session survives
    assert_401(client.get(ME, headers=bearer(other["access_token"])))
    assert_401(client.post("/api/v1/auth/refresh", headers=bearer(other["refresh_token"])))
    assert_401(login(client, alice.email))
    assert login(client, alice.email, "a brand new password").status_code == 200


# --- rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "call"),
    [
        (
            "RATELIMIT_LOGIN",
            lambda c, env: c.post(
                "/api/v1/auth/login",
                json={"email": "x@example.com", "password": "p"},
                environ_base=env,
            ),
        ),
        ("RATELIMIT_REGISTER", lambda c, env: register(c, environ_base=env)),
    ],
    ids=["login", "register"],
)
def test_rate_limit_per_client_address(client, app, setting, call):
    app.config[setting] = "3 per minute"
    try:
        here = {"REMOTE_ADDR": "203.0.113.7"}
        statuses = [call(client, here).status_code for _ in range(4)]
        assert statuses[:3] != [429] * 3 and statuses[3] == 429
        limited = call(client, here)
        assert limited.get_json()["type"] == "/problems/rate-limited"
        assert limited.mimetype == "application/problem+json"
        assert 1 <= int(limited.headers["Retry-After"]) <= 61
        elsewhere = call(client, {"REMOTE_ADDR": "203.0.113.8"})
        assert elsewhere.status_code != 429
    finally:
        app.config[setting] = "10000 per minute"


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/register"])
def test_sign_in_and_up_take_small_bodies_only(client, path):
    # open to anyone: a body of MAX_CONTENT_LENGTH of nested JSON would cost a worker seconds
    body = json.dumps({"email": "a@b.example", "password": [{}] * 10_000})
    assert len(body) > 16 * 1024
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["status"] == 413
    small = client.post(path, json={"email": "a@b.example", "password": "x" * 128})
    assert small.status_code in (401, 422)  # read and judged as usual
