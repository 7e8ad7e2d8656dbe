"""Real concurrency on PostgreSQL under gunicorn, for characters."""

from __future__ import annotations

from collections import Counter

import pytest
import requests

from tests.support.concurrency import simultaneously
from tests.support.factories import SIMPLE_DEFINITION, unique_name

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def template_id(gunicorn_pg, token):
    response = requests.post(
        f"{gunicorn_pg.url}/api/v1/templates",
        json={"name": "Concurrent", "definition": SIMPLE_DEFINITION, "is_public": True},
        headers=token,
        timeout=10,
    )
    return response.json()["id"]


def test_if_match_race_on_a_character_has_one_winner(gunicorn_pg, token, template_id):
    created = requests.post(
        f"{gunicorn_pg.url}/api/v1/characters/generate",
        json={"template_id": template_id, "seed": 1},
        headers=token,
        timeout=10,
    )
    url, tag = created.headers["Location"], created.headers["ETag"]
    responses = simultaneously(
        20,
        lambda s: s.patch(
            f"{gunicorn_pg.url}{url}",
            json={"backstory": f"<p>writer {id(s)}</p>"},
            headers={**token, "If-Match": tag},
            timeout=30,
        ),
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 412: 19}


def test_generate_with_one_key_creates_one_character(gunicorn_pg, token, template_id):
    body = {"template_id": template_id, "seed": 99, "name": unique_name("Once")}
    responses = simultaneously(
        20,
        lambda s: s.post(
            f"{gunicorn_pg.url}/api/v1/characters/generate",
            json=body,
            headers={**token, "Idempotency-Key": "one-character"},
            timeout=30,
        ),
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    mine = requests.get(
        f"{gunicorn_pg.url}/api/v1/characters?q={body['name']}", headers=token, timeout=10
    )
    assert len(mine.json()) == 1
