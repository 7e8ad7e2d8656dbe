"""``Idempotency-Key`` for creations, built once for every POST that creates something.

A key is scoped to (user, operation). The first request with a key inserts a row in state
``in_flight`` and commits it before doing any work; the table's unique constraint on
(user, operation, key) decides races between workers and instances. When the work answers 2xx
the response (status, body, Location, ETag) is stored and later requests with the same key and
the same body get it replayed with ``Idempotent-Replayed: true``. A different body is 422, a
request arriving while the first is still running is 409, and responses that are not 2xx are
not stored (the row is deleted), so the client can correct the body and retry with the key.

The work's own transaction also writes the id of the resource it creates into the key's row
(an ``after_flush`` hook for what the ORM creates, :func:`record_created` for a Core insert),
so "created" and "the key knows it" commit together. If the process
dies after that commit and before the response is stored, a retry replays the created resource
(its current view) instead of creating it a second time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.common.api import current_view_method, parse_json_body, request_body
from app.common.created import Created
from app.common.database import connection
from app.common.types import JSONDocument, UTCDateTime, utcnow
from app.errors import BadRequest, ProblemError
from app.extensions import db

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[!-~]{1,255}$")
# A request still "in flight" after this long died with its worker; its key may be taken over.
ABANDONED_AFTER = timedelta(seconds=120)
REPLAYED_HEADERS = ("Location", "ETag", "Content-Type")
_ACTIVE = "cf_idempotency_record"  # in g: (user, operation, key) while a keyed creation runs

IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "1..255 characters of ASCII `!`..`~`. Retrying with the same key and body "
    "replays the first response (`Idempotent-Replayed: true`); a different body is 422; a "
    "retry while the first request is still running is 409. Keys are kept for at least 24 h.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


class IdempotencyKeyInUse(ProblemError):
    slug = "idempotency-key-in-use"


class IdempotencyKeyReused(ProblemError):
    slug = "idempotency-key-reused"


class InvalidIdempotencyKey(BadRequest):
    slug = "invalid-idempotency-key"


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "operation", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_flight | done
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_headers: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    # written in the work's own transaction: the resource exists iff this is set
    resource_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def _fingerprint() -> str:
    raw = request_body(request)
    try:
        canonical = json.dumps(
            parse_json_body(raw) if raw else None,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    except ProblemError:  # not JSON at all: compare the bytes
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


def _claim(
    user_id: uuid.UUID, operation: str, key: str, fingerprint: str, created: Created
) -> Response | None:
    """Insert the in-flight row, or answer from an existing one (replay, 409, 422)."""
    now = utcnow()
    ttl = timedelta(seconds=current_app.config["IDEMPOTENCY_TTL"])
    for _ in range(3):
        record = IdempotencyRecord(
            user_id=user_id,
            operation=operation,
            key=key,
            fingerprint=fingerprint,
            state="in_flight",
            created_at=now,
            expires_at=now + ttl,
        )
        db.session.add(record)
        try:
            db.session.commit()
            return None
        except IntegrityError:
            db.session.rollback()
        existing = db.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id,
                IdempotencyRecord.operation == operation,
                IdempotencyRecord.key == key,
            )
        )
        if existing is None:
            continue  # deleted in between (a failed first attempt): try to claim again
        abandoned = (
            existing.state == "in_flight"
            and existing.resource_id is None
            and existing.created_at < now - ABANDONED_AFTER
        )
        if existing.expires_at < now or abandoned:
            db.session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == existing.id,
                    IdempotencyRecord.created_at == existing.created_at,
                )
            )
            db.session.commit()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(errors={"headers": {HEADER: ["Used with another body."]}})
        if existing.state == "done":
            return _replay(existing)
        if existing.resource_id is not None:
            answer = created.replay(existing.resource_id)
            if answer is not None:  # the work committed; its answer was never stored
                answer.headers["Idempotent-Replayed"] = "true"
                return answer
        raise _in_use()
    raise _in_use()


def _in_use() -> IdempotencyKeyInUse:
    return IdempotencyKeyInUse(
        headers={"Retry-After": "1"},
        errors={"headers": {HEADER: ["A request with this key is still running; retry shortly."]}},
    )


def _replay(record: IdempotencyRecord) -> Response:
    response = current_app.response_class(
        record.response_body or "", status=record.status_code or 200
    )
    for name, value in (record.response_headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _finish(record_key: tuple[uuid.UUID, str, str], response: Response | None) -> None:
    user_id, operation, key = record_key
    db.session.rollback()  # whatever the work left behind is committed or abandoned by now
    record = db.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key,
            IdempotencyRecord.state == "in_flight",
        )
    )
    if record is None:
        return
    if response is not None and 200 <= response.status_code < 300:
        record.state = "done"
        record.status_code = response.status_code
        record.response_body = response.get_data(as_text=True)
        record.response_headers = {
            name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
        }
    elif record.resource_id is None:
        db.session.delete(record)
    # else: the work committed but its answer was lost; retries replay the resource
    db.session.commit()


def _note(connection: Connection, record: tuple[uuid.UUID, str, str], resource_id: Any) -> None:
    """Write the created resource's id into the key's row, in the creation's transaction."""
    user_id, operation, key = record
    connection.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key,
        )
        .values(resource_id=resource_id)
    )


