"""Every error, from every layer, is an RFC 9457 problem."""

from __future__ import annotations

import io
import json
import logging

import pytest

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, type_: str = "about:blank") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"] == type_
    for member in ("title", "detail", "request_id", "instance"):
        assert body[member], member
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


@pytest.mark.parametrize("path", ["/nope", "/api/v2/characters", "/api/v1/does-not-exist"])
def test_unknown_paths_are_404_problems(client, path):
    body = assert_problem(client.get(path), 404)
    assert body["instance"] == path
    assert body["title"] == "Not Found"


@pytest.mark.parametrize(
    ("sent", "instance"),
    [
        ("/api/v1/characters/%00", "/api/v1/characters/%00"),
        ("/api/v1/characters/%C3%A9t%C3%A9", "/api/v1/characters/%C3%A9t%C3%A9"),
        ("/api/v1/characters/a%0Ab", "/api/v1/characters/a%0Ab"),
        ("/api/v1/characters/a%20b", "/api/v1/characters/a%20b"),
        ("/api/v1/x:y@z", "/api/v1/x:y@z"),
    ],
)
def test_instance_is_a_uri_reference(client, alice, sent, instance):
    # RFC 9457: a URI reference, so characters a URI cannot hold stay percent-encoded
    body = assert_problem(client.get(sent, headers=alice.auth), 404)
    assert body["instance"] == instance


def test_405_keeps_allow_header(client):
    response = client.delete("/health/live")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_malformed_json_is_400(probe):
    response = probe.post("/api/v1/_probe/echo", data="{not json", content_type="application/json")
    assert_problem(response, 400, "/problems/malformed-json")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999", "-1.5e400"])
def test_nan_and_infinity_are_400(probe, constant):
    response = probe.post(
        "/api/v1/_probe/echo",
        data=f'{{"name": "a", "extra": {{"x": {constant}}}}}',
        content_type="application/json",
    )
    body = assert_problem(response, 400, "/problems/malformed-json")
    assert constant in body["detail"]


@pytest.mark.parametrize(
    ("encoding", "said"),
    [
        ("utf-16", "UTF-16 or UTF-32"),  # with its byte order mark
        ("utf-16-le", "UTF-16 or UTF-32"),  # without: valid UTF-8, full of NULs
        ("utf-16-be", "UTF-16 or UTF-32"),
        ("utf-32", "UTF-16 or UTF-32"),
        ("utf-32-le", "UTF-16 or UTF-32"),
        ("utf-8-sig", "byte order mark"),
        ("latin-1", "not valid UTF-8 (at byte 12)"),
    ],
)
def test_json_that_is_not_utf8_is_400_saying_so(probe, encoding, said):
    """JSON is UTF-8 (RFC 8259, 8.1); the standard library would guess UTF-16 and UTF-32 from
    the bytes and read them, and skip nothing that says otherwise."""
    raw = '{"name": "Zoë"}'.encode(encoding)
    response = probe.post("/api/v1/_probe/echo", data=raw, content_type="application/json")
    body = assert_problem(response, 400, "/problems/malformed-json")
    assert said in body["detail"], body["detail"]


