"""How a resource answers its creation: 201 with its view, ``Location`` and ``ETag``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify

from app.common.concurrency import ETAG_HEADER, etag_for
from app.extensions import db


@dataclass(frozen=True)
class Created:
    model: type
    schema: Any  # the read schema (an instance)
    location: str  # e.g. "/api/v1/characters/{id}"

    def answer(self, resource: Any) -> tuple[Any, int, dict[str, str]]:
        """The view's return value: serialised by ``@blp.response`` with the read schema."""
        return resource, 201, self.headers(resource)

    def headers(self, resource: Any) -> dict[str, str]:
        return {"Location": self.location.format(id=resource.id), "ETag": etag_for(resource)}

    def replay(self, resource_id: uuid.UUID) -> Response | None:
        """Answer again from the stored resource (its current view), or None if it is gone."""
        resource = db.session.get(self.model, resource_id)
        if resource is None:
            return None
        response = jsonify(self.schema.dump(resource))
        response.status_code = 201
        response.headers.update(self.headers(resource))
        return response

    def headers_doc(self, noun: str) -> dict[str, Any]:
        return {
            "Location": {"description": f"URL of the new {noun}", "schema": {"type": "string"}},
            **ETAG_HEADER,
        }
