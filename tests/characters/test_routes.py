"""/characters: free-form and templated creation, generate == preview, edits, visibility, lists."""

from __future__ import annotations

import copy
import json
import re
import uuid
from urllib.parse import quote

import pytest

from tests.support.factories import (
    SIMPLE_DEFINITION,
    create_template,
    make_account,
    picking_definition,
)
from tests.support.sql import statements

BASE = "/api/v1/characters"


def etag(client, account, character_id):
    return client.get(f"{BASE}/{character_id}", headers=account.auth).headers["ETag"]


def patch(client, account, character_id, body, tag=None):
    headers = {**account.auth, "If-Match": tag or etag(client, account, character_id)}
    return client.patch(f"{BASE}/{character_id}", json=body, headers=headers)


def create(client, account, **body):
    body.setdefault("name", "Brana")
    response = client.post(BASE, json=body, headers=account.auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def generate(client, account, template_id, **body):
    response = client.post(
        f"{BASE}/generate", json={"template_id": template_id, **body}, headers=account.auth
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def template(client, alice):
    return create_template(client, alice, is_public=True)


# --- free-form ------------------------------------------------------------------------------


def test_free_form_character(client, alice):
    response = client.post(
        BASE, json={"name": " Vex ", "attributes": {"mood": " grim "}}, headers=alice.auth
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"{BASE}/{body['id']}"
    assert response.headers["ETag"] == etag(client, alice, body["id"])
    assert body["name"] == "Vex"
    assert body["attributes"] == {"mood": "grim"}
    assert (
        body["template_id"],
        body["seed"],
        body["template_version"],
        body["generator_version"],
    ) == (None,) * 4
    assert (body["backstory"], body["is_public"], body["portrait"]) == ("", False, None)
    assert body["owner"]["id"] == alice.id and "email" not in body["owner"]
    defaults = create(client, alice)
    assert defaults["attributes"] == {}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "n" * 101},
        {"name": "x", "attributes": []},
        {"name": "x", "attributes": "str"},
        {"name": "x", "attributes": {f"k{i}": i for i in range(201)}},
        {"name": "x", "attributes": {"blob": "x" * (64 * 1024)}},
        {"name": "x", "backstory": "b" * 10001},
        {"name": "x", "is_public": 1},
        {"name": "x", "seed": 5},
        {"name": "x", "owner": "me"},
        {"name": "x", "template_id": "not-a-uuid"},
        {"name": "x", "template_id": str(uuid.uuid4())},
    ],
)
def test_create_rejects_bad_bodies(client, alice, body):
    response = client.post(BASE, json=body, headers=alice.auth)
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"]
    assert client.get(BASE, headers=alice.auth).get_json() == []


def test_free_form_limits_are_inclusive(client, alice):
    assert create(client, alice, attributes={f"k{i}": i for i in range(200)})
    blob = "x" * (64 * 1024 - len('{"b":""}'))
    assert create(client, alice, attributes={"b": blob})


def test_backstory_is_sanitised(client, alice):
    body = create(
        client, alice, backstory='<p>Born <a href="javascript:x">here</a><script>1</script></p>'
    )
    assert body["backstory"] == '<p>Born <a rel="noopener noreferrer nofollow">here</a></p>'


# --- with a template ------------------------------------------------------------------------


def test_templated_character_fills_and_derives(client, alice, template):
    body = create(
        client,
        alice,
        template_id=template["id"],
        name="Zed",
        attributes={"klass": "Wizard", "str": 14},
    )
    attributes = body["attributes"]
    assert body["name"] == "Zed" and attributes["name"] == "Zed"
    assert attributes["klass"] == "Wizard" and attributes["str"] == 14
    assert attributes["str_mod"] == 2
    assert 1 <= attributes["hit_points"] <= 6
    assert len(attributes["spells"]) == 2
    assert body["template_id"] == template["id"]
    assert body["template_version"] == 1
    assert body["generator_version"] == "1"
    assert 0 <= body["seed"] <= 2**53 - 1


@pytest.mark.parametrize(
    ("attributes", "key"),
    [
        ({"nope": 1}, "nope"),
        ({"str": "14"}, "str"),
        ({"str": 14.0}, "str"),
        ({"str": 19}, "str"),
        ({"str": 2}, "str"),
        ({"klass": "Bard"}, "klass"),
        ({"traits": ["brave", "brave"]}, "traits"),
        ({"traits": ["brave"]}, "traits"),
        ({"traits": ["brave", "lazy"]}, "traits"),
        ({"klass": "Fighter", "spells": ["Shield", "Sleep"]}, "spells"),
        ({"str_mod": 3}, "str_mod"),
        ({"left_handed": 1}, "left_handed"),
        ({"motto": "m" * 51}, "motto"),
        ({"klass": "Wizard", "hit_points": 7}, "hit_points"),
    ],
)
def test_templated_attributes_are_validated(client, alice, template, attributes, key):
    response = client.post(
        BASE,
        json={"name": "x", "template_id": template["id"], "attributes": attributes},
        headers=alice.auth,
    )
    assert response.status_code == 422
    assert key in response.get_json()["errors"]["json"]["attributes"]


def test_template_must_be_visible(client, alice, bob):
    private = create_template(client, bob)
    response = client.post(
        BASE, json={"name": "x", "template_id": private["id"]}, headers=alice.auth
    )
    assert response.status_code == 422
    assert "template_id" in response.get_json()["errors"]["json"]


# --- generate -------------------------------------------------------------------------------


