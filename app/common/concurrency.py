"""Optimistic concurrency: strong ETags from a row's id and version column, ``If-Match`` on
writes (428 without, 412 when stale) and ``If-None-Match`` on reads (304).

A view can show more than its own row: a character shows its owner's public profile and its
``template_id``, which deleting the template sets to null without touching the character's row.
Such a resource names what else its view shows in ``etag_context`` (see :func:`owner_context`),
and that goes into the ETag too, so the ETag changes whenever the view does and a 304 is never
stale. The other way round, a view that shows only part of its row must not change its ETag
when the rest changes: a user's public profile (:class:`PublicProfile`) has an ETag of what it
shows, not of the account's row version, which moves with the password, role and email too.

The check here is only the fast path. The write itself is guarded by the database: every
versioned model maps its version column as SQLAlchemy's ``version_id_col``, so the UPDATE or
DELETE carries ``WHERE version = <the version read>``; when a concurrent writer got there first
no row matches, SQLAlchemy raises ``StaleDataError`` and the error handler answers 412.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple, Protocol

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
# The other two conditions of RFC 9110 each operation of a kind evaluates, documented on every
# one of them by app.common.api (a route lists only the condition it is about)
IF_MATCH_ON_READ_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": "An `ETag` (or `*`): the resource only if this is still its current "
    "version, else 412 (RFC 9110, 13.1.1).",
    "schema": {"type": "string"},
}
IF_NONE_MATCH_ON_WRITE_PARAMETER = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "The change only if the resource's current version is not this `ETag` "
    "(or, with `*`, not any): else 412 and nothing is changed (RFC 9110, 13.1.2).",
    "schema": {"type": "string"},
}
ETAG_HEADER = {
    "ETag": {
        "description": "Strong entity tag of this resource's current version.",
        "schema": {"type": "string"},
    }
}


def owner_context(owner: Any) -> str:
    """What an ETag must cover of an embedded owner's public view (``UserPublic``): what can
    change of it (its id and ``created_at`` cannot), or ``""`` for none (built-in templates).
    Nothing private: a change of the owner's password, role or email leaves it as it was."""
    if owner is None:
        return ""
    return repr((owner.username, owner.display_name, owner.bio))


class PublicProfile(NamedTuple):
    """A user as their public view (``UserPublic``) shows them, for its ETag.

    The account's row version moves with every change of the account, private ones too (a new
    password, role or email), so an ETag made from it would tell every signed-in user when the
    account changes privately: the same body with a new ETag. This view's ETag covers what it
    shows and nothing else, as a character's view covers its owner (:func:`owner_context`).
    """

    id: Any
    etag_context: str
    # the view has no version of its own: its content is what tells one from another
    row_version: int = 0

    @classmethod
    def of(cls, user: Any) -> PublicProfile:
        return cls(user.id, f"public:{owner_context(user)}")


def etag_for(resource: Versioned) -> str:
    context = getattr(resource, "etag_context", "")
    # the empty field once held a per-view salt: kept, so that no ETag already issued changes
    # (with a rolling deploy, two instances would otherwise answer each other's with 412)
    text = f"{resource.id}:{resource.row_version}::{context}"
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'


def _tags(header: str) -> list[str]:
    return [part.strip() for part in header.split(",") if part.strip()]


def _if_match_holds(header: str, etag: str) -> bool:
    """Whether an ``If-Match`` header names ``etag`` (compared strongly) or is ``*``."""
    tags = _tags(header)
    return "*" in tags or etag in tags


def check_if_match(resource: Versioned, *, required: bool = True) -> None:
    """Compare ``If-Match`` with the resource's current ETag (strongly). Without the header:
    428 where it is ``required``, else nothing to check (an If-Match that is sent is always
    evaluated, RFC 9110 13.2.1). An ``If-None-Match`` is evaluated too."""
    header = request.headers.get("If-Match")
    if header is None and required:
        raise PreconditionRequired(
            "This request requires an If-Match header with the resource's ETag."
        )
    if header is not None and not _if_match_holds(header, etag_for(resource)):
        raise PreconditionFailed(
            "The resource has changed since you read it; GET it again and retry."
        )
    check_if_none_match_on_write(resource)


def check_if_none_match_on_write(resource: Versioned) -> None:
    """RFC 9110 13.1.2: a write whose ``If-None-Match`` names the current version (or is ``*``,
    as the resource exists) is not performed: 412."""
    if "If-None-Match" in request.headers and matches_if_none_match(etag_for(resource)):
        raise PreconditionFailed(
            "If-None-Match names the resource's current version (or is *): nothing was changed."
        )


def check_if_match_on_read(etag: str) -> None:
    """RFC 9110 13.1.1: a read whose ``If-Match`` names neither ``*`` nor the current version
    is 412 (a client asking for exactly what it read before, not whatever is there now)."""
    header = request.headers.get("If-Match")
    if header is not None and not _if_match_holds(header, etag):
        raise PreconditionFailed("If-Match does not name the resource's current version.")


def matches_if_none_match(etag: str) -> bool:
    """Whether the request's ``If-None-Match`` names ``etag`` (compared weakly) or is ``*``."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = [tag.removeprefix("W/") for tag in _tags(header)]
    return "*" in tags or etag in tags


def not_modified(resource: Versioned) -> bool:
    # the ETag is worked out only when asked for (most reads send no If-None-Match)
    return "If-None-Match" in request.headers and matches_if_none_match(etag_for(resource))


def not_modified_response(resource: Versioned) -> Response | None:
    """A 304 with the ETag when ``If-None-Match`` names the current version, else ``None``
    (412 first when an ``If-Match`` is sent and does not: :func:`check_if_match_on_read`)."""
    if "If-Match" in request.headers:
        check_if_match_on_read(etag_for(resource))
    if not not_modified(resource):
        return None
    response = current_app.response_class(status=304)
    response.headers["ETag"] = etag_for(resource)
    return response
