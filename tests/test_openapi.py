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
