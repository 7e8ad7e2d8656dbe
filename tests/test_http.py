"""Request ids, security headers, CORS and the request log."""

from __future__ import annotations

import json
import logging

import pytest


def test_request_id_is_echoed_when_valid(client):
    response = client.get("/health/live", headers={"X-Request-ID": "abc.DEF_12-3"})
    assert response.headers["X-Request-ID"] == "abc.DEF_12-3"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", "ünïcode"])
def test_invalid_request_id_is_replaced(client, bad):
    response = client.get("/health/live", headers={"X-Request-ID": bad})
    generated = response.headers["X-Request-ID"]
    assert generated != bad
    assert 1 <= len(generated) <= 128


def test_security_headers_on_api_responses(client):
    for response in (client.get("/health/live"), client.get("/missing")):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in headers


def test_no_cookie_sessions(app, client):
    """Bearer tokens only: a session cookie is never read, and none can be written."""
    import flask

    client.set_cookie("session", "eyJyb2xlIjoiYWRtaW4ifQ.forged.signature")
    response = client.get("/health/live")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    with app.test_request_context("/health/live", headers={"Cookie": "session=anything"}):
        assert isinstance(flask.session, flask.sessions.NullSession)
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError):
            flask.session["user"] = "someone"


def test_docs_get_a_looser_but_self_only_policy(client):
    response = client.get("/docs")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    # "Try it out" draws an image response (a portrait) from a blob: URL
    img_src = csp.split("img-src")[1].split(";")[0].split()
    assert set(img_src) == {"'self'", "data:", "blob:"}
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js"):
        assert f"/docs/assets/{asset}" in response.get_data(as_text=True)
        assert client.get(f"/docs/assets/{asset}").status_code == 200
    assert client.get("/docs/assets/../../config.py").status_code == 404