def _recording(session: Session, created: Created, record: tuple[uuid.UUID, str, str]):
    """An after_flush hook noting a resource the ORM creates (see :func:`_note`)."""

    def after_flush(flushing: Session, _context: Any) -> None:
        for obj in flushing.new:
            if isinstance(obj, created.model):
                _note(flushing.connection(), record, obj.id)
                return

    event.listen(session, "after_flush", after_flush)
    return after_flush


def record_created(resource_id: uuid.UUID) -> None:
    """Note ``resource_id`` as the answer to this request's ``Idempotency-Key``, if it has one.

    Resources the ORM creates are noted by a flush hook; a service that inserts one with a Core
    statement (no flush to hook) calls this before it commits, so the note is in the same
    transaction as the resource.
    """
    record: tuple[uuid.UUID, str, str] | None = g.get(_ACTIVE)
    if record is not None:
        _note(connection(), record, resource_id)


def _check_key_format(key: str) -> None:
    if not _KEY.match(key):
        raise InvalidIdempotencyKey(
            "The Idempotency-Key header must be 1..255 characters of ASCII '!'..'~'.",
            errors={"headers": {HEADER: ["1..255 characters of ASCII '!'..'~'."]}},
        )


def reject_malformed_key() -> None:
    """A malformed ``Idempotency-Key`` is 400 before the body is parsed: a client whose body
    has a typo learns of both mistakes in turn, the header first, not of the key only once the
    body is right. A ``before_request`` hook after authentication (the key is checked again,
    for nothing, where it is used)."""
    key = request.headers.get(HEADER)
    if key is None:
        return
    view = current_view_method()
    if view is not None and getattr(view, "_honours_idempotency_key", False):
        _check_key_format(key)


def idempotent(operation: str, created: Created) -> Callable[[F], F]:
    """Make a creating view honour ``Idempotency-Key``.

    Place it between ``@blp.arguments`` (so invalid bodies are rejected before a key is
    claimed) and ``@blp.response`` (so the stored response is the serialised one). The key's
    format is checked before the body by :func:`reject_malformed_key`, which finds the view
    by the mark this sets (the decorators outside copy it with ``functools.wraps``).
    """

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = request.headers.get(HEADER)
            if key is None:
                return func(*args, **kwargs)
            _check_key_format(key)
            from app.auth.policy import current_caller

            user_id = current_caller().id
            replay = _claim(user_id, operation, key, _fingerprint(), created)
            if replay is not None:
                return replay
            record = (user_id, operation, key)
            session = db.session()
            hook = _recording(session, created, record)
            setattr(g, _ACTIVE, record)
            try:
                response = func(*args, **kwargs)
            except BaseException:
                try:
                    _finish(record, None)
                except Exception:  # e.g. the database is down: the row is reclaimed later
                    log.warning("could not release Idempotency-Key", exc_info=True)
                raise
            finally:
                event.remove(session, "after_flush", hook)
                g.pop(_ACTIVE, None)
            _finish(record, response)
            return response

        wrapper._honours_idempotency_key = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def prune_expired() -> int:
    result = db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < utcnow())
    )
    db.session.commit()
    return result.rowcount
