"""The check that an access token's login session is still live, at no extra round trip.

Every authenticated request must be refused once its login session is revoked (logout, refresh
reuse, password change) or its user deactivated or deleted, on every worker and instance at
once. The truth is in the database, and a separate query per request to consult it was a third
of the work of a single read. So on PostgreSQL a read (``GET``/``HEAD``) does not ask
separately: the check travels with the request's first SQL statement, as a call to the function
``cf_assert_live_session`` (migration 3b8f2d6a7c41) sent in the same round trip, just before
that statement. The function raises SQLSTATE ``CF401`` unless the session is live
and its user active, and that error becomes a 401 before anything the statement read is used.
The check sees every change committed before it, so it is exactly as strict as the separate
query was. A read that sends no statement at all (or only a batch statement, which cannot carry
the call) is checked separately before its response leaves. The caller's role is not needed to
read one's own or a public resource; where a decision needs it, it is read from the database
then (:class:`Caller`), with the session, so a role change counts from the next request.

Writes (and everything on SQLite) check the session with a separate query before the view runs,
so nothing is written for a revoked token, even outside the database; that query reads the
whole account as a Core row (:class:`~app.users.models.Account`), which a write usually needs
anyway, and which becomes the mapped ``User`` only for a write that needs that.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Response, g, has_request_context
from sqlalchemy import Select, bindparam, event, select
from sqlalchemy.engine import Engine

from app.auth.models import LoginSession
from app.common.database import connection
from app.common.prepared import prepared
from app.errors import ServiceUnavailable, Unauthorized, handle_exception
from app.users.models import Account, User

FUNCTION = "cf_assert_live_session"
SQLSTATE = "CF401"  # raised by the function: the session is not live (any reason)
UNDEFINED_FUNCTION = "42883"  # the function is missing: the migrations have not been applied
_PENDING = "pending_session_check"
_PREFIX = f"SELECT {FUNCTION}(%(cf_session_id)s::uuid, %(cf_user_id)s::uuid); "
REVOKED = "The token has been revoked."
log = logging.getLogger(__name__)


class Caller:
    """Who is calling: the account's id, and its role, read from the database only when a
    decision needs it (``is_admin`` short-circuits after ownership and visibility in every
    policy, so a read of one's own or a public resource never asks)."""

    __slots__ = ("_role", "id", "session_id")

    def __init__(self, id: uuid.UUID, session_id: uuid.UUID, role: str | None = None) -> None:
        self.id = id
        self.session_id = session_id
        self._role = role

    @property
    def role(self) -> str:
        if self._role is None:
            self._role = load_caller(self.session_id, self.id).role
        return self._role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _live_session(*columns: Any) -> Select[Any]:
    """``columns`` of the user whose login session ``:sid`` is live and who is ``:sub`` and
    active (the same conditions as the database function). Built once per use below."""
    return (
        select(*columns)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            LoginSession.id == bindparam("sid"),
            LoginSession.revoked_at.is_(None),
            User.id == bindparam("sub"),
            User.is_active.is_(True),
        )
    )


_LIVE_SESSION_CALLER = prepared(_live_session(User.id, User.role), "cf_live_session_caller")
_LIVE_SESSION_ACCOUNT = prepared(_live_session(*User.__table__.columns), "cf_live_session_account")


def load_caller(session_id: uuid.UUID, user_id: uuid.UUID) -> Caller:
    """The separate check: one indexed query for the caller of a live session (401 if none).

    It also settles a check deferred to the first statement, which it makes unnecessary.
    """
    g.pop(_PENDING, None)
    row = connection().execute(_LIVE_SESSION_CALLER, {"sid": session_id, "sub": user_id}).first()
    if row is None:
        raise Unauthorized(REVOKED)
    return Caller(row.id, session_id, row.role)


def load_account(session_id: uuid.UUID, user_id: uuid.UUID) -> Account:
    """The separate check for a write: the same query, reading the whole account (a write
    usually needs it: an owner to set, a profile to change), so nothing asks twice."""
    g.pop(_PENDING, None)
    row = connection().execute(_LIVE_SESSION_ACCOUNT, {"sid": session_id, "sub": user_id}).first()
    if row is None:
        raise Unauthorized(REVOKED)
    return Account(row._mapping)


def defer_to_first_statement(caller: Caller) -> None:
    """Check this request's session with its first SQL statement (see the module docs)."""
    setattr(g, _PENDING, caller)


def confirm_before_response(response: Response) -> Response:
    """After the view: a read that sent no statement is checked now, before it answers."""
    pending: Caller | None = g.get(_PENDING)
    if pending is None:
        return response
    try:
        load_caller(pending.session_id, pending.id)
    except Exception as error:  # a revoked token, or no database to ask: no answer but this
        return handle_exception(error)
    return response


def install(engine: Engine) -> None:
    """Carry deferred checks on the engine's statements; turn ``CF401`` into a 401."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _carry_check(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, executemany: bool
    ) -> tuple[str, Any]:
        if executemany or not isinstance(parameters, dict) or not has_request_context():
            return statement, parameters
        pending: Caller | None = g.pop(_PENDING, None)
        if pending is None:
            return statement, parameters
        check = {"cf_session_id": str(pending.session_id), "cf_user_id": str(pending.id)}
        return _PREFIX + statement, {**parameters, **check}

    @event.listens_for(engine, "handle_error")
    def _revoked(context: Any) -> None:
        error = context.original_exception
        code = getattr(error, "pgcode", None)
        if code == SQLSTATE:
            raise Unauthorized(REVOKED) from error
        if code == UNDEFINED_FUNCTION and FUNCTION in str(error):
            # new code on an old schema: say so, once per request, instead of a bare 500
            log.error(
                "%s() is missing: run 'flask db upgrade' before starting this release", FUNCTION
            )
            raise ServiceUnavailable("The service is being upgraded; retry shortly.") from error
