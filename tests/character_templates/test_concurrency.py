"""Real concurrency on PostgreSQL under gunicorn: one winner for If-Match races, one creation
for simultaneous requests with the same Idempotency-Key."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests

from tests.support.concurrency import simultaneously
from tests.support.factories import SIMPLE_DEFINITION, unique_name

pytestmark = pytest.mark.postgres_only


def test_twenty_simultaneous_patches_have_one_winner(gunicorn_pg, token):
    created = requests.post(
        f"{gunicorn_pg.url}/api/v1/templates",
        json={"name": "Race", "definition": SIMPLE_DEFINITION},
        headers=token,
        timeout=10,
    )
    url = created.headers["Location"]
    tag = created.headers["ETag"]
    responses = simultaneously(
        20,
        lambda s: s.patch(
            f"{gunicorn_pg.url}{url}",
            json={"description": f"writer {id(s)}"},
            headers={**token, "If-Match": tag},
            timeout=30,
        ),
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 412: 19}, statuses
    winner = next(r for r in responses if r.status_code == 200)
    current = requests.get(f"{gunicorn_pg.url}{url}", headers=token, timeout=10)
    assert current.json()["description"] == winner.json()["description"]
    assert current.headers["ETag"] == winner.headers["ETag"]
    for loser in (r for r in responses if r.status_code == 412):
        assert loser.headers["Content-Type"] == "application/problem+json"


def test_twenty_simultaneous_posts_with_one_key_create_one_template(gunicorn_pg, token):
    body = {"name": unique_name("Once "), "definition": SIMPLE_DEFINITION}
    responses = simultaneously(
        20,
        lambda s: s.post(
            f"{gunicorn_pg.url}/api/v1/templates",
            json=body,
            headers={**token, "Idempotency-Key": "same-key-for-all"},
            timeout=30,
        ),
    )
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert statuses[201] >= 1
    created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created_ids) == 1
    originals = [
        r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    assert len(originals) == 1
    listing = requests.get(
        f"{gunicorn_pg.url}/api/v1/templates?owner=me&q={body['name']}", headers=token, timeout=10
    )
    assert json.loads(listing.headers["X-Pagination"])["total"] == 1
    # once the first finished, a retry replays it
    retry = requests.post(
        f"{gunicorn_pg.url}/api/v1/templates",
        json=body,
        headers={**token, "Idempotency-Key": "same-key-for-all"},
        timeout=10,
    )
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] in created_ids
