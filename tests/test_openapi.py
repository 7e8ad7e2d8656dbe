"""The OpenAPI document is valid and describes errors as problems."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec(app):
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_document_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_bearer_scheme_is_declared_and_default(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]


def test_problem_schema_is_shared_by_error_responses(spec):
    assert {"type", "title", "status", "detail", "request_id"} <= set(
        spec["components"]["schemas"]["Problem"]["properties"]
    )
    for name, response in spec["components"]["responses"].items():
        content = response.get("content", {})
        if name == "DEFAULT_ERROR" or (name.isupper() and "application/problem+json" in content):
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }
    unauthorized = spec["components"]["responses"]["UNAUTHORIZED"]["content"]
    assert list(unauthorized) == ["application/problem+json"]


def test_every_operation_documents_its_errors(spec):
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        assert "default" in responses, (path, method)
        assert operation.get("summary"), (path, method)
        assert operation.get("description"), (path, method)
        if operation.get("security") != []:
            assert "401" in responses, (path, method)


def test_public_operations_are_marked(spec):
    assert spec["paths"]["/health/live"]["get"]["security"] == []
    assert spec["paths"]["/health/ready"]["get"]["security"] == []


def test_login_and_refresh_document_their_401(spec):
    for path in ("/api/v1/auth/login", "/api/v1/auth/refresh"):
        assert "401" in spec["paths"][path]["post"]["responses"], path


def test_every_query_parameter_is_documented(app, spec):
    """Each operation's query schema shows in its parameters: flask-smorest's doc(parameters=)
    replaces the ones it documents from arguments, so a header parameter listed by hand could
    hide them (the portrait's ?size= was missing so)."""
    checked = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            function = getattr(view_class, method.lower(), None) if view_class else view
            arguments = getattr(function, "_apidoc", {}).get("arguments", {})
            for argument in arguments.get("parameters", []):
                if argument.get("in") != "query":
                    continue
                path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
                documented = {
                    parameter["name"]
                    for parameter in spec["paths"][path][method.lower()].get("parameters", [])
                    if parameter["in"] == "query"
                }
                expected = {
                    field.data_key or name
                    for name, field in argument["schema"].fields.items()
                    if not field.dump_only
                }
                assert expected <= documented, (path, method, expected - documented)
                checked += 1
    assert checked >= 4  # the lists and the portrait


def test_refresh_documents_the_bearer_token_it_takes(spec):
    # the refresh token is sent as the bearer: Swagger UI and generated clients must send it
    operation = spec["paths"]["/api/v1/auth/refresh"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]


def test_errors_every_operation_of_a_kind_can_answer_are_documented(spec):
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            for status in ("400", "413", "415"):  # malformed, too large, not JSON
                assert status in responses, (path, method, status)
        if path.startswith("/api/"):
            assert "503" in responses, (path, method)  # the database is down
        names = {p.get("name") for p in operation.get("parameters", [])}
        if method == "get" and "If-None-Match" in names:
            assert "412" in responses, (path, method)  # If-Match on a read
    components = spec["components"]["responses"]
    assert "WWW-Authenticate" in components["UNAUTHORIZED"]["headers"]
    for name in ("TOO_MANY_REQUESTS", "SERVICE_UNAVAILABLE"):
        assert "Retry-After" in components[name]["headers"], name


def test_keyed_creations_document_the_replay_header(spec):
    keyed = [
        (path, operation)
        for path, method, operation in operations(spec)
        if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
    ]
    assert {path for path, _ in keyed} == {
        "/api/v1/characters",
        "/api/v1/characters/generate",
        "/api/v1/templates",
    }
    for path, operation in keyed:
        assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"], path


def documented_response(spec, path, method, status):
    """The response an operation documents for ``status`` (its component, for a $ref)."""
    responses = spec["paths"][path][method]["responses"]
    response = responses.get(str(status))
    assert response is not None, (method, path, status, sorted(responses))
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def header_parameters(spec, path, method):
    parameters = spec["paths"][path][method].get("parameters", [])
    return {p["name"]: p for p in parameters if p["in"] == "header"}


# the headers a client acts on: each one a response carries must be declared on it
ACTIONABLE_HEADERS = ("X-Request-ID", "Retry-After", "WWW-Authenticate", "ETag", "Location")


def assert_documented(spec, path, method, response):
    declared = documented_response(spec, path, method, response.status_code).get("headers", {})
    for name in ACTIONABLE_HEADERS:
        if name in response.headers:
            assert name in declared, (method, path, response.status_code, name)


def test_x_request_id_is_taken_and_answered_by_every_operation(spec):
    for path, method, operation in operations(spec):
        parameter = header_parameters(spec, path, method).get("X-Request-ID")
        assert parameter is not None and parameter["required"] is False, (path, method)
        for status in operation["responses"]:
            headers = documented_response(spec, path, method, status).get("headers", {})
            assert headers.get("X-Request-ID", {}).get("required") is True, (path, method, status)


def test_conditional_headers_are_declared_where_they_are_evaluated(spec):
    """If-Match on a read (412), If-None-Match on a write (412): RFC 9110's other two
    conditions, evaluated by every read and write that takes the first two."""
    for path, method, _ in operations(spec):
        headers = header_parameters(spec, path, method)
        if method == "get" and "If-None-Match" in headers:
            assert headers["If-Match"]["required"] is False, (path, method)
        if method != "get" and "If-Match" in headers:
            assert headers["If-None-Match"]["required"] is False, (path, method)


def test_bodiless_writes_and_api_operations_document_what_they_refuse(spec):
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        if "requestBody" in operation:  # JSON or multipart: broken, too large, another type
            for status in ("400", "413", "415"):
                assert status in responses, (path, method, status)
        elif method != "get":  # a body sent anyway
            for status in ("400", "413", "415", "422"):
                assert status in responses, (path, method, status)
        if path.startswith("/api/"):
            assert "422" in responses, (path, method)  # a query parameter it does not take


def test_answers_the_document_used_to_leave_out_are_documented(client, alice, spec):
    """Each request below answered with a status or header its operation did not declare."""
    from tests.support.factories import create_template

    template = create_template(client, alice)
    created = client.post("/api/v1/characters", json={"name": "Doc"}, headers=alice.auth)
    character, tag = created.get_json()["id"], created.headers["ETag"]
    auth, conditional = alice.auth, {**alice.auth, "If-Match": tag}
    by_id = "/api/v1/characters/{character_id}"
    portrait = "/api/v1/characters/{character_id}/portrait"
    fork = "/api/v1/templates/{template_id}/fork"
    cases = [
        # a body sent where none is taken: 422 (JSON), 415 (another type), 400 (broken JSON)
        (fork, "post", {"json": {"name": "x"}, "headers": auth}, 422),
        (fork, "post", {"data": "x", "content_type": "text/plain", "headers": auth}, 415),
        (fork, "post", {"data": "{", "content_type": "application/json", "headers": auth}, 400),
        ("/api/v1/auth/logout", "post", {"json": {"all": True}, "headers": auth}, 422),
        (by_id, "delete", {"json": {"x": 1}, "headers": conditional}, 422),
        # multipart without a boundary
        (
            portrait,
            "put",
            {"data": b"x", "content_type": "multipart/form-data", "headers": conditional},
            400,
        ),
        # a query parameter the operation does not take
        (by_id, "delete", {"query_string": {"dry_run": "true"}, "headers": conditional}, 422),
        # If-Match on a read, If-None-Match on a write
        (by_id, "get", {"headers": {**auth, "If-Match": '"stale"'}}, 412),
        (by_id, "patch", {"json": {}, "headers": {**conditional, "If-None-Match": "*"}}, 412),
    ]
    for path, method, kwargs, status in cases:
        url = path.format(character_id=character, template_id=template["id"])
        response = client.open(url, method=method.upper(), **kwargs)
        assert response.status_code == status, (method, path, response.get_json())
        assert response.headers["X-Request-ID"]
        assert_documented(spec, path, method, response)
        for name in ("If-Match", "If-None-Match"):
            if name in kwargs["headers"]:
                assert name in header_parameters(spec, path, method), (method, path, name)


def test_the_409_of_a_key_in_use_declares_its_retry_after(app, client, alice, spec):
    import hashlib
    import json
    import uuid
    from datetime import timedelta

    from app.common.idempotency import IdempotencyRecord
    from app.common.types import utcnow
    from app.extensions import db

    body = {"name": "Busy"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with app.app_context():
        db.session.add(
            IdempotencyRecord(
                user_id=uuid.UUID(alice.id),
                operation="characters.create",
                key="busy",
                fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
                state="in_flight",
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(days=1),
            )
        )
        db.session.commit()
    response = client.post(
        "/api/v1/characters", json=body, headers={**alice.auth, "Idempotency-Key": "busy"}
    )
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert_documented(spec, "/api/v1/characters", "post", response)


def test_a_304_declares_its_etag_and_only_keyed_operations_a_409_retry_after(spec):
    keyed_conflicts = 0
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        if "304" in responses:
            headers = documented_response(spec, path, method, 304).get("headers", {})
            assert "ETag" in headers, (path, method)
        if "409" in responses:
            headers = documented_response(spec, path, method, 409).get("headers", {})
            keyed = "Idempotency-Key" in header_parameters(spec, path, method)
            assert ("Retry-After" in headers) is keyed, (path, method)
            keyed_conflicts += keyed
    assert keyed_conflicts == 3  # POST /characters, /characters/generate, /templates
