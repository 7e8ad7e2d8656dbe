"""Sign-in, token refresh with rotation and reuse detection, sign-out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from app.auth import passwords
from app.auth.models import LoginSession
from app.auth.tokens import issue_tokens
from app.common.types import utcnow
from app.errors import AccountDisabled, InvalidCredentials, Unauthorized
from app.extensions import db
from app.users.models import User
from app.users.schemas import normalise_email, typed_email


def _refresh_expiry() -> Any:
    return utcnow() + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL"])


def _account_by_email(email: str) -> User | None:
    """The account ``email`` signs in to: the one stored under the canonical spelling that
    registration stores (:func:`normalise_email`), whatever spelling the client sends.

    An account stored under exactly the spelling sent (lower-cased) comes first: before
    domains were canonical, one mailbox could register under several spellings, and the
    migration that made stored addresses canonical (bd41c7e90a52) left alone those whose
    canonical spelling another account already had. Such an account keeps signing in with the
    spelling it registered (the canonical spelling reaches the other one), as does one whose
    stored domain IDNA refuses. Both spellings are looked up in one query, so the time taken
    does not depend on which exists.
    """
    typed = typed_email(email)
    try:
        canonical = normalise_email(email)
    except ValueError:  # a domain IDNA refuses: only an old account can be stored so
        canonical = typed
    found = db.session.scalars(select(User).where(User.email.in_({typed, canonical}))).all()
    exact = [user for user in found if user.email == typed]
    return (exact or found or [None])[0]


def login(*, email: str, password: str) -> dict[str, Any]:
    user = _account_by_email(email)
    if user is None:
        passwords.spend_verification_time(password)
        raise InvalidCredentials()
    if not passwords.verify_password(user.password_hash, password):
        raise InvalidCredentials()
    if not user.is_active:
        raise AccountDisabled()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    session = LoginSession(user=user, refresh_jti=uuid.uuid4(), expires_at=_refresh_expiry())
    db.session.add(session)
    db.session.commit()
    return issue_tokens(user, session)


def refresh(*, claims: dict[str, Any]) -> dict[str, Any]:
    """Rotate: the presented refresh token must be the session's current one.

    The swap is one conditional UPDATE, so two concurrent uses of the same token cannot both
    succeed. A token that is not current (already rotated, or its session revoked) is a reuse:
    the whole session is revoked, its access tokens included.
    """
    session_id, presented = claims["_sid"], claims["_jti"]
    new_jti = uuid.uuid4()
    rotated = db.session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.user_id == claims["_sub"],
            LoginSession.refresh_jti == presented,
            LoginSession.revoked_at.is_(None),
        )
        .values(refresh_jti=new_jti, expires_at=_refresh_expiry())
        .execution_options(synchronize_session=False)
    ).rowcount
    if rotated != 1:
        db.session.execute(
            update(LoginSession)
            .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        raise Unauthorized("This refresh token was already used or revoked; sign in again.")
    session = db.session.scalar(select(LoginSession).where(LoginSession.id == session_id))
    if session is None or not session.user.is_active:
        db.session.rollback()
        raise Unauthorized("The account is no longer active.")
    db.session.commit()
    return issue_tokens(session.user, session)


def logout(*, session_id: uuid.UUID) -> None:
    db.session.execute(
        update(LoginSession)
        .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()


def prune_sessions() -> int:
    """Delete sessions whose refresh tokens have expired or that were revoked over a day ago."""
    from sqlalchemy import delete, or_

    now = utcnow()
    result = db.session.execute(
        delete(LoginSession).where(
            or_(
                LoginSession.expires_at < now,
                LoginSession.revoked_at < now - timedelta(days=1),
            )
        )
    )
    db.session.commit()
    return result.rowcount
