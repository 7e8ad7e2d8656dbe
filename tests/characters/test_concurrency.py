"""Real concurrency on PostgreSQL under gunicorn, for characters."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from tests.support.concurrency import simultaneously
from tests.support.factories import PASSWORD, SIMPLE_DEFINITION, unique_name
from tests.support.servers import Gunicorn

pytestmark = pytest.mark.postgres_only


@pytest.fixture(scope="module")
def server(app, database_url):
    env = {
        "APP_ENV": "testing",
        "SECRET_KEY": "concurrency-test-secret-key-0123456789abcdef",
        "DATABASE_URL": database_url,
        "RATELIMIT_REGISTER": "1000 per minute",
        "RATELIMIT_LOGIN": "1000 per minute",
    }
    with Gunicorn(env, workers=8) as gunicorn:
        yield gunicorn


@pytest.fixture
def token(server):
    name = unique_name()
    account = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    assert requests.post(f"{server.url}/api/v1/auth/register", json=account, timeout=10).ok
    login = requests.post(
        f"{server.url}/api/v1/auth/login",
        json={"email": account["email"], "password": PASSWORD},
        timeout=10,
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture
def template_id(server, token):
    response = requests.post(
        f"{server.url}/api/v1/templates",
        json={"name": "Concurrent", "definition": SIMPLE_DEFINITION, "is_public": True},
        headers=token,
        timeout=10,
    )
    return response.json()["id"]


def test_if_match_race_on_a_character_has_one_winner(server, token, template_id):
    created = requests.post(
        f"{server.url}/api/v1/characters/generate",
        json={"template_id": template_id, "seed": 1},
        headers=token,
        timeout=10,
    )
    url, tag = created.headers["Location"], created.headers["ETag"]
    responses = simultaneously(
        20,
        lambda s: s.patch(
            f"{server.url}{url}",
            json={"backstory": f"<p>writer {id(s)}</p>"},
            headers={**token, "If-Match": tag},
            timeout=30,
        ),
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 412: 19}


def test_generate_with_one_key_creates_one_character(server, token, template_id):
    body = {"template_id": template_id, "seed": 99, "name": unique_name("Once")}
    responses = simultaneously(
        20,
        lambda s: s.post(
            f"{server.url}/api/v1/characters/generate",
            json=body,
            headers={**token, "Idempotency-Key": "one-character"},
            timeout=30,
        ),
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    mine = requests.get(
        f"{server.url}/api/v1/characters?q={body['name']}", headers=token, timeout=10
    )
    assert len(mine.json()) == 1
