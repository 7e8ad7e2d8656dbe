"""The OpenAPI document is valid and describes errors as problems."""

from __future__ import annotations

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
        if operation.get("security") != []:
            assert "401" in responses, (path, method)


def test_public_operations_are_marked(spec):
    assert spec["paths"]["/health/live"]["get"]["security"] == []
    assert spec["paths"]["/health/ready"]["get"]["security"] == []
