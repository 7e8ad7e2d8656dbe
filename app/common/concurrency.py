"""Optimistic concurrency: strong ETags from a row's id and version column, ``If-Match`` on
writes (428 without, 412 when stale) and ``If-None-Match`` on reads (304).

The check here is only the fast path. The write itself is guarded by the database: every
versioned model maps its version column as SQLAlchemy's ``version_id_col``, so the UPDATE or
DELETE carries ``WHERE version = <the version read>``; when a concurrent writer got there first
no row matches, SQLAlchemy raises ``StaleDataError`` and the error handler answers 412.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from flask import Response, current_app, request

from app.errors import PreconditionFailed, PreconditionRequired


class Versioned(Protocol):
    id: Any
    row_version: int


IF_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "description": "The `ETag` of the resource as last read. Missing: 428; stale: 412.",
    "schema": {"type": "string"},
}
IF_NONE_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "An `ETag` previously read; 304 when it is still current.",
    "schema": {"type": "string"},
}
ETAG_HEADER = {
    "ETag": {
        "description": "Strong entity tag of this resource's current version.",
        "schema": {"type": "string"},
    }
}


def etag_for(resource: Versioned, salt: str = "") -> str:
    digest = hashlib.sha256(f"{resource.id}:{resource.row_version}:{salt}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def _tags(header: str) -> list[str]:
    return [part.strip() for part in header.split(",") if part.strip()]


def check_if_match(resource: Versioned, salt: str = "") -> None:
    """Require ``If-Match`` and compare it with the resource's current ETag (strongly)."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionRequired(
            "This request requires an If-Match header with the resource's ETag."
        )
    tags = _tags(header)
    if "*" in tags:
        return
    if etag_for(resource, salt) not in tags:
        raise PreconditionFailed(
            "The resource has changed since you read it; GET it again and retry."
        )


def not_modified(resource: Versioned, salt: str = "") -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = [tag.removeprefix("W/") for tag in _tags(header)]
    return "*" in tags or etag_for(resource, salt) in tags


def not_modified_response(resource: Versioned, salt: str = "") -> Response | None:
    """A 304 with the ETag when ``If-None-Match`` names the current version, else ``None``."""
    if not not_modified(resource, salt):
        return None
    response = current_app.response_class(status=304)
    response.headers["ETag"] = etag_for(resource, salt)
    return response
