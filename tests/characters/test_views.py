"""Reads show characters as rows (app.characters.views), writes as ORM models: both must give
the same JSON and the same ETag for the same character."""

from __future__ import annotations

import io

from PIL import Image

from tests.support.factories import create_template

BASE = "/api/v1/characters"


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def assert_same_everywhere(client, account, written):
    """The write's answer equals the read by id and the item in the owner's list."""
    body, etag = written.get_json(), written.headers["ETag"]
    read = client.get(f"{BASE}/{body['id']}", headers=account.auth)
    assert read.status_code == 200
    assert read.get_json() == body
    assert list(read.get_json()) == list(body)  # same members, same order
    assert read.headers["ETag"] == etag
    listed = client.get(f"{BASE}?page_size=100", headers=account.auth).get_json()
    assert [item for item in listed if item["id"] == body["id"]] == [body]


def test_generated_edited_and_portrayed_characters_read_as_written(client, alice):
    template = create_template(client, alice)
    generated = client.post(
        f"{BASE}/generate", json={"template_id": template["id"], "seed": 11}, headers=alice.auth
    )
    assert generated.status_code == 201
    assert_same_everywhere(client, alice, generated)

    character_id = generated.get_json()["id"]
    edited = client.patch(
        f"{BASE}/{character_id}",
        json={"backstory": "<p>Once <b>upon</b></p>", "is_public": True},
        headers={**alice.auth, "If-Match": generated.headers["ETag"]},
    )
    assert edited.status_code == 200
    assert_same_everywhere(client, alice, edited)

    portrayed = client.put(
        f"{BASE}/{character_id}/portrait",
        data={"file": (io.BytesIO(png()), "p.png")},
        content_type="multipart/form-data",
        headers={**alice.auth, "If-Match": edited.headers["ETag"]},
    )
    assert portrayed.status_code == 200, portrayed.get_json()
    assert portrayed.get_json()["portrait"]["width"] == 40
    assert_same_everywhere(client, alice, portrayed)


def test_free_form_characters_read_as_written(client, alice):
    created = client.post(
        BASE, json={"name": "Free", "attributes": {"a": [1, {"b": None}]}}, headers=alice.auth
    )
    assert created.status_code == 201
    assert_same_everywhere(client, alice, created)


def test_a_public_character_reads_the_same_for_others(client, alice, bob):
    created = client.post(BASE, json={"name": "Shared", "is_public": True}, headers=alice.auth)
    theirs = client.get(f"{BASE}/{created.get_json()['id']}", headers=bob.auth)
    assert theirs.get_json() == created.get_json()
    public = client.get(f"{BASE}?scope=public&page_size=100", headers=bob.auth).get_json()
    assert created.get_json() in public


def test_an_edited_profile_shows_at_once_in_lists_and_reads(client, alice):
    """Owners' dumps are cached by value (schemas.OwnerField): an edit is a new value."""
    for name in ("One", "Two"):
        assert client.post(BASE, json={"name": name}, headers=alice.auth).status_code == 201
    before = client.get(BASE, headers=alice.auth).get_json()
    assert before[0]["owner"] == before[1]["owner"]
    me = client.get("/api/v1/users/me", headers=alice.auth)
    edited = client.patch(
        "/api/v1/users/me",
        json={"display_name": "Alice Renamed", "bio": "<p>New</p>"},
        headers={**alice.auth, "If-Match": me.headers["ETag"]},
    )
    assert edited.status_code == 200
    after = client.get(BASE, headers=alice.auth).get_json()
    for item in after:
        assert item["owner"]["display_name"] == "Alice Renamed"
        assert item["owner"]["bio"] == "<p>New</p>"
    read = client.get(f"{BASE}/{after[0]['id']}", headers=alice.auth).get_json()
    public = ("id", "username", "display_name", "bio", "created_at")
    assert read["owner"] == after[0]["owner"] == {key: edited.get_json()[key] for key in public}


def test_cached_owner_dumps_are_never_shared():
    from datetime import UTC, datetime
    from uuid import uuid4

    from app.characters.schemas import OwnerField
    from app.characters.views import OwnerView
    from app.users.schemas import UserPublic

    owner = OwnerView(uuid4(), "ann", "Ann", "", datetime.now(UTC))
    field = OwnerField(UserPublic)
    first = field.serialize("owner", {"owner": owner})
    first["display_name"] = "changed by a caller"
    again = field.serialize("owner", {"owner": owner})
    assert again["display_name"] == "Ann"
    assert again == UserPublic().dump(owner)


def test_created_characters_are_stored_as_the_model_would_write_them(client, app, alice):
    """Creations insert with Core (app.characters.service._insert), not through the model: the
    row must still be the model's, and the model must take it up (an edit bumps its version)."""
    from uuid import UUID

    from sqlalchemy import select

    from app.characters.models import Character
    from app.extensions import db

    template = create_template(client, alice)
    generated = client.post(
        f"{BASE}/generate", json={"template_id": template["id"], "seed": 5}, headers=alice.auth
    )
    free = client.post(BASE, json={"name": "Free", "backstory": "<p>hi</p>"}, headers=alice.auth)
    assert generated.status_code == free.status_code == 201
    columns = (
        Character.rerolls.is_(None).label("no_rerolls"),  # SQL NULL, not JSON null
        Character.row_version,
        Character.created_at,
        Character.updated_at,
        Character.owner_id,
        Character.portrait_digest,
    )
    with app.app_context():
        rows = {
            key: db.session.execute(
                select(*columns).where(Character.id == UUID(response.get_json()["id"]))
            ).one()
            for key, response in (("generated", generated), ("free", free))
        }
        assert db.session.get(Character, UUID(generated.get_json()["id"])).rerolls == {}
    assert rows["free"].no_rerolls is True and rows["generated"].no_rerolls is False
    for row in rows.values():
        assert row.row_version == 1
        assert row.created_at == row.updated_at
        assert str(row.owner_id) == alice.id
        assert row.portrait_digest is None
    edited = client.patch(
        f"{BASE}/{free.get_json()['id']}",
        json={"name": "Freer"},
        headers={**alice.auth, "If-Match": free.headers["ETag"]},
    )
    assert edited.status_code == 200
    assert edited.headers["ETag"] != free.headers["ETag"]
    assert_same_everywhere(client, alice, edited)


def test_rows_are_read_by_position_so_only_the_characters_columns_are_widened():
    """from_row reads a row by position: the owner's columns must come right after the
    character's, so with_owners refuses any other statement."""
    import pytest
    from sqlalchemy import literal

    from app.characters.models import Character
    from app.characters.views import CHARACTERS, CharacterView, with_owners

    assert CharacterView._fields == (*(c.key for c in CHARACTERS.selected_columns), "owner")
    with_owners(CHARACTERS.where(Character.is_public.is_(True)))  # filters are fine
    for statement in (
        CHARACTERS.add_columns(literal(1)),  # would shift the owner's columns
        CHARACTERS.with_only_columns(*reversed(CHARACTERS.selected_columns)),
        CHARACTERS.with_only_columns(Character.id),
    ):
        with pytest.raises(ValueError, match="select CHARACTERS' columns"):
            with_owners(statement)