def test_generate_stores_exactly_what_preview_shows(client, alice, template):
    inputs = {"seed": 1234, "locks": {"klass": "Rogue"}, "rerolls": {"traits": 2}}
    preview = client.post(
        f"/api/v1/templates/{template['id']}/preview", json=inputs, headers=alice.auth
    )
    shown = preview.get_json()[0]
    stored = generate(client, alice, template["id"], **inputs)
    assert stored["name"] == shown["name"]
    assert stored["attributes"] == shown["attributes"]
    assert stored["seed"] == 1234
    assert (stored["template_version"], stored["generator_version"]) == (1, "1")
    assert stored["is_public"] is False


def test_generate_name_override_and_random_seed(client, alice, template):
    stored = generate(client, alice, template["id"], name="Named", is_public=True)
    assert stored["name"] == "Named" and stored["attributes"]["name"] == "Named"
    assert isinstance(stored["seed"], int) and stored["is_public"] is True
    again = generate(client, alice, template["id"], seed=stored["seed"])
    assert again["attributes"]["str"] == stored["attributes"]["str"]
    zero = generate(client, alice, template["id"], seed=0)
    assert zero["seed"] == 0


def test_preview_cleans_locks_as_generate_does(client, alice, template):
    inputs = {"seed": 3, "locks": {"klass": " Wiz\u0007ard ", "name": " Bob ", "motto": "e\u0301 "}}
    preview = client.post(
        f"/api/v1/templates/{template['id']}/preview", json=inputs, headers=alice.auth
    )
    assert preview.status_code == 200, preview.get_json()
    shown = preview.get_json()[0]
    stored = generate(client, alice, template["id"], **inputs)
    assert shown["name"] == stored["name"] == "Bob"
    assert shown["attributes"] == stored["attributes"]
    assert (stored["attributes"]["klass"], stored["attributes"]["motto"]) == ("Wizard", "\u00e9")


def test_the_fallback_name_keeps_within_100_characters(client, alice):
    # no name field: characters are named "<template name> #<n>", the template name shortened
    definition = {"fields": [{"key": "x", "type": "integer", "dice": "d6"}]}
    template = create_template(client, alice, name="T" * 100, definition=definition)
    preview = client.post(
        f"/api/v1/templates/{template['id']}/preview", json={"seed": 1}, headers=alice.auth
    )
    stored = generate(client, alice, template["id"], seed=1)  # was a 500 on PostgreSQL
    assert stored["name"] == preview.get_json()[0]["name"]
    assert len(stored["name"]) <= 100
    assert re.fullmatch(r"T{90,98} #\d{1,4}", stored["name"])
    short = create_template(client, alice, name="Short", definition=definition)
    assert re.fullmatch(r"Short #\d{1,4}", generate(client, alice, short["id"], seed=1)["name"])


def test_a_given_name_skips_a_name_field_that_is_switched_off(client, alice):
    definition = {
        "names": {"a": {"parts": [["Ann"]]}},
        "fields": [
            {"key": "kind", "type": "choice", "options": ["named", "anon"]},
            {"key": "nm", "type": "name", "generator": "a", "when": "kind == 'named'"},
        ],
    }
    template = create_template(client, alice, definition=definition)
    for kind in ("named", "anon"):
        made = create(
            client, alice, name="Rena", template_id=template["id"], attributes={"kind": kind}
        )
        assert made["name"] == "Rena"
        assert made["attributes"]["nm"] == ("Rena" if kind == "named" else None)
    anon = generate(client, alice, template["id"], name="Rena", locks={"kind": "anon"})
    assert (anon["name"], anon["attributes"]["nm"]) == ("Rena", None)
    renamed = patch(client, alice, anon["id"], {"name": "Renamed"})
    assert renamed.status_code == 200, renamed.get_json()
    assert (renamed.get_json()["name"], renamed.get_json()["attributes"]["nm"]) == ("Renamed", None)
    # setting the field itself while it is off is still an error
    response = client.post(
        f"{BASE}/generate",
        json={
            "template_id": template["id"],
            "name": "Rena",
            "locks": {"kind": "anon", "nm": "Rena"},
        },
        headers=alice.auth,
    )
    assert response.status_code == 422
    assert "nm" in response.get_json()["errors"]["json"]["locks"]


def test_characters_over_a_mebibyte_are_refused_and_nothing_is_stored(client, alice):
    # 30 fields of 1,000 picks: ~1.4 MB of attributes from a 52 KB definition
    big = create_template(client, alice, definition=picking_definition(30))
    generated = client.post(
        f"{BASE}/generate", json={"template_id": big["id"], "seed": 1}, headers=alice.auth
    )
    assert generated.status_code == 422
    assert generated.headers["Content-Type"] == "application/problem+json"
    (message,) = generated.get_json()["errors"]["json"]["_schema"]
    assert "(at most 1048576)" in message
    made = client.post(BASE, json={"name": "Big", "template_id": big["id"]}, headers=alice.auth)
    assert made.status_code == 422
    assert "(at most 1048576)" in made.get_json()["errors"]["json"]["attributes"][0]
    assert client.get(BASE, headers=alice.auth).get_json() == []
    # just under the bound (21 fields: 1,008,000 bytes and their keys) is stored whole
    fits = create_template(client, alice, definition=picking_definition(21))
    stored = generate(client, alice, fits["id"], seed=1)
    assert len(stored["attributes"]["p20"]) == 1000


