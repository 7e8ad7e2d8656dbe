"""Login sessions: one login and the chain of refresh tokens rotated from it.

Tokens carry the session id (``sid``). Revoking a session revokes every token issued for it,
access tokens included, on every worker and instance at once, because each request checks its
session row in the database (app.auth.session_check: a read does so in the same round trip as
its first statement).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.common.types import UTCDateTime, utcnow
from app.extensions import db
from app.users.models import User


class LoginSession(db.Model):
    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # jti of the one refresh token that may still be used; an older one means reuse.
    refresh_jti: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
