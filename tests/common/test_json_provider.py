"""Responses are serialised by orjson, with the standard library for what orjson refuses
(app.common.json_provider)."""

from __future__ import annotations

import json

import pytest

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


def test_fast_loads_gives_exactly_what_the_standard_library_gives():
    from app.common import fastjson

    samples = [
        '{"a": 1, "b": [true, false, null], "c": "Ærwyn \\u00e9", "d": -0.0, "e": 1.5e-7}',
        '{"big": 1180591620717411303425, "neg": -1180591620717411303425}',  # beyond 64 bits
        '{"phone": "1234567890123456789012"}',  # a long digit run in a string: still exact
        '{"f": 0.1, "g": 123456789012345678, "h": 1e308}',
        "[1e400]",  # the standard library's inf
        '"\\ud83d\\ude00"',
        '{"u64": 18446744073709551615, "over": 18446744073709551616}',  # 20 digits
        '{"i64": -9223372036854775808, "split": [123456789012345678, 9]}',
        '{"text": "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩ digits, but not ASCII ones"}',
    ]
    for text in samples:
        assert repr(fastjson.loads(text)) == repr(json.loads(text)), text
        assert repr(fastjson.loads(text.encode())) == repr(json.loads(text)), text
    with pytest.raises(json.JSONDecodeError):  # not JSON: the standard library's error
        fastjson.loads("[1, 2")


def test_a_huge_attribute_survives_the_database_both_ways(client, alice):
    """JSON columns are decoded by app.common.fastjson: a 2**70 stays an integer."""
    huge = 2**70 + 3
    created = client.post(
        "/api/v1/characters",
        json={"name": "Hoard", "attributes": {"gold": huge}},
        headers=alice.auth,
    )
    listed = client.get("/api/v1/characters", headers=alice.auth)
    item = next(i for i in json.loads(listed.data) if i["id"] == created.get_json()["id"])
    assert item["attributes"] == {"gold": huge}
    assert isinstance(item["attributes"]["gold"], int)