def test_an_edit_may_not_make_a_character_too_large(client, alice):
    template = create_template(client, alice, definition=picking_definition(18, texts=20))
    character = generate(client, alice, template["id"], seed=3)
    tag = etag(client, alice, character["id"])
    grown = {f"t{index}": "y" * 10000 for index in range(20)}  # +200 KB: past 1 MiB
    response = patch(client, alice, character["id"], {"attributes": grown}, tag)
    assert response.status_code == 422
    assert "(at most 1048576)" in response.get_json()["errors"]["json"]["attributes"][0]
    assert etag(client, alice, character["id"]) == tag  # nothing written
    response = patch(client, alice, character["id"], {"attributes": {"t0": "y" * 10000}}, tag)
    assert response.status_code == 200
    assert response.get_json()["attributes"]["t0"] == "y" * 10000


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"locks": {"klass": "Bard"}}, ("locks", "klass")),
        ({"rerolls": {"nope": 1}}, ("rerolls", "nope")),
        ({"seed": -1}, ("seed",)),
        ({"template_id": None}, ("template_id",)),
        ({"attributes": {}}, ("attributes",)),
    ],
)
def test_generate_rejects_bad_input(client, alice, template, body, where):
    response = client.post(
        f"{BASE}/generate", json={"template_id": template["id"], **body}, headers=alice.auth
    )
    assert response.status_code == 422
    node = response.get_json()["errors"]["json"]
    for part in where:
        node = node[part]
    assert node


def test_template_without_name_field_names_characters_after_itself(client, alice):
    definition = {"fields": [{"key": "age", "type": "integer", "range": [1, 9]}]}
    template = create_template(client, alice, name="Nameless", definition=definition)
    stored = generate(client, alice, template["id"], seed=5)
    assert stored["name"].startswith("Nameless #")


