"""cf_assert_live_session(): an access token's login-session check, callable in any statement.

On PostgreSQL an authenticated read sends this call in the same round trip as its first
statement instead of a separate query (app.auth.session_check). It raises SQLSTATE CF401 unless
the session exists and is not revoked, and its user exists and is active. SQLite has no such functions: there the check is always a separate query.

Revision ID: 3b8f2d6a7c41
Revises: 9075fd19dd01
Create Date: 2026-11-26 00:30:00
"""

from alembic import op

revision = "3b8f2d6a7c41"
down_revision = "9075fd19dd01"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION cf_assert_live_session(p_session_id uuid, p_user_id uuid)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1
      FROM login_sessions AS s
      JOIN users AS u ON u.id = s.user_id
     WHERE s.id = p_session_id
       AND s.revoked_at IS NULL
       AND u.id = p_user_id
       AND u.is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the login session is not live' USING ERRCODE = 'CF401';
    END IF;
END
$$
"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION cf_assert_live_session(uuid, uuid)")
