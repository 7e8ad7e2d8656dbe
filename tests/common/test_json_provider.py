"""Responses are serialised by orjson, with the standard library for what orjson refuses
(app.common.json_provider)."""

from __future__ import annotations

import json

from app.common.json_provider import FastJSONProvider


def test_a_free_form_integer_beyond_64_bits_comes_back_exactly(client, alice):
    huge = 2**70 + 1  # orjson refuses it; the standard library writes it digit for digit
    body = {"name": "Big", "attributes": {"hoard": huge, "debt": -huge, "small": 3}}
    created = client.post("/api/v1/characters", json=body, headers=alice.auth)
    assert created.status_code == 201, created.get_json()
    read = client.get(created.headers["Location"], headers=alice.auth)
    assert json.loads(read.data)["attributes"] == {"hoard": huge, "debt": -huge, "small": 3}


def test_non_ascii_text_and_key_order_survive(client, alice):
    name = "Ærwyn “the Bold” 竜"
    created = client.post("/api/v1/characters", json={"name": name}, headers=alice.auth)
    assert created.status_code == 201
    assert name.encode() in created.data  # UTF-8, not \\u escapes
    view = json.loads(created.data)
    assert view["name"] == name
    assert list(view)[:3] == ["id", "owner", "name"]  # the schema's order, not sorted


def test_the_standard_library_takes_what_orjson_refuses(app):
    provider = FastJSONProvider(app)
    assert json.loads(provider.dumps({"n": 2**64})) == {"n": 2**64}
    assert json.loads(provider.dumps({1: "a"})) == {"1": "a"}  # non-string keys
    assert provider.dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'  # debug formatting