# --- idempotency ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/generate"])
def test_idempotency_key_on_creation(client, alice, template, path):
    body = {"template_id": template["id"], "name": "Once"}
    if path:
        body["seed"] = 9
    headers = {**alice.auth, "Idempotency-Key": f"char{path}"}
    first = client.post(f"{BASE}{path}", json=body, headers=headers)
    second = client.post(f"{BASE}{path}", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()
    assert len(client.get(BASE, headers=alice.auth).get_json()) == 1
    other = client.post(f"{BASE}{path}", json={**body, "name": "Twice"}, headers=headers)
    assert other.status_code == 422


# --- visibility -------------------------------------------------------------------------------


@pytest.mark.parametrize("public", [False, True])
@pytest.mark.parametrize("who", ["owner", "other", "admin"])
def test_visibility_matrix(client, alice, bob, admin, public, who):
    character = create(client, alice, is_public=public)
    caller = {"owner": alice, "other": bob, "admin": admin}[who]
    can_read = public or who != "other"
    read = client.get(f"{BASE}/{character['id']}", headers=caller.auth)
    assert read.status_code == (200 if can_read else 404)
    tag = read.headers.get("ETag", '"x"')
    write = client.patch(
        f"{BASE}/{character['id']}", json={"name": "New"}, headers={**caller.auth, "If-Match": tag}
    )
    can_write = who in ("owner", "admin")
    assert write.status_code == (200 if can_write else (403 if can_read else 404))
    tag = write.headers.get("ETag", tag)
    delete = client.delete(f"{BASE}/{character['id']}", headers={**caller.auth, "If-Match": tag})
    assert delete.status_code == (204 if can_write else (403 if can_read else 404))


def test_unknown_or_malformed_ids_are_404(client, alice):
    for path in (str(uuid.uuid4()), "nope"):
        assert client.get(f"{BASE}/{path}", headers=alice.auth).status_code == 404


# --- edits ------------------------------------------------------------------------------------


def test_patch_requires_if_match(client, alice):
    character = create(client, alice)
    assert (
        client.patch(
            f"{BASE}/{character['id']}", json={"name": "x"}, headers=alice.auth
        ).status_code
        == 428
    )
    assert patch(client, alice, character["id"], {"name": "x"}, tag='"old"').status_code == 412
    assert client.delete(f"{BASE}/{character['id']}", headers=alice.auth).status_code == 428


def test_patch_free_form_merges_like_rfc_7396(client, alice):
    character = create(client, alice, attributes={"a": 1, "b": 2})
    response = patch(
        client, alice, character["id"], {"attributes": {"b": None, "c": 3}, "backstory": "<b>x</b>"}
    )
    assert response.status_code == 200
    assert response.get_json()["attributes"] == {"a": 1, "c": 3}
    assert response.get_json()["backstory"] == "<b>x</b>"
    assert response.headers["ETag"] == etag(client, alice, character["id"])


def test_patch_cannot_touch_server_fields(client, alice, template):
    character = generate(client, alice, template["id"])
    for body in (
        {"template_id": None},
        {"seed": 1},
        {"owner": None},
        {"id": "x"},
        {"portrait": None},
    ):
        assert patch(client, alice, character["id"], body).status_code == 422


def test_patch_templated_revalidates_and_recomputes(client, alice, template):
    character = generate(
        client, alice, template["id"], seed=77, locks={"klass": "Wizard", "str": 12}
    )
    assert character["attributes"]["spells"]
    response = patch(client, alice, character["id"], {"attributes": {"str": 16}})
    assert response.status_code == 200
    assert response.get_json()["attributes"]["str_mod"] == 3
    # klass stops being Wizard: spells (when-false) become null; hit_points must fit the new dice
    hp = response.get_json()["attributes"]["hit_points"]
    fighter = patch(client, alice, character["id"], {"attributes": {"klass": "Fighter"}})
    assert fighter.status_code == 200, fighter.get_json()
    assert fighter.get_json()["attributes"]["spells"] is None
    assert fighter.get_json()["attributes"]["hit_points"] == hp  # 1..6 fits 1d10
    high = patch(client, alice, character["id"], {"attributes": {"hit_points": 9}})
    assert high.status_code == 200
    back = patch(client, alice, character["id"], {"attributes": {"klass": "Wizard"}})
    assert back.status_code == 422
    assert "hit_points" in back.get_json()["errors"]["json"]["attributes"]
    reset = patch(
        client, alice, character["id"], {"attributes": {"klass": "Wizard", "hit_points": None}}
    )
    assert reset.status_code == 200
    attributes = reset.get_json()["attributes"]
    assert 1 <= attributes["hit_points"] <= 6
    assert len(attributes["spells"]) == 2  # `when` turned true again: generated from the seed


def test_patch_null_goes_back_to_the_generated_value(client, alice, template):
    character = generate(client, alice, template["id"], seed=5)
    original = character["attributes"]["str"]
    changed = original + 1 if original < 18 else original - 1
    assert (
        patch(client, alice, character["id"], {"attributes": {"str": changed}}).get_json()[
            "attributes"
        ]["str"]
        == changed
    )
    reset = patch(client, alice, character["id"], {"attributes": {"str": None}})
    assert reset.get_json()["attributes"]["str"] == original


def test_patch_name_follows_the_name_field(client, alice, template):
    character = generate(client, alice, template["id"], seed=5)
    renamed = patch(client, alice, character["id"], {"name": "Renamed"}).get_json()
    assert renamed["name"] == "Renamed" and renamed["attributes"]["name"] == "Renamed"
    via_attributes = patch(
        client, alice, character["id"], {"attributes": {"name": "Other"}}
    ).get_json()
    assert via_attributes["name"] == "Other"


def test_a_new_name_keeps_stored_text_until_that_text_is_reset(client, alice):
    definition = {
        "names": {"h": {"parts": [["Al", "Bo"]]}},
        "grammars": {"g": {"origin": ["#name# rides"]}},
        "fields": [
            {"key": "name", "type": "name", "generator": "h"},
            {"key": "hook", "type": "text", "grammar": "g"},
        ],
    }
    made = create_template(client, alice, definition=definition)
    character = generate(client, alice, made["id"], seed=1)
    old = character["name"]
    assert character["attributes"]["hook"] == f"{old} rides"
    renamed = patch(client, alice, character["id"], {"name": "Zed"}).get_json()
    assert renamed["name"] == "Zed" and renamed["attributes"]["hook"] == f"{old} rides"
    reset = patch(client, alice, character["id"], {"attributes": {"hook": None}}).get_json()
    assert reset["attributes"]["hook"] == "Zed rides"


def test_characters_are_validated_against_their_own_template_version(client, alice, template):
    character = generate(client, alice, template["id"], seed=3, locks={"str": 18})
    changed = copy.deepcopy(SIMPLE_DEFINITION)
    changed["fields"][2]["dice"] = "3d4"  # 3..12 now
    tag = client.get(f"/api/v1/templates/{template['id']}", headers=alice.auth).headers["ETag"]
    client.patch(
        f"/api/v1/templates/{template['id']}",
        json={"definition": changed},
        headers={**alice.auth, "If-Match": tag},
    )
    response = patch(client, alice, character["id"], {"attributes": {"str": 17}})
    assert response.status_code == 200  # still version 1's 4d6kh3
    assert response.get_json()["template_version"] == 1
    newer = generate(client, alice, template["id"], locks={"str": 12})
    assert newer["template_version"] == 2
    assert patch(client, alice, newer["id"], {"attributes": {"str": 17}}).status_code == 422


def test_deleting_the_template_keeps_characters_as_free_form(client, alice, template):
    character = generate(client, alice, template["id"], seed=11)
    tag = client.get(f"/api/v1/templates/{template['id']}", headers=alice.auth).headers["ETag"]
    deleted = client.delete(
        f"/api/v1/templates/{template['id']}", headers={**alice.auth, "If-Match": tag}
    )
    assert deleted.status_code == 204
    kept = client.get(f"{BASE}/{character['id']}", headers=alice.auth).get_json()
    assert character["seed"] == 11 and character["template_version"] == 1
    # a character without a template, as API.md has them: what only meant something with the
    # template is null (its name and attributes are kept)
    assert kept["template_id"] is kept["seed"] is kept["template_version"] is None
    assert kept["generator_version"] is None
    assert kept["attributes"] == character["attributes"]
    assert kept["name"] == character["name"]
    free = patch(client, alice, character["id"], {"attributes": {"str": "anything", "new": [1]}})
    assert free.status_code == 200
    assert free.get_json()["attributes"]["str"] == "anything"


def test_deleting_an_account_leaves_others_characters_from_its_templates_without_one(
    client, alice, bob
):
    made = generate(client, bob, create_template(client, alice, is_public=True)["id"], seed=5)
    assert made["seed"] == 5
    tag = client.get("/api/v1/users/me", headers=alice.auth).headers["ETag"]
    gone = client.delete("/api/v1/users/me", headers={**alice.auth, "If-Match": tag})
    assert gone.status_code == 204
    kept = client.get(f"{BASE}/{made['id']}", headers=bob.auth).get_json()
    assert kept["template_id"] is kept["seed"] is kept["template_version"] is None
    assert kept["generator_version"] is None and kept["attributes"] == made["attributes"]


def test_deleting_the_account_deletes_its_characters(client, alice, bob):
    character = create(client, alice, is_public=True)
    tag = client.get("/api/v1/users/me", headers=alice.auth).headers["ETag"]
    assert (
        client.delete("/api/v1/users/me", headers={**alice.auth, "If-Match": tag}).status_code
        == 204
    )
    assert client.get(f"{BASE}/{character['id']}", headers=bob.auth).status_code == 404


# --- lists ------------------------------------------------------------------------------------


def test_scopes(client, alice, bob, admin):
    mine_private = create(client, alice, name="A private")
    mine_public = create(client, alice, name="A public", is_public=True)
    theirs_public = create(client, bob, name="B public", is_public=True)
    create(client, bob, name="B private")
    ids = lambda r: {c["id"] for c in r.get_json()}  # noqa: E731
    assert ids(client.get(BASE, headers=alice.auth)) == {mine_private["id"], mine_public["id"]}
    public = client.get(f"{BASE}?scope=public", headers=alice.auth)
    assert ids(public) == {mine_public["id"], theirs_public["id"]}
    assert client.get(f"{BASE}?scope=all", headers=alice.auth).status_code == 403
    everything = client.get(f"{BASE}?scope=all", headers=admin.auth)
    assert len(ids(everything)) == 4
    assert client.get(f"{BASE}?scope=everyone", headers=alice.auth).status_code == 422


def test_search_filter_sort_and_pages(client, alice, template):
    for name in ("Crow", "alder", "Birch"):
        create(client, alice, name=name)
    from_template = generate(client, alice, template["id"], name="Oak")
    names = lambda r: [c["name"] for c in r.get_json()]  # noqa: E731
    # case-insensitive, the same on every database and collation
    assert names(client.get(f"{BASE}?sort=name", headers=alice.auth)) == [
        "alder",
        "Birch",
        "Crow",
        "Oak",
    ]
    assert names(client.get(f"{BASE}?sort=-created_at", headers=alice.auth))[0] == "Oak"
    assert set(names(client.get(f"{BASE}?q=R", headers=alice.auth))) == {"Birch", "Crow", "alder"}
    by_template = client.get(f"{BASE}?template_id={template['id']}", headers=alice.auth)
    assert [c["id"] for c in by_template.get_json()] == [from_template["id"]]
    page = client.get(f"{BASE}?page_size=3&page=2&sort=name", headers=alice.auth)
    assert names(page) == ["Oak"]
    meta = json.loads(page.headers["X-Pagination"])
    assert (meta["total"], meta["total_pages"], meta["previous_page"]) == (4, 2, 1)
    for bad in ("template_id=nope", "sort=seed", "page_size=101", "scope="):
        assert client.get(f"{BASE}?{bad}", headers=alice.auth).status_code == 422, bad


def test_prepared_list_statements_take_each_requests_values(client, alice, bob):
    """Each list variant is built once (service._list_statement) and bound per request."""
    for name in ("100% Orc", "Half_Elf", "Plain"):
        create(client, alice, name=name)
    create(client, bob, name="Bob's 100% Orc")
    names = lambda path, who: [c["name"] for c in client.get(path, headers=who.auth).get_json()]  # noqa: E731
    for _ in range(2):  # alternately, so the second round reuses both prepared statements
        assert names(f"{BASE}?sort=name", alice) == ["100% Orc", "Half_Elf", "Plain"]
        assert names(f"{BASE}?sort=name", bob) == ["Bob's 100% Orc"]
    assert names(f"{BASE}?q=%25", alice) == ["100% Orc"]  # wildcards are taken literally
    assert names(f"{BASE}?q=_", alice) == ["Half_Elf"]
    assert names(f"{BASE}?q=%25", bob) == ["Bob's 100% Orc"]
    pages = [names(f"{BASE}?sort=name&page_size=1&page={n}", alice) for n in (1, 2, 3, 4)]
    assert pages == [["100% Orc"], ["Half_Elf"], ["Plain"], []]


ODOS = "\u039f\u0394\u039f\u03a3"  # Greek capitals, ending in a capital sigma
SIGMA, SMALL_SIGMA, SMALL_ODOS = "\u03a3", "\u03c3", "\u03bf\u03b4\u03bf\u03c3"
SPELLED = [ODOS, "\u0130stanbul", "Élodie", "ÉCOLE", "école", "Straße", "zed"]


@pytest.mark.parametrize("scope", ["mine", "public"])
def test_a_name_is_found_by_itself_and_its_parts_in_any_case(client, alice, scope):
    # the searched text and the names are folded alike (letter by letter, as PostgreSQL's
    # lower() does): Python's str.lower() gave the Greek word a final sigma, the dotted capital
    # I two letters, and neither name was found by itself
    for name in SPELLED:
        create(client, alice, name=name, is_public=True)

    def found(text: str) -> set[str]:
        response = client.get(f"{BASE}?scope={scope}&q={quote(text)}", headers=alice.auth)
        assert response.status_code == 200, text
        return {character["name"] for character in response.get_json()}

    other_case = {
        ODOS: SMALL_ODOS,
        "\u0130stanbul": "iSTANBUL",
        "Élodie": "éLODIE",
        "ÉCOLE": "école",
        "école": "ÉCOLE",
        "Straße": "STRAßE",
        "zed": "ZED",
    }
    for name in SPELLED:
        for part in {name, name[:2], name[-1], name[1:3], other_case[name]}:
            assert name in found(part), (name, part)
    assert found(SIGMA) == found(SMALL_SIGMA) == {ODOS}
    assert found("istanbul") == {"\u0130stanbul"}
    assert found("é") == {"Élodie", "ÉCOLE", "école"}
    # and templates are searched the same way
    create_template(client, alice, name=f"{ODOS} template")
    path = f"/api/v1/templates?owner=me&q={quote(SMALL_ODOS)}"
    assert [t["name"] for t in client.get(path, headers=alice.auth).get_json()] == [
        f"{ODOS} template"
    ]


def test_names_sort_by_their_folded_letters_on_every_database(client, alice):
    for name in ("école", "Zed", "ÉCOLE", "apple", "Élodie"):
        create(client, alice, name=name)
    listed = client.get(f"{BASE}?sort=name", headers=alice.auth).get_json()
    names = [c["name"] for c in listed]
    # folded, then code point order (not a language's collation): é after z, É next to é
    assert names[:2] == ["apple", "Zed"]
    assert set(names[2:4]) == {"école", "ÉCOLE"} and names[4] == "Élodie"


def test_options_written_unclean_can_be_sent_back(client, alice):
    # the definition keeps its options as written (API.md), users' values arrive cleaned (NFC,
    # no control characters, trimmed): a value still names the option it cleans to
    nfd, bell, spaced = "e\u0301cole", "ring\u0007", " x "
    definition = {
        "fields": [
            {"key": "school", "type": "choice", "options": [nfd, "other"]},
            {"key": "marks", "type": "pick", "options": [bell, spaced, "plain"], "count": 2},
        ]
    }
    template = create_template(client, alice, definition=definition)
    made = create(
        client,
        alice,
        name="Unclean",
        template_id=template["id"],
        attributes={"school": nfd, "marks": [bell, spaced]},
    )
    # stored as the options are written: what generating them would have stored
    assert made["attributes"] == {"school": nfd, "marks": [bell, spaced]}
    generated = generate(client, alice, template["id"], locks={"school": "\u00e9cole"})
    assert generated["attributes"]["school"] == nfd
    # a PATCH that leaves them alone, or sends them back as read, keeps them
    response = patch(client, alice, generated["id"], {"attributes": generated["attributes"]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["attributes"] == generated["attributes"]
    assert patch(client, alice, made["id"], {"name": "Renamed"}).status_code == 200
    # a value that names no option is still refused
    wrong = client.post(
        BASE,
        json={"name": "W", "template_id": template["id"], "attributes": {"school": "ecole"}},
        headers=alice.auth,
    )
    assert wrong.status_code == 422 and "school" in wrong.get_json()["errors"]["json"]["attributes"]


def store_as_saved_earlier(app, account, definition, name="Earlier"):
    """A template whose definition an earlier release accepted and today's refuses: written
    through the service, past the schema, as it would have been then."""
    from app.character_templates import service
    from app.extensions import db
    from app.users.models import User

    with app.app_context():
        owner = db.session.get(User, uuid.UUID(account.id))
        data = {"name": name, "definition": definition}
        return str(service.create_template(owner=owner, data=data).id)


def test_generated_names_are_names_a_client_can_send_back(app, client, alice):
    # a name is cleaned (NFC, no control characters, trimmed) and 1..100 characters however it
    # comes: generated names are cleaned too, and a generator that can make a blank one is 422
    blank = {
        "names": {"h": {"parts": [["   ", "\u0007\u0007"]]}},
        "fields": [{"key": "n", "type": "name", "generator": "h"}],
    }
    refused = client.post(
        "/api/v1/templates", json={"name": "T", "definition": blank}, headers=alice.auth
    )
    assert refused.status_code == 422
    assert (
        "empty name" in refused.get_json()["errors"]["json"]["definition"]["names"]["h"]["parts"][0]
    )
    # one stored before keeps generating: a blank name gives the fallback name
    earlier = store_as_saved_earlier(app, alice, blank, name="Blank")
    for seed in (1, 2):
        preview = client.post(
            f"/api/v1/templates/{earlier}/preview", json={"seed": seed}, headers=alice.auth
        ).get_json()[0]
        made = generate(client, alice, earlier, seed=seed)
        assert made["name"] == preview["name"] and re.fullmatch(r"Blank #\d{1,4}", made["name"])
        assert made["attributes"] == preview["attributes"] == {"n": None}
    # parts written unclean make clean names, which go back unchanged
    unclean = {
        "names": {"h": {"parts": [[" Al\u0007", "Re\u0301"], ["my ", "ric"]]}},
        "fields": [{"key": "n", "type": "name", "generator": "h"}],
    }
    template = create_template(client, alice, definition=unclean)
    for seed in range(8):
        made = generate(client, alice, template["id"], seed=seed)
        assert made["name"] in {"Almy", "Alric", "R\u00e9my", "R\u00e9ric"}
        assert made["attributes"]["n"] == made["name"]
        response = patch(client, alice, made["id"], {"name": made["name"]})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["attributes"] == made["attributes"]
        again = create(client, alice, name=made["name"], template_id=template["id"])
        assert again["name"] == made["name"]


@pytest.mark.parametrize("blank", ["\u200b", "\u00ad\u200b", "\u3164", "\u2800\u2800"])
def test_names_that_show_nothing_are_refused_however_they_come(app, client, alice, blank):
    # a name with no visible character is as blank as "": refused from a client, as a lock on
    # the name field and in a name generator; a generator stored earlier gives fallback names
    template = create_template(client, alice)
    sent = [
        (f"/api/v1/templates/{template['id']}/preview", {"seed": 1, "locks": {"name": blank}}),
        (f"{BASE}/generate", {"template_id": template["id"], "locks": {"name": blank}}),
        (f"{BASE}/generate", {"template_id": template["id"], "name": blank}),
        (BASE, {"name": blank}),
    ]
    for url, body in sent:
        response = client.post(url, json=body, headers=alice.auth)
        assert response.status_code == 422, (url, body, response.get_json())
        assert "visible character" in json.dumps(response.get_json()["errors"]), url
    invisible = {
        "names": {"h": {"parts": [[blank, "Al"], [blank, "\u00ad"]]}},
        "fields": [{"key": "n", "type": "name", "generator": "h"}],
    }
    refused = client.post(
        "/api/v1/templates", json={"name": "T", "definition": invisible}, headers=alice.auth
    )
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["json"]["definition"]["names"]["h"]["parts"]
    earlier = store_as_saved_earlier(app, alice, invisible, name="Blank")
    names = {generate(client, alice, earlier, seed=seed)["name"] for seed in range(12)}
    fallback = {name for name in names if re.fullmatch(r"Blank #\d{1,4}", name)}
    assert fallback and all(name.startswith("Al") for name in names - fallback)


def test_template_values_stay_within_the_safe_integer_range(client, alice):
    # every result of b is past 2**53 - 1 (so it is null): no lock or attribute can set it,
    # and no message names a bound beyond the safe range
    limit = 2**53 - 1
    definition = {
        "fields": [
            {"key": "a", "type": "integer", "range": [limit, limit]},
            {"key": "b", "type": "integer", "dice": "d6", "plus": "a"},
            {"key": "c", "type": "integer", "range": [-9, 0], "plus": "a"},
        ]
    }
    template = create_template(client, alice, definition=definition)
    bodies = [
        (f"/api/v1/templates/{template['id']}/preview", {"seed": 1}, "locks"),
        (f"{BASE}/generate", {"template_id": template["id"], "seed": 1}, "locks"),
        (BASE, {"name": "Big", "template_id": template["id"]}, "attributes"),
    ]
    for url, body, member in bodies:
        values = {"b": limit + 2, "c": limit + 1}
        response = client.post(url, json={**body, member: values}, headers=alice.auth)
        assert response.status_code == 422, response.get_json()
        errors = response.get_json()["errors"]["json"][member]
        assert errors["b"] == ["can have no value here: every result is beyond +-(2**53 - 1)"]
        assert errors["c"] == [f"must be between {limit - 9} and {limit}"]
    made = generate(client, alice, template["id"], seed=1, locks={"c": limit})
    assert made["attributes"] == {"a": limit, "b": None, "c": limit}


def test_a_template_stored_with_null_sections_still_generates(app, client, alice):
    # null for tables, names or grammars is 422 now; a definition stored with them reads as if
    # they were left out
    definition = {
        "tables": None,
        "names": None,
        "grammars": None,
        "fields": [{"key": "a", "type": "integer", "dice": "d6"}],
    }
    for member in ("tables", "names", "grammars"):
        body = {"name": "T", "definition": {**SIMPLE_DEFINITION, member: None}}
        response = client.post("/api/v1/templates", json=body, headers=alice.auth)
        assert response.status_code == 422
        errors = response.get_json()["errors"]["json"]["definition"]
        assert "must be an object" in errors[member][0]
    earlier = store_as_saved_earlier(app, alice, definition)
    made = generate(client, alice, earlier, seed=4)
    assert 1 <= made["attributes"]["a"] <= 6


def test_list_issues_a_constant_number_of_queries(app, client):
    from app.extensions import db

    owners = [make_account(client) for _ in range(3)]
    for index in range(30):
        create(client, owners[index % 3], name=f"C{index}", is_public=True)
    viewer = owners[0]

    def count_queries(page_size: int) -> int:
        with statements(app) as sent:
            response = client.get(f"{BASE}?scope=public&page_size={page_size}", headers=viewer.auth)
            assert len(response.get_json()) == page_size
        return len(sent)

    # the page, its owners joined and its capped count beside it, in one statement; plus the
    # session check: a statement of its own on SQLite, carried by that one on PostgreSQL
    with app.app_context():
        expected = 1 if db.engine.dialect.name == "postgresql" else 2
    assert count_queries(2) == count_queries(25) == expected


def test_list_pages_past_the_end_and_empty_lists_keep_their_totals(client, alice):
    for index in range(3):
        create(client, alice, name=f"C{index}")
    past = client.get(f"{BASE}?page=3&page_size=2", headers=alice.auth)
    assert past.status_code == 200 and past.get_json() == []
    assert json.loads(past.headers["X-Pagination"])["total"] == 3
    empty = client.get(f"{BASE}?scope=mine&q=nothing-like-this", headers=alice.auth)
    assert empty.get_json() == []
    assert json.loads(empty.headers["X-Pagination"]) == {"total": 0, "total_pages": 0}
    assert "Link" not in empty.headers


def test_demo_seed_is_idempotent(app):
    from app.characters.demo import DEMO_CHARACTERS, seed_demo
    from app.cli import seed_builtin_templates

    lines: list[str] = []
    with app.app_context():
        seed_builtin_templates()
        assert seed_demo(lines.append) == DEMO_CHARACTERS
        assert seed_demo(lines.append) == 0
    assert "shown once" in lines[0] and "exists" in lines[2]


def test_totals_beyond_the_exact_count_limit(app, client, alice):
    """Past 1,000 rows PostgreSQL estimates the total; SQLite (not for large data) counts."""
    from sqlalchemy import insert

    from app.characters.models import Character
    from app.common.types import utcnow
    from app.extensions import db

    now = utcnow()
    with app.app_context():
        db.session.execute(
            insert(Character),
            [
                {"id": uuid.uuid4(), "owner_id": uuid.UUID(alice.id), "name": f"N{i}",
                 "attributes": {}, "backstory": "", "is_public": False, "created_at": now,
                 "updated_at": now, "row_version": 1}
                for i in range(1_050)
            ],
        )  # fmt: skip
        db.session.commit()
        dialect = db.engine.dialect.name
    meta = json.loads(client.get(BASE, headers=alice.auth).headers["X-Pagination"])
    if dialect == "postgresql":
        assert meta.get("total_exact") is False and meta["total"] > 1000
    else:
        assert meta["total"] == 1_050 and "total_exact" not in meta
    assert meta["last_page"] == meta["total_pages"] or meta["last_page"] == 500


def test_etag_changes_with_everything_the_view_shows(client, alice, bob):
    """The view shows the owner's profile and the template id, neither of them in the
    character's row version: a change to either changes the ETag, so a 304 is never stale."""
    own_template = create_template(client, alice, is_public=True)
    character = generate(client, alice, own_template["id"], is_public=True)
    path = f"{BASE}/{character['id']}"
    first = client.get(path, headers=bob.auth)
    tag = first.headers["ETag"]

    me = client.get("/api/v1/users/me", headers=alice.auth)
    renamed = client.patch(
        "/api/v1/users/me",
        json={"display_name": "Alice the Renamed"},
        headers={**alice.auth, "If-Match": me.headers["ETag"]},
    )
    assert renamed.status_code == 200
    after_rename = client.get(path, headers={**bob.auth, "If-None-Match": tag})
    assert after_rename.status_code == 200
    assert after_rename.get_json()["owner"]["display_name"] == "Alice the Renamed"
    assert after_rename.headers["ETag"] != tag
    # the owner's write path agrees with the read path on the new ETag
    tag = after_rename.headers["ETag"]
    assert patch(client, alice, character["id"], {"backstory": "x"}, tag=tag).status_code == 200
    tag = etag(client, alice, character["id"])

    template_path = f"/api/v1/templates/{own_template['id']}"
    template_tag = client.get(template_path, headers=alice.auth).headers["ETag"]
    removed = client.delete(template_path, headers={**alice.auth, "If-Match": template_tag})
    assert removed.status_code == 204
    after_delete = client.get(path, headers={**bob.auth, "If-None-Match": tag})
    assert after_delete.status_code == 200
    assert after_delete.get_json()["template_id"] is None
    assert after_delete.headers["ETag"] != tag
    assert patch(client, alice, character["id"], {"name": "Kept"}, tag=tag).status_code == 412


@pytest.mark.parametrize("name", ["Élodie", "ÆTHER", "ΣΟΦΙΑ", "Ödön"])
def test_search_folds_every_letter(client, alice, name):
    """?q= is case-insensitive for every letter, not only ASCII: SQLite's lower() folds ASCII
    only, so a capital É was not found even by itself."""
    character = create(client, alice, name=name, is_public=True)
    create(client, alice, name="Someone else", is_public=True)
    for text in (name, name.lower(), name.upper(), name[:3].lower(), name[1:3]):
        for scope in ("mine", "public"):
            found = client.get(
                BASE, query_string={"q": text, "scope": scope}, headers=alice.auth
            ).get_json()
            assert character["id"] in [c["id"] for c in found], (text, scope)
            assert all(text.lower() in c["name"].lower() for c in found), (text, scope)
    templates = "/api/v1/templates"
    created = client.post(
        templates,
        json={"name": f"{name} tmpl", "definition": SIMPLE_DEFINITION},
        headers=alice.auth,
    ).get_json()
    found = client.get(
        templates, query_string={"q": name.lower(), "owner": "me"}, headers=alice.auth
    ).get_json()
    assert [t["id"] for t in found] == [created["id"]]


def test_patch_free_form_merges_nested_objects_like_rfc_7396(client, alice):
    character = create(client, alice, attributes={"gear": {"sword": 1, "shield": 1}, "hp": 3})
    response = patch(
        client, alice, character["id"], {"attributes": {"gear": {"shield": None, "bow": 1}}}
    )
    assert response.status_code == 200
    assert response.get_json()["attributes"] == {"gear": {"sword": 1, "bow": 1}, "hp": 3}
    replaced = patch(client, alice, character["id"], {"attributes": {"gear": [1, 2]}})
    assert replaced.get_json()["attributes"] == {"gear": [1, 2], "hp": 3}


def test_name_and_a_different_name_attribute_are_422(client, alice, template):
    """`name` locks the name field: repeating it is fine, contradicting it (or a value of the
    wrong type there) is an error naming the key, not silently overwritten."""
    key = "name"
    for bad in (12345, "Someone Else", [], ""):
        response = client.post(
            BASE,
            json={"name": "Top", "template_id": template["id"], "attributes": {key: bad}},
            headers=alice.auth,
        )
        assert response.status_code == 422, bad
        assert key in response.get_json()["errors"]["json"]["attributes"]
    same = client.post(
        BASE,
        json={"name": "Top", "template_id": template["id"], "attributes": {key: "Top"}},
        headers=alice.auth,
    )
    assert same.status_code == 201 and same.get_json()["attributes"][key] == "Top"
    response = client.post(
        f"{BASE}/generate",
        json={"template_id": template["id"], "name": "Top", "locks": {key: "Other"}},
        headers=alice.auth,
    )
    assert response.status_code == 422
    assert key in response.get_json()["errors"]["json"]["locks"]


def test_a_name_must_show_something(client, alice, template):
    invisible = "\u200b\u00ad"
    refused = client.post(BASE, json={"name": invisible}, headers=alice.auth)
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["json"] == {"name": ["Must contain a visible character."]}
    generated = client.post(
        f"{BASE}/generate",
        json={"template_id": template["id"], "name": invisible},
        headers=alice.auth,
    )
    assert generated.status_code == 422
    assert "name" in generated.get_json()["errors"]["json"]
    character = create(client, alice)
    assert patch(client, alice, character["id"], {"name": "\u0301"}).status_code == 422
    # generated names are the engine's, not a client's text: unaffected
    assert generate(client, alice, template["id"])["name"]