def test_hsts_when_behind_https(app_factory):
    app = app_factory(BEHIND_HTTPS="true")
    response = app.test_client().get("/health/live")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_cors_preflight_from_allowed_origin(client):
    response = client.options(
        "/health/ready",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, If-Match, Idempotency-Key",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in ("authorization", "if-match", "idempotency-key"):
        assert header in allowed
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers


PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/characters/00000000-0000-0000-0000-000000000000",
        "/api/v1/characters/not-a-uuid",
        "/api/v2/characters",
        "/api/v1/nothing/here",
    ],
)
def test_a_preflight_is_answered_whatever_the_path_so_the_404_is_seen(client, alice, path):
    """A preflight answered 404 (a malformed id, an unknown path) is a CORS error to a browser,
    which then never sends the request: the page sees no status at all. The preflight succeeds
    and the request itself gets its 404 problem, readable by the page."""
    preflight = client.options(path, headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == PREFLIGHT["Origin"]
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "Content-Type" not in preflight.headers and preflight.get_data() == b""
    actual = client.get(path, headers={**alice.auth, "Origin": PREFLIGHT["Origin"]})
    assert actual.status_code == 404
    assert actual.mimetype == "application/problem+json"
    assert actual.headers["Access-Control-Allow-Origin"] == PREFLIGHT["Origin"]
    # an origin not in the list gets its preflight answered with no CORS header: refused
    stranger = client.options(path, headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert stranger.status_code == 204
    assert not any(name.startswith("Access-Control-") for name, _ in stranger.headers.items())


def test_a_preflight_needs_no_token_and_skips_the_request_checks(client):
    # no Authorization, a query the operation does not take, a body: a preflight all the same
    response = client.options(
        "/api/v1/users/me?fields=id",
        headers={**PREFLIGHT, "Access-Control-Request-Method": "PATCH"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == PREFLIGHT["Origin"]


def test_a_plain_options_is_204_with_allow_and_no_content(client):
    response = client.options("/api/v1/characters")
    assert response.status_code == 204
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {
        "GET", "HEAD", "POST", "OPTIONS"
    }  # fmt: skip
    assert "Content-Type" not in response.headers
    assert response.get_data() == b""
    # a plain OPTIONS is no preflight: an unknown path is the usual 404 problem
    unknown = client.options("/api/v2/characters")
    assert unknown.status_code == 404
    assert unknown.mimetype == "application/problem+json"


def test_without_cors_origins_a_preflight_is_routed_as_any_request(app_factory):
    client = app_factory(CORS_ORIGINS=None).test_client()
    assert client.options("/api/v2/characters", headers=PREFLIGHT).status_code == 404
    known = client.options("/api/v1/characters", headers=PREFLIGHT)
    assert known.status_code == 204
    assert "Access-Control-Allow-Origin" not in known.headers


def test_cors_actual_response_exposes_headers(client):
    response = client.get("/health/live", headers={"Origin": "http://localhost:3000"})
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "location", "x-pagination", "link", "x-request-id", "retry-after"} <= exposed


def test_cors_unknown_origin_gets_nothing(client):
    response = client.get("/health/live", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    "origins", ["https://app.example.com", "https://a.example,https://b.example"]
)
def test_cors_answers_vary_by_origin(app_factory, origins):
    """Whether Access-Control-Allow-Origin is sent depends on the Origin, so every response says
    Vary: Origin (a shared cache must not hand one origin's answer to another), with one allowed
    origin as with several; without an Origin no CORS header is sent at all."""
    client = app_factory(CORS_ORIGINS=origins).test_client()
    allowed = origins.split(",")[0]
    for origin, answer in ((allowed, allowed), ("https://evil.example", None), (None, None)):
        response = client.get("/health/live", headers={"Origin": origin} if origin else {})
        assert response.headers.getlist("Vary") == ["Origin"], origin
        assert response.headers.get("Access-Control-Allow-Origin") == answer, origin


def test_no_content_type_on_bodiless_answers(client, alice):
    created = client.post("/api/v1/characters", json={"name": "Quiet"}, headers=alice.auth)
    path = created.headers["Location"]
    unchanged = client.get(path, headers={**alice.auth, "If-None-Match": created.headers["ETag"]})
    assert unchanged.status_code == 304
    assert "Content-Type" not in unchanged.headers
    # a 304 repeats the Cache-Control of the 200 it stands for (RFC 9110, 15.4.5)
    assert unchanged.headers["Cache-Control"] == "no-store"
    deleted = client.delete(path, headers={**alice.auth, "If-Match": created.headers["ETag"]})
    assert deleted.status_code == 204
    assert "Content-Type" not in deleted.headers
    assert deleted.get_data() == b""


def test_one_json_log_line_per_request(client, capsys):
    client.get(
        "/health/live?x=1",
        headers={"X-Request-ID": "log-test-1", "Authorization": "Bearer secret-token"},
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    entries = [entry for entry in lines if entry.get("request_id") == "log-test-1"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["method"] == "GET"
    assert entry["path"] == "/health/live"
    assert entry["status"] == 200
    assert entry["level"] == "INFO"
    assert isinstance(entry["duration_ms"], float | int)
    assert "timestamp" in entry and entry["timestamp"].endswith("+00:00")
    assert "secret-token" not in json.dumps(lines)


def test_sign_up_sign_in_and_refresh_log_who_it_was(client, capsys):
    from tests.support.factories import PASSWORD, unique_name

    name = unique_name("logged")
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    registered = client.post(
        "/api/v1/auth/register", json=body, headers={"X-Request-ID": "log-register"}
    )
    user_id = registered.get_json()["id"]
    tokens = client.post(
        "/api/v1/auth/login",
        json={"email": body["email"], "password": PASSWORD},
        headers={"X-Request-ID": "log-login"},
    ).get_json()
    client.post(
        "/api/v1/auth/refresh",
        headers={
            "Authorization": f"Bearer {tokens['refresh_token']}",
            "X-Request-ID": "log-refresh",
        },
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    logged = {entry["request_id"]: entry for entry in lines if "status" in entry}
    for request_id in ("log-register", "log-login", "log-refresh"):
        assert logged[request_id]["user_id"] == user_id, request_id
    assert PASSWORD not in json.dumps(lines)


def test_every_stdout_line_is_json(client, capsys):
    client.get("/health/live")
    client.get("/nope")
    out = capsys.readouterr().out
    assert out.strip()
    for line in out.splitlines():
        json.loads(line)


def test_text_logs_in_development(app_factory, capsys):
    app = app_factory(APP_ENV="development", LOG_FORMAT=None)
    app.test_client().get("/health/live")
    out = capsys.readouterr().out
    assert "GET /health/live 200" in out
    assert not out.lstrip().startswith("{")
    logging.getLogger().handlers.clear()


def test_if_match_on_a_read_and_if_none_match_on_a_write(client, alice):
    """RFC 9110 13.1.1 and 13.1.2, beyond the If-Match of writes and If-None-Match of reads."""
    created = client.post("/api/v1/characters", json={"name": "Cond"}, headers=alice.auth)
    path, tag = created.headers["Location"], created.headers["ETag"]
    for sent, status in ((tag, 200), ("*", 200), ('"stale"', 412), (f'"stale", {tag}', 200)):
        read = client.get(path, headers={**alice.auth, "If-Match": sent})
        assert read.status_code == status, sent
    for sent in ("*", tag):  # "only if it is not (this version of) the resource": it is
        write = client.patch(
            path,
            json={"name": "Changed"},
            headers={**alice.auth, "If-Match": tag, "If-None-Match": sent},
        )
        assert write.status_code == 412, sent
    assert client.get(path, headers=alice.auth).get_json()["name"] == "Cond"
    other = client.patch(
        path,
        json={"name": "Changed"},
        headers={**alice.auth, "If-Match": tag, "If-None-Match": '"other"'},
    )
    assert other.status_code == 200