def test_a_utf8_encoded_surrogate_is_not_utf8(probe):
    raw = b'{"name": "a\xed\xa0\x80"}'  # what "surrogatepass" would decode to U+D800
    response = probe.post("/api/v1/_probe/echo", data=raw, content_type="application/json")
    assert "not valid UTF-8" in assert_problem(response, 400, "/problems/malformed-json")["detail"]


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-16", "US-ASCII", "latin1"])
def test_json_declared_in_another_charset_is_415(probe, charset):
    raw = '{"name": "Zoë"}'.encode()  # even UTF-8: the client says it is something else
    response = probe.post(
        "/api/v1/_probe/echo", data=raw, content_type=f"application/json; charset={charset}"
    )
    body = assert_problem(response, 415)
    assert f"charset={charset}" in body["detail"]


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"', "utf8", "UTF8"])
def test_json_declared_as_utf8_is_read(probe, charset):
    raw = '{"name": "Zoë"}'.encode()
    response = probe.post(
        "/api/v1/_probe/echo", data=raw, content_type=f"application/json; charset={charset}"
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["name"] == "Zoë"


def test_an_integer_too_long_to_convert_is_400_saying_so(probe):
    """Valid JSON, but longer than Python converts (4,300 digits): not "not valid JSON"."""
    for number in ("9" * 4301, "-" + "9" * 5000):
        raw = f'{{"name": "a", "count": {number}}}'
        response = probe.post("/api/v1/_probe/echo", data=raw, content_type="application/json")
        body = assert_problem(response, 400, "/problems/malformed-json")
        assert "integer of more than 4300 digits" in body["detail"], body["detail"]
    longest = f'{{"name": "a", "count": {"9" * 4300}}}'  # reaches the schema (its range decides)
    fits = probe.post("/api/v1/_probe/echo", data=longest, content_type="application/json")
    assert fits.status_code == 200


def test_nesting_deeper_than_32_is_400_and_32_is_fine(probe):
    def nested(depth: int) -> str:
        # the body object is level 1, "extra" level 2, then lists
        return '{"name": "a", "extra": {"x": ' + "[" * (depth - 2) + "]" * (depth - 2) + "}}"

    ok = probe.post("/api/v1/_probe/echo", data=nested(32), content_type="application/json")
    assert ok.status_code == 200
    deep = probe.post("/api/v1/_probe/echo", data=nested(33), content_type="application/json")
    assert_problem(deep, 400, "/problems/malformed-json")
    very_deep = '{"name": "a", "extra": {"x": ' + "[" * 100000 + "]" * 100000 + "}}"
    response = probe.post("/api/v1/_probe/echo", data=very_deep, content_type="application/json")
    body = assert_problem(response, 400, "/problems/malformed-json")
    assert "deeper than 32 levels" in body["detail"]  # deeper than the decoder recurses


def test_an_empty_body_said_to_be_json_is_400_and_no_body_is_missing_data(probe):
    empty = probe.post("/api/v1/_probe/echo", data=b"", content_type="application/json")
    assert_problem(empty, 400, "/problems/malformed-json")
    absent = probe.post("/api/v1/_probe/echo")  # no body, no Content-Type
    body = assert_problem(absent, 422, "/problems/validation-error")
    assert "name" in body["errors"]["json"]


@pytest.mark.parametrize(
    "raw", ['{"name": "first", "name": "second"}', '{"name": "a", "extra": {"x": 1, "x": 2}}']
)
def test_a_member_named_twice_is_400_not_the_last_one_silently(probe, raw):
    response = probe.post("/api/v1/_probe/echo", data=raw, content_type="application/json")
    body = assert_problem(response, 400, "/problems/malformed-json")
    assert "twice" in body["detail"]


def test_json_sent_as_text_plain_is_415(probe):
    response = probe.post("/api/v1/_probe/echo", data='{"name": "a"}', content_type="text/plain")
    assert_problem(response, 415)


def test_form_body_is_415(probe):
    response = probe.post("/api/v1/_probe/echo", data={"name": "a"})
    assert_problem(response, 415)


def test_nul_character_anywhere_is_422(probe):
    response = probe.post("/api/v1/_probe/echo", json={"name": "a\u0000b"})
    body = assert_problem(response, 422, "/problems/validation-error")
    assert "name" in body["errors"]["json"]
    nested = probe.post("/api/v1/_probe/echo", json={"name": "a", "extra": {"k": ["ok", "x\x00"]}})
    body = assert_problem(nested, 422, "/problems/validation-error")
    assert body["errors"]["json"]["extra"]["k"]["1"]


def test_validation_errors_are_keyed_by_location_and_field(probe):
    response = probe.post("/api/v1/_probe/echo", json={"bio": "x", "items": [{"dice": "1d6"}, {}]})
    body = assert_problem(response, 422, "/problems/validation-error")
    assert body["errors"]["json"]["name"] == ["Missing data for required field."]
    assert body["errors"]["json"]["items"]["1"]["dice"]


def test_unknown_body_fields_are_422(probe):
    response = probe.post("/api/v1/_probe/echo", json={"name": "a", "id": "x", "role": "admin"})
    body = assert_problem(response, 422, "/problems/validation-error")
    assert set(body["errors"]["json"]) == {"id", "role"}


def test_unknown_query_parameters_are_422(probe):
    response = probe.get("/api/v1/_probe/items?pagesize=5")
    body = assert_problem(response, 422, "/problems/validation-error")
    assert "pagesize" in body["errors"]["query"]


def test_operations_without_a_query_refuse_any_query_parameter(client, alice):
    """Not only the lists: a parameter an operation does not take is 422 wherever it is sent
    (a ``?seed=5`` ignored by a generation, or a ``?dry_run=true`` by a deletion, did what the
    client did not ask for), in the shape the lists answer it."""
    from tests.support.factories import create_template

    template = create_template(client, alice)
    created = client.post("/api/v1/characters", json={"name": "Kept"}, headers=alice.auth)
    path, tag = created.headers["Location"], created.headers["ETag"]
    generate = {"template_id": template["id"]}
    refused = [
        client.post("/api/v1/characters/generate?seed=5", json=generate, headers=alice.auth),
        client.post(
            f"/api/v1/templates/{template['id']}/preview?count=5", json={}, headers=alice.auth
        ),
        client.delete(f"{path}?dry_run=true", headers={**alice.auth, "If-Match": tag}),
        client.get("/api/v1/users/me?fields=id", headers=alice.auth),
        client.head(f"{path}?fields=id", headers=alice.auth),
        client.put(f"{path}/portrait?size=thumb", headers={**alice.auth, "If-Match": tag}),
    ]
    for response in refused:
        assert response.status_code == 422, response.request.url
        if response.request.method != "HEAD":
            body = assert_problem(response, 422, "/problems/validation-error")
            assert list(body["errors"]) == ["query"], body
    body = refused[0].get_json()
    assert body["errors"] == {"query": {"seed": ["Unknown field."]}}
    assert client.get(path, headers=alice.auth).status_code == 200  # not deleted
    many = client.get(f"{path}?a=1&b=2&a=3", headers=alice.auth).get_json()
    assert many["errors"] == {"query": {"a": ["Unknown field."], "b": ["Unknown field."]}}
    # a bare "?" names nothing; a missing token is still 401 first
    assert client.get(f"{path}?", headers=alice.auth).status_code == 200
    assert_problem(client.get(f"{path}?x=1"), 401, "/problems/invalid-token")


def test_the_operational_endpoints_ignore_a_query_string(client):
    """Outside /api/ (health, metrics, docs, the OpenAPI document) a query string is ignored:
    there is no parameter to mistype, and probes, scrapers and browsers add their own."""
    for path in ("/health/live?x=1", "/health/ready?x=1", "/openapi.json?x=1", "/docs?x=1"):
        assert client.get(path).status_code == 200, path


def test_body_larger_than_max_content_length_is_413(probe, probe_app):
    limit = probe_app.config["MAX_CONTENT_LENGTH"]
    big = json.dumps({"name": "a", "extra": {"x": "y" * limit}})
    response = probe.post("/api/v1/_probe/echo", data=big, content_type="application/json")
    body = assert_problem(response, 413)
    assert str(limit) in body["detail"]


@pytest.mark.parametrize("size", ["exact", "over"])
def test_body_without_content_length_is_not_cut_at_the_limit(probe, probe_app, size):
    """A chunked body (no Content-Length) over the limit is 413, not a shorter body parsed as
    if whole: padding after the JSON used to be cut off at the limit and the rest accepted."""
    limit = probe_app.config["MAX_CONTENT_LENGTH"]
    head = b'{"name": "padded"}'
    body = head + b" " * (limit - len(head) + (1 if size == "over" else 0))
    environ = {"wsgi.input_terminated": True, "CONTENT_TYPE": "application/json"}
    response = probe.post(
        "/api/v1/_probe/echo", input_stream=io.BytesIO(body), environ_overrides=environ
    )
    if size == "over":
        assert_problem(response, 413)
    else:
        assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate"])
def test_compressed_bodies_are_415(probe, coding):
    response = probe.post(
        "/api/v1/_probe/echo",
        data=b'{"name": "a"}',
        content_type="application/json",
        headers={"Content-Encoding": coding},
    )
    body = assert_problem(response, 415)
    assert coding in body["detail"]


def test_doubled_slashes_are_404_not_a_redirect(client):
    response = client.get("/api/v1//characters")
    assert_problem(response, 404)


def test_unexpected_exception_is_500_without_internals_and_logged(probe, caplog):
    with caplog.at_level(logging.ERROR):
        response = probe.get("/api/v1/_probe/boom", headers={"X-Request-ID": "boom-123"})
    body = assert_problem(response, 500)
    raw = response.get_data(as_text=True)
    for secret in ("secret", "SELECT", "/etc/", "settings.py", "Traceback", "RuntimeError"):
        assert secret not in raw
    assert body["request_id"] == "boom-123"
    records = [r for r in caplog.records if r.exc_info]
    assert records, "the traceback must be logged"
    assert records[-1].request_id == "boom-123"


def test_a_write_referring_to_a_vanished_row_is_409_not_duplicate(probe):
    # a foreign key violation means something was deleted meanwhile, not a duplicate value
    body = assert_problem(probe.post("/api/v1/_probe/dangling"), 409)
    assert "deleted meanwhile" in body["detail"]
    assert body["errors"] == {"json": {"_schema": [body["detail"]]}}


def test_endpoints_are_authenticated_by_default(probe):
    response = probe.get("/api/v1/_probe/private")
    assert_problem(response, 401, "/problems/invalid-token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
