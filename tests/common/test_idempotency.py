"""Idempotency-Key on POST /templates; the same mechanism serves characters (checked last)."""

from __future__ import annotations

import json

import pytest

from tests.support.factories import SIMPLE_DEFINITION, create_template

URL = "/api/v1/templates"


def post(client, account, body, key):
    return client.post(URL, json=body, headers={**account.auth, "Idempotency-Key": key})


def count_mine(client, account) -> int:
    response = client.get(f"{URL}?owner=me", headers=account.auth)
    return json.loads(response.headers["X-Pagination"])["total"]


def test_same_key_same_body_replays(client, alice):
    body = {"name": "Replay me", "definition": SIMPLE_DEFINITION}
    first = post(client, alice, body, "key-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    # "same body" means equal JSON after parsing: key order and spacing do not matter
    raw = json.dumps({"definition": SIMPLE_DEFINITION, "name": "Replay me"}, indent=3)
    second = client.post(
        URL,
        data=raw,
        content_type="application/json",
        headers={**alice.auth, "Idempotency-Key": "key-1"},
    )
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["ETag"] == first.headers["ETag"]
    assert count_mine(client, alice) == 1


def test_same_key_different_body_is_422(client, alice):
    assert (
        post(client, alice, {"name": "A", "definition": SIMPLE_DEFINITION}, "k").status_code == 201
    )
    response = post(client, alice, {"name": "B", "definition": SIMPLE_DEFINITION}, "k")
    assert response.status_code == 422
    assert response.get_json()["type"] == "/problems/idempotency-key-reused"
    assert count_mine(client, alice) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "caf\u00e9"])
