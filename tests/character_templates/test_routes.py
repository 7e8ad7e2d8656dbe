"""/templates: CRUD with visibility and ETags, versions, forks, previews, lists, seeding."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from tests.support.factories import SIMPLE_DEFINITION, create_template, picking_definition

BASE = "/api/v1/templates"


def etag(client, account, template_id):
    return client.get(f"{BASE}/{template_id}", headers=account.auth).headers["ETag"]


def patch(client, account, template_id, body, tag=None):
    headers = {**account.auth, "If-Match": tag or etag(client, account, template_id)}
    return client.patch(f"{BASE}/{template_id}", json=body, headers=headers)


@pytest.fixture
def builtin(app):
    from app.character_templates.models import Template
    from app.cli import seed_builtin_templates
    from app.extensions import db

    with app.app_context():
        seed_builtin_templates()
        template = db.session.query(Template).filter_by(slug="classic-fantasy-hero").one()
        return str(template.id)


# --- create ---------------------------------------------------------------------------------


def test_create_returns_the_view(client, alice):
    response = client.post(
        BASE,
        json={"name": "  Hero\u0007 ", "definition": SIMPLE_DEFINITION},
        headers=alice.auth,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"{BASE}/{body['id']}"
    assert response.headers["ETag"] == etag(client, alice, body["id"])
    assert body["name"] == "Hero"
    assert body["version"] == 1
    assert body["definition"] == SIMPLE_DEFINITION
    assert (body["is_public"], body["description"], body["tags"]) == (False, "", [])
    assert body["owner"]["id"] == alice.id and "email" not in body["owner"]
    assert set(body) == {
        "id",
        "owner",
        "name",
        "description",
        "tags",
        "is_public",
        "version",
        "definition",
        "created_at",
        "updated_at",
    }  # the view of API.md, exactly


def test_definition_errors_are_located(client, alice):
    definition = copy.deepcopy(SIMPLE_DEFINITION)
    definition["fields"][2]["dice"] = "0d6"
    definition["fields"][1]["options"] = []
    response = client.post(BASE, json={"name": "x", "definition": definition}, headers=alice.auth)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]["definition"]["fields"]
    assert errors["2"]["dice"]
    assert errors["1"]["options"]


@pytest.mark.parametrize(
    "body",
    [
        {"definition": SIMPLE_DEFINITION},
        {"name": "x"},
        {"name": "", "definition": SIMPLE_DEFINITION},
        {"name": "n" * 101, "definition": SIMPLE_DEFINITION},
        {"name": "x", "definition": SIMPLE_DEFINITION, "tags": ["Upper"]},
        {"name": "x", "definition": SIMPLE_DEFINITION, "tags": ["a", "a"]},
        {"name": "x", "definition": SIMPLE_DEFINITION, "tags": [f"t{i}" for i in range(11)]},
        {"name": "x", "definition": SIMPLE_DEFINITION, "is_public": "true"},
        {"name": "x", "definition": SIMPLE_DEFINITION, "version": 3},
        {"name": "x", "definition": SIMPLE_DEFINITION, "owner": None},
        {"name": "x", "definition": SIMPLE_DEFINITION, "description": "d" * 2001},
        {"name": "x", "definition": []},
        {"name": "x", "definition": {"fields": []}},
    ],
)
def test_create_rejects_bad_bodies(client, alice, body):
    response = client.post(BASE, json=body, headers=alice.auth)
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"]
    listing = client.get(f"{BASE}?owner=me", headers=alice.auth)
    assert listing.get_json() == []


def test_description_is_sanitised(client, alice):
    body = create_template(client, alice, description='<p onclick="x">Hi <script>no</script></p>')
    assert body["description"] == "<p>Hi </p>"


# --- visibility matrix ------------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ["private", "public", "builtin"])
@pytest.mark.parametrize("who", ["owner", "other", "admin"])
def test_visibility_matrix(client, alice, bob, admin, builtin, who, visibility):
    if visibility == "builtin":
        template_id, owner = builtin, None
    else:
        template_id = create_template(client, alice, is_public=visibility == "public")["id"]
        owner = alice
    caller = {"owner": alice, "other": bob, "admin": admin}[who]
    if who == "owner" and owner is None:
        caller = alice  # nobody owns a built-in: alice is just a user here
    read = client.get(f"{BASE}/{template_id}", headers=caller.auth)
    can_read = visibility != "private" or who in ("owner", "admin")
    assert read.status_code == (200 if can_read else 404)
    tag = read.headers.get("ETag", '"x"')
    write = client.patch(
        f"{BASE}/{template_id}", json={"name": "Renamed"}, headers={**caller.auth, "If-Match": tag}
    )
    can_write = who == "admin" or (who == "owner" and owner is not None)
    expected = 200 if can_write else (403 if can_read else 404)
    assert write.status_code == expected, write.get_json()
    preview = client.post(f"{BASE}/{template_id}/preview", json={}, headers=caller.auth)
    assert preview.status_code == (200 if can_read else 404)


def test_invisible_templates_never_leak(client, alice, bob):
    private = create_template(client, alice)["id"]
    for method, body in (("get", None), ("patch", {"name": "x"}), ("delete", None)):
        response = getattr(client, method)(
            f"{BASE}/{private}", headers={**bob.auth, "If-Match": "*"}, json=body
        )
        assert response.status_code == 404
    assert client.post(f"{BASE}/{private}/fork", headers=bob.auth).status_code == 404
    assert client.get(f"{BASE}/{uuid.uuid4()}", headers=bob.auth).status_code == 404
    assert client.get(f"{BASE}/not-a-uuid", headers=bob.auth).status_code == 404


def test_operations_without_a_body_refuse_one(client, alice):
    template = create_template(client, alice, is_public=True)
    fork = f"{BASE}/{template['id']}/fork"
    renamed = client.post(fork, json={"name": "My fork", "is_public": True}, headers=alice.auth)
    assert renamed.status_code == 422  # not a fork with the source's name, silently
    assert set(renamed.get_json()["errors"]["json"]) == {"name", "is_public"}
    text = client.post(fork, data="name=x", content_type="text/plain", headers=alice.auth)
    assert text.status_code == 415
    broken = client.post(fork, data="{", content_type="application/json", headers=alice.auth)
    assert broken.status_code == 400
    assert client.post(fork, json=[1, 2], headers=alice.auth).status_code == 422
    assert client.post(fork, json={}, headers=alice.auth).status_code == 201  # {} is no body
    assert client.post(fork, headers=alice.auth).status_code == 201
    logout = client.post("/api/v1/auth/logout", json={"everywhere": True}, headers=alice.auth)
    assert logout.status_code == 422


# --- update and versions ----------------------------------------------------------------------


def test_patch_needs_if_match(client, alice):
    template = create_template(client, alice)
    missing = client.patch(f"{BASE}/{template['id']}", json={"name": "y"}, headers=alice.auth)
    assert missing.status_code == 428
    stale = patch(client, alice, template["id"], {"name": "y"}, tag='"stale"')
    assert stale.status_code == 412
    assert (
        client.get(f"{BASE}/{template['id']}", headers=alice.auth).get_json()["name"]
        == template["name"]
    )


def test_version_moves_only_with_the_definition(client, alice):
    template = create_template(client, alice)
    renamed = patch(client, alice, template["id"], {"name": "New name", "tags": ["a-b"]})
    assert renamed.status_code == 200
    assert renamed.get_json()["version"] == 1
    assert renamed.get_json()["tags"] == ["a-b"]
    same = patch(client, alice, template["id"], {"definition": SIMPLE_DEFINITION})
    assert same.get_json()["version"] == 1
    changed = copy.deepcopy(SIMPLE_DEFINITION)
    changed["fields"][2]["dice"] = "3d6"
    bumped = patch(client, alice, template["id"], {"definition": changed})
    assert bumped.status_code == 200
    assert bumped.get_json()["version"] == 2
    assert bumped.get_json()["definition"] == changed
    assert bumped.headers["ETag"] == etag(client, alice, template["id"])
    bad = copy.deepcopy(changed)
    bad["fields"][0]["generator"] = "missing"
    rejected = patch(client, alice, template["id"], {"definition": bad})
    assert rejected.status_code == 422
    assert rejected.get_json()["errors"]["json"]["definition"]["fields"]["0"]["generator"]
    assert client.get(f"{BASE}/{template['id']}", headers=alice.auth).get_json()["version"] == 2


def test_every_version_is_kept(client, app, alice):
    from app.character_templates.models import TemplateVersion
    from app.extensions import db

    template = create_template(client, alice)
    changed = copy.deepcopy(SIMPLE_DEFINITION)
    changed["fields"][2]["dice"] = "2d6"
    patch(client, alice, template["id"], {"definition": changed})
    with app.app_context():
        rows = db.session.query(TemplateVersion).filter_by(template_id=uuid.UUID(template["id"]))
        versions = {row.version: row.definition for row in rows}
    assert versions == {1: SIMPLE_DEFINITION, 2: changed}


def test_if_none_match(client, alice):
    template = create_template(client, alice)
    tag = etag(client, alice, template["id"])
    response = client.get(f"{BASE}/{template['id']}", headers={**alice.auth, "If-None-Match": tag})
    assert response.status_code == 304


def test_delete(client, alice):
    template = create_template(client, alice)
    assert client.delete(f"{BASE}/{template['id']}", headers=alice.auth).status_code == 428
    tag = etag(client, alice, template["id"])
    response = client.delete(f"{BASE}/{template['id']}", headers={**alice.auth, "If-Match": tag})
    assert response.status_code == 204
    assert client.get(f"{BASE}/{template['id']}", headers=alice.auth).status_code == 404


# --- fork -------------------------------------------------------------------------------------


def test_fork_makes_a_private_copy_at_version_1(client, alice, bob):
    original = create_template(client, alice, is_public=True, tags=["x"])
    changed = copy.deepcopy(SIMPLE_DEFINITION)
    changed["fields"][2]["dice"] = "2d6"
    patch(client, alice, original["id"], {"definition": changed})
    response = client.post(f"{BASE}/{original['id']}/fork", headers=bob.auth)
    assert response.status_code == 201
    fork = response.get_json()
    assert response.headers["Location"] == f"{BASE}/{fork['id']}"
    assert fork["owner"]["id"] == bob.id
    assert fork["is_public"] is False
    assert fork["version"] == 1
    assert fork["definition"] == changed
    assert fork["tags"] == ["x"]


# --- preview ----------------------------------------------------------------------------------


def test_preview_is_reproducible_and_batch_independent(client, alice):
    template = create_template(client, alice)
    url = f"{BASE}/{template['id']}/preview"
    three = client.post(url, json={"seed": 42, "count": 3}, headers=alice.auth).get_json()
    five = client.post(url, json={"seed": 42, "count": 5}, headers=alice.auth).get_json()
    assert three == five[:3]
    assert three[0]["seed"] == 42
    assert len({item["seed"] for item in five}) == 5
    for item in five:
        assert item["name"] == item["attributes"]["name"]
        assert 3 <= item["attributes"]["str"] <= 18
        assert item["attributes"]["str_mod"] == (item["attributes"]["str"] - 10) // 2
    single = client.post(url, json={}, headers=alice.auth).get_json()
    assert len(single) == 1 and isinstance(single[0]["seed"], int)
    assert client.get("/api/v1/templates?owner=me", headers=alice.auth).status_code == 200


def test_preview_locks_and_rerolls(client, alice):
    template = create_template(client, alice)
    url = f"{BASE}/{template['id']}/preview"
    base = client.post(url, json={"seed": 7}, headers=alice.auth).get_json()[0]
    locked = client.post(
        url, json={"seed": 7, "locks": {"klass": "Wizard", "name": "Zed"}}, headers=alice.auth
    ).get_json()[0]
    assert locked["name"] == "Zed"
    assert locked["attributes"]["klass"] == "Wizard"
    assert locked["attributes"]["str"] == base["attributes"]["str"]
    assert len(locked["attributes"]["spells"]) == 2
    rerolled = client.post(url, json={"seed": 7, "rerolls": {"str": 1}}, headers=alice.auth)
    attributes = rerolled.get_json()[0]["attributes"]
    assert attributes["klass"] == base["attributes"]["klass"]
    assert attributes["traits"] == base["attributes"]["traits"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"count": 0}, ("count",)),
        ({"count": 51}, ("count",)),
        ({"seed": -1}, ("seed",)),
        ({"seed": 2**53}, ("seed",)),
        ({"seed": "5"}, ("seed",)),
        ({"locks": {"klass": "Bard"}}, ("locks", "klass")),
        ({"locks": {"nope": 1}}, ("locks", "nope")),
        ({"locks": {"str": 19}}, ("locks", "str")),
        ({"locks": {"str_mod": 1}}, ("locks", "str_mod")),
        ({"locks": {"klass": "Fighter", "spells": ["Shield", "Sleep"]}}, ("locks", "spells")),
        ({"locks": {"traits": ["brave", "brave"]}}, ("locks", "traits")),
        ({"rerolls": {"nope": 1}}, ("rerolls", "nope")),
        ({"rerolls": {"str": -1}}, ("rerolls", "str")),
        ({"rerolls": {"str_mod": 1}}, ("rerolls", "str_mod")),
        ({"extra": 1}, ("extra",)),
    ],
)
def test_preview_rejects_bad_input(client, alice, body, where):
    template = create_template(client, alice)
    response = client.post(f"{BASE}/{template['id']}/preview", json=body, headers=alice.auth)
    assert response.status_code == 422, response.get_json()
    node = response.get_json()["errors"]["json"]
    for part in where:
        node = node[part]
    assert node


@pytest.mark.parametrize(
    ("rerolls", "fragment"),
    [
        ({"str": -1}, "greater than or equal to 0"),
        ({"str": 2**53}, "less than or equal to"),
        ({"str": "1"}, "Not a valid integer."),
        ({"str": True}, "Not a valid integer."),
        ({"str_mod": 1}, "A derived field is computed."),
        ({"nope": 1}, "Unknown field."),
    ],
)
@pytest.mark.parametrize("where", ["preview", "generate"])
def test_reroll_problems_are_keyed_by_the_field_alone(client, alice, rerolls, fragment, where):
    # errors.json.rerolls.<key>: [...], whatever the problem (no marshmallow "value" level)
    template = create_template(client, alice)
    if where == "preview":
        url, body = f"{BASE}/{template['id']}/preview", {"rerolls": rerolls}
    else:
        url, body = (
            "/api/v1/characters/generate",
            {"template_id": template["id"], "rerolls": rerolls},
        )
    response = client.post(url, json=body, headers=alice.auth)
    assert response.status_code == 422
    (key,) = rerolls
    messages = response.get_json()["errors"]["json"]["rerolls"][key]
    assert isinstance(messages, list) and fragment in messages[0], messages


def test_a_null_seed_is_not_a_seed(client, alice):
    # absent: the server picks one; null: 422 (as the OpenAPI description says)
    template = create_template(client, alice)
    for url, body in (
        (f"{BASE}/{template['id']}/preview", {}),
        ("/api/v1/characters/generate", {"template_id": template["id"]}),
    ):
        response = client.post(url, json={**body, "seed": None}, headers=alice.auth)
        assert response.status_code == 422 and response.get_json()["errors"]["json"]["seed"]
    spec = client.get("/openapi.json").get_json()["components"]["schemas"]
    for schema in ("PreviewRequest", "CharacterGenerate"):
        assert "`null` is not a seed" in spec[schema]["properties"]["seed"]["description"]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        (  # "-0" is no integer's decimal form
            [
                {"key": "n", "type": "integer", "range": [-5, 5]},
                {
                    "key": "x",
                    "type": "integer",
                    "dice": {"switch": "n", "cases": {"-0": "d4"}, "default": "d6"},
                },
            ],
            ("fields", "1", "dice", "cases", "-0"),
        ),
        (  # a derived boolean is written "true"
            [
                {"key": "n", "type": "integer", "range": [1, 5]},
                {"key": "b", "type": "derived", "expr": "n > 2"},
                {
                    "key": "x",
                    "type": "integer",
                    "dice": {"switch": "b", "cases": {"True": "d4"}, "default": "d6"},
                },
            ],
            ("fields", "2", "dice", "cases", "True"),
        ),
        (  # a derived integer in canonical decimal
            [
                {"key": "n", "type": "integer", "range": [1, 5]},
                {"key": "b", "type": "derived", "expr": "n * 2"},
                {
                    "key": "x",
                    "type": "integer",
                    "dice": {"switch": "b", "cases": {"012": "d4"}, "default": "d6"},
                },
            ],
            ("fields", "2", "dice", "cases", "012"),
        ),
    ],
)
def test_switch_cases_that_can_never_match_are_422(client, alice, fields, where):
    body = {"name": "T", "definition": {"fields": fields}}
    response = client.post(BASE, json=body, headers=alice.auth)
    assert response.status_code == 422
    node = response.get_json()["errors"]["json"]["definition"]
    for part in where:
        node = node[part]
    assert "can never match" in node[0]


def test_preview_bounds_the_size_of_what_it_generates(client, alice):
    # each character: 18 fields of 1,000 picks, ~864 KB of attributes; 4 fit in 4 MiB, 5 do not
    template = create_template(client, alice, definition=picking_definition(18))
    url = f"{BASE}/{template['id']}/preview"
    four = client.post(url, json={"seed": 5, "count": 4}, headers=alice.auth)
    assert four.status_code == 200
    assert [len(item["attributes"]["p17"]) for item in four.get_json()] == [1000] * 4
    many = client.post(url, json={"seed": 5, "count": 50}, headers=alice.auth)
    assert many.status_code == 422
    assert many.headers["Content-Type"] == "application/problem+json"
    (message,) = many.get_json()["errors"]["json"]["count"]
    assert "ask for at most 4 with this seed" in message
    # one character over 1 MiB is refused as generate would refuse it
    big = create_template(client, alice, definition=picking_definition(30))
    one = client.post(f"{BASE}/{big['id']}/preview", json={"seed": 5}, headers=alice.auth)
    assert one.status_code == 422
    assert "(at most 1048576)" in one.get_json()["errors"]["json"]["_schema"][0]


def test_preview_bounds_the_work_it_takes(client, alice):
    # 40 fields of twelve exploding 100d1000! terms: up to 2,401 dice each, 96,040 per
    # character; 2,000,000 allow 20 characters per preview
    dice = "+".join(["100d1000!"] * 12)
    definition = {"fields": [{"key": f"d{i}", "type": "integer", "dice": dice} for i in range(40)]}
    template = create_template(client, alice, definition=definition)
    url = f"{BASE}/{template['id']}/preview"
    too_many = client.post(url, json={"seed": 9, "count": 21}, headers=alice.auth)
    assert too_many.status_code == 422
    (message,) = too_many.get_json()["errors"]["json"]["count"]
    assert "up to 96040 steps" in message and "ask for at most 20." in message
    fits = client.post(url, json={"seed": 9, "count": 20}, headers=alice.auth)
    assert fits.status_code == 200 and len(fits.get_json()) == 20
    # the built-in sized template is far from it: 50 are always fine
    small = create_template(client, alice)
    assert (
        client.post(
            f"{BASE}/{small['id']}/preview", json={"count": 50}, headers=alice.auth
        ).status_code
        == 200
    )


def test_compiled_definitions_are_cached(client, alice):
    from app.character_templates.service import compiled_cache

    template = create_template(client, alice)
    url = f"{BASE}/{template['id']}/preview"
    client.post(url, json={"seed": 1}, headers=alice.auth)
    before = compiled_cache.compilations
    for seed in range(5):
        assert client.post(url, json={"seed": seed}, headers=alice.auth).status_code == 200
    assert compiled_cache.compilations == before


# --- list -------------------------------------------------------------------------------------


def test_list_shows_own_public_and_builtin(client, alice, bob, builtin):
    mine = create_template(client, alice, name="Mine", tags=["alpha"])
    theirs_public = create_template(
        client, bob, name="Theirs public", is_public=True, tags=["alpha"]
    )
    create_template(client, bob, name="Theirs private", tags=["alpha"])
    response = client.get(f"{BASE}?page_size=100", headers=alice.auth)
    names = {t["name"] for t in response.get_json()}
    assert {"Mine", "Theirs public", "Classic Fantasy Hero"} <= names
    assert "Theirs private" not in names
    tagged = client.get(f"{BASE}?tag=alpha", headers=alice.auth).get_json()
    assert {t["id"] for t in tagged} == {mine["id"], theirs_public["id"]}
    own = client.get(f"{BASE}?owner=me", headers=alice.auth).get_json()
    assert [t["id"] for t in own] == [mine["id"]]
    search = client.get(f"{BASE}?q=THEIRS", headers=alice.auth).get_json()
    assert [t["id"] for t in search] == [theirs_public["id"]]
    builtin_view = next(t for t in response.get_json() if t["id"] == builtin)
    assert builtin_view["owner"] is None


def test_list_sorts_and_pages(client, alice):
    for name in ("b-two", "a-one", "c-three"):
        create_template(client, alice, name=name)
    response = client.get(f"{BASE}?owner=me&sort=-name&page_size=2", headers=alice.auth)
    assert [t["name"] for t in response.get_json()] == ["c-three", "b-two"]
    meta = json.loads(response.headers["X-Pagination"])
    assert (meta["total"], meta["total_pages"], meta["next_page"]) == (3, 2, 2)
    assert "owner=me" in response.headers["Link"]
    by_date = client.get(f"{BASE}?owner=me&sort=created_at", headers=alice.auth).get_json()
    assert [t["name"] for t in by_date] == ["b-two", "a-one", "c-three"]
    for bad in ("sort=owner", "owner=you", "tag=UPPER", "page=0", "colour=red"):
        assert client.get(f"{BASE}?{bad}", headers=alice.auth).status_code == 422, bad


# --- seeding ----------------------------------------------------------------------------------


def test_seed_is_idempotent_and_follows_edits(app, client, alice, tmp_path):
    import shutil

    from app.cli import SEEDS, seed_builtin_templates

    shutil.copytree(SEEDS / "templates", tmp_path / "templates")
    with app.app_context():
        first = seed_builtin_templates(tmp_path / "templates")
        again = seed_builtin_templates(tmp_path / "templates")
    assert first["created"] >= 5 and again == {
        "created": 0,
        "updated": 0,
        "unchanged": first["created"],
    }
    seed_file = tmp_path / "templates" / "tavern-npc.json"
    data = json.loads(seed_file.read_text())
    data["definition"]["fields"].append({"key": "extra_field", "type": "boolean", "chance": [1, 2]})
    seed_file.write_text(json.dumps(data))
    with app.app_context():
        edited = seed_builtin_templates(tmp_path / "templates")
    assert edited["updated"] == 1
    listing = client.get(f"{BASE}?q=tavern", headers=alice.auth).get_json()
    assert listing[0]["version"] == 2 and listing[0]["owner"] is None


def test_seed_command(app):
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert "Built-in templates:" in result.output
    again = app.test_cli_runner().invoke(args=["seed"])
    assert "0 created, 0 updated" in again.output


def test_etag_changes_with_the_owners_profile(client, alice, bob):
    template = create_template(client, alice, is_public=True)
    tag = etag(client, bob, template["id"])
    me = client.get("/api/v1/users/me", headers=alice.auth)
    client.patch(
        "/api/v1/users/me",
        json={"bio": "Now with a bio"},
        headers={**alice.auth, "If-Match": me.headers["ETag"]},
    )
    response = client.get(f"{BASE}/{template['id']}", headers={**bob.auth, "If-None-Match": tag})
    assert response.status_code == 200
    assert response.get_json()["owner"]["bio"] == "Now with a bio"
    assert response.headers["ETag"] != tag


def test_definition_comes_back_in_the_order_sent(client, alice):
    """API.md: the definition is returned exactly as sent. PostgreSQL's jsonb gave members back
    in its own order (shorter keys first); a re-sent definition that differs only in order keeps
    its version but is given back as last sent."""
    sent = {"fields": [{"type": "integer", "key": "strength", "dice": "3d6"}], "tables": {}}
    created = client.post(
        BASE, json={"name": "Ordered", "definition": sent}, headers=alice.auth
    ).get_json()
    read = client.get(f"{BASE}/{created['id']}", headers=alice.auth)
    raw = read.get_data(as_text=True)
    assert raw.index('"type"') < raw.index('"key"') < raw.index('"dice"')
    assert list(read.get_json()["definition"]) == ["fields", "tables"]
    listed = client.get(f"{BASE}?owner=me", headers=alice.auth).get_data(as_text=True)
    assert listed.index('"type"') < listed.index('"key"') < listed.index('"dice"')

    reordered = {"tables": {}, "fields": [{"dice": "3d6", "key": "strength", "type": "integer"}]}
    response = patch(client, alice, created["id"], {"definition": reordered})
    assert response.status_code == 200
    assert response.get_json()["version"] == 1
    assert response.headers["ETag"] != read.headers["ETag"]
    again = client.get(f"{BASE}/{created['id']}", headers=alice.auth)
    assert again.headers["ETag"] == response.headers["ETag"]
    raw = again.get_data(as_text=True)
    assert raw.index('"dice"') < raw.index('"key"') < raw.index('"type"')
    assert list(again.get_json()["definition"]) == ["tables", "fields"]


def test_a_template_name_must_show_something(client, alice):
    body = {"name": "\u2060\u200d", "definition": SIMPLE_DEFINITION}
    refused = client.post(BASE, json=body, headers=alice.auth)
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["json"] == {"name": ["Must contain a visible character."]}
    tags = client.post(
        BASE,
        json={"name": "t", "definition": SIMPLE_DEFINITION, "tags": ["\u200b"]},
        headers=alice.auth,
    )
    assert tags.status_code == 422
    created = create_template(client, alice)
    assert patch(client, alice, created["id"], {"name": "\u202e"}).status_code == 422