def test_malformed_keys_are_400(client, alice, key):
    response = client.post(
        URL,
        json={"name": "A", "definition": SIMPLE_DEFINITION},
        headers={**alice.auth, "Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert response.status_code == 400
    assert response.get_json()["type"] == "/problems/invalid-idempotency-key"
    assert count_mine(client, alice) == 0


@pytest.mark.parametrize(
    "path", ["/api/v1/templates", "/api/v1/characters", "/api/v1/characters/generate"]
)
def test_a_malformed_key_is_400_before_the_body_is_looked_at(client, alice, path):
    """The header is checked first: an invalid body with a malformed key is the key's 400,
    not a 422 that, once corrected, is followed by the 400."""
    headers = {**alice.auth, "Idempotency-Key": "has space"}
    for body in ({"nam": "typo"}, "{broken"):
        if isinstance(body, dict):
            response = client.post(path, json=body, headers=headers)
        else:
            response = client.post(
                path, data=body, content_type="application/json", headers=headers
            )
        assert response.status_code == 400, response.get_json()
        assert response.get_json()["type"] == "/problems/invalid-idempotency-key"
        assert response.get_json()["errors"] == {
            "headers": {"Idempotency-Key": ["1..255 characters of ASCII '!'..'~'."]}
        }
    # without a token, the 401 still comes first
    anonymous = client.post(path, json={}, headers={"Idempotency-Key": "has space"})
    assert anonymous.status_code == 401
    # an operation that takes no key ignores one, well-formed or not
    me = client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200


def test_longest_and_widest_keys_are_fine(client, alice):
    for key in ("!" * 255, "".join(chr(c) for c in range(0x21, 0x7F))):
        body = {"name": key[:50], "definition": SIMPLE_DEFINITION}
        assert post(client, alice, body, key).status_code == 201


def test_failed_requests_are_not_stored(client, alice):
    bad = post(client, alice, {"name": "", "definition": SIMPLE_DEFINITION}, "retry-me")
    assert bad.status_code == 422
    good = post(client, alice, {"name": "Fixed", "definition": SIMPLE_DEFINITION}, "retry-me")
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good.headers


def test_keys_are_scoped_per_user(client, alice, bob):
    body = {"name": "Shared key", "definition": SIMPLE_DEFINITION}
    a = post(client, alice, body, "same")
    b = post(client, bob, body, "same")
    assert a.status_code == b.status_code == 201
    assert a.get_json()["id"] != b.get_json()["id"]
    assert "Idempotent-Replayed" not in b.headers


def test_in_flight_key_is_409(client, app, alice):
    import uuid
    from datetime import timedelta

    from app.common.idempotency import IdempotencyRecord
    from app.common.types import utcnow
    from app.extensions import db

    with app.app_context():
        db.session.add(
            IdempotencyRecord(
                user_id=uuid.UUID(alice.id),
                operation="templates.create",
                key="busy",
                fingerprint="0" * 64,
                state="in_flight",
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(days=1),
            )
        )
        db.session.commit()
    import hashlib

    body = {"name": "A", "definition": SIMPLE_DEFINITION}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with app.app_context():
        record = db.session.query(IdempotencyRecord).filter_by(key="busy").one()
        record.fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        db.session.commit()
    response = post(client, alice, body, "busy")
    assert response.status_code == 409
    assert response.get_json()["type"] == "/problems/idempotency-key-in-use"
    # a conflict names what conflicts (API.md: errors appear on conflicts)
    assert response.get_json()["errors"]["headers"]["Idempotency-Key"]
    assert response.headers["Retry-After"] == "1"
    assert count_mine(client, alice) == 0


def test_prune_removes_expired_keys(client, app, alice):
    from datetime import timedelta

    from app.common.idempotency import IdempotencyRecord
    from app.common.types import utcnow
    from app.extensions import db

    post(client, alice, {"name": "A", "definition": SIMPLE_DEFINITION}, "old")
    post(client, alice, {"name": "B", "definition": SIMPLE_DEFINITION}, "new")
    with app.app_context():
        old = db.session.query(IdempotencyRecord).filter_by(key="old").one()
        old.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["idempotency", "prune"])
    assert "Deleted 1 expired" in result.output
    # an expired key is free again: a new request with it creates anew
    again = post(client, alice, {"name": "C", "definition": SIMPLE_DEFINITION}, "old")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers


def test_work_committed_but_answer_lost_is_replayed_from_the_resource(client, app, alice):
    """The key's row learns the created id inside the work's transaction; if the answer is
    never stored (the process died), a retry answers with that resource, creating nothing."""
    import hashlib
    import uuid
    from datetime import timedelta

    from app.common.idempotency import IdempotencyRecord
    from app.common.types import utcnow
    from app.extensions import db

    body = {"name": "Lost answer", "definition": SIMPLE_DEFINITION}
    created = post(client, alice, body, "lost")
    assert created.status_code == 201
    with app.app_context():
        record = db.session.query(IdempotencyRecord).filter_by(key="lost").one()
        assert str(record.resource_id) == created.get_json()["id"]
        # what a crash after the work's commit leaves behind: in flight, resource known
        record.state = "in_flight"
        record.status_code = record.response_body = record.response_headers = None
        db.session.commit()
    retry = post(client, alice, body, "lost")
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json()["id"] == created.get_json()["id"]
    assert retry.headers["Location"] == created.headers["Location"]
    assert count_mine(client, alice) == 1
    # a claim whose work never committed (no resource) is taken over once abandoned
    canonical = json.dumps(body | {"name": "Never made"}, sort_keys=True, separators=(",", ":"))
    with app.app_context():
        db.session.add(
            IdempotencyRecord(
                user_id=uuid.UUID(alice.id), operation="templates.create", key="dead",
                fingerprint=hashlib.sha256(canonical.encode()).hexdigest(), state="in_flight",
                created_at=utcnow() - timedelta(minutes=5),
                expires_at=utcnow() + timedelta(days=1),
            )
        )  # fmt: skip
        db.session.commit()
    taken_over = post(client, alice, body | {"name": "Never made"}, "dead")
    assert taken_over.status_code == 201 and "Idempotent-Replayed" not in taken_over.headers
    assert count_mine(client, alice) == 2


@pytest.mark.parametrize("path", ["/api/v1/characters/generate", "/api/v1/characters"])
def test_a_character_notes_its_id_for_the_key_in_its_own_transaction(client, app, alice, path):
    """Characters are inserted without the ORM's unit of work (no flush for the hook to see):
    the service notes the new id itself, so a lost answer is replayed as for templates."""
    from app.common.idempotency import IdempotencyRecord
    from app.extensions import db

    template = create_template(client, alice)
    body = {"template_id": template["id"]}
    body |= {"seed": 3} if path.endswith("generate") else {"name": "Noted"}
    headers = {**alice.auth, "Idempotency-Key": "noted"}
    created = client.post(path, json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    with app.app_context():
        record = db.session.query(IdempotencyRecord).filter_by(key="noted").one()
        assert str(record.resource_id) == created.get_json()["id"]
        record.state = "in_flight"  # the process died after the commit, before the answer
        record.status_code = record.response_body = record.response_headers = None
        db.session.commit()
    retry = client.post(path, json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == created.get_json()
    assert retry.headers["Location"] == created.headers["Location"]
    listed = client.get("/api/v1/characters", headers=alice.auth)
    assert json.loads(listed.headers["X-Pagination"])["total"] == 1
