"""Liveness, readiness and metrics: the operational endpoints, at the root."""

from __future__ import annotations

import functools
import time
from typing import Any

import marshmallow as ma
from flask import Response, current_app
from flask.views import MethodView
from sqlalchemy import text

from app.auth.policy import public
from app.common.api import Blueprint
from app.extensions import db
from app.health import metrics

blp = Blueprint(
    "health",
    __name__,
    description="Operational endpoints: liveness, readiness and Prometheus metrics.",
)


class LiveSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"example": "ok"})


class CheckSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok", "fail"]})
    latency_ms = ma.fields.Float(metadata={"example": 1.3})
    error = ma.fields.String(metadata={"example": "database unreachable"})


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok", "fail"]})
    checks = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(CheckSchema), required=True
    )


@blp.route("/health/live")
class Live(MethodView):
    @public
    @blp.response(200, LiveSchema)
    def get(self) -> dict[str, Any]:
        """Liveness: the process is running.

        Touches nothing else (no database), so a slow dependency never gets the process killed.
        """
        return {"status": "ok"}


@blp.route("/health/ready")
class Ready(MethodView):
    @public
    @blp.response(
        200,
        ReadySchema,
        example={"status": "ok", "checks": {"database": {"status": "ok", "latency_ms": 1.3}}},
    )
    @blp.alt_response(
        503,
        schema=ReadySchema,
        description="A dependency is down (this body is not a problem document: probes read it)",
        example={
            "status": "fail",
            "checks": {"database": {"status": "fail", "error": "database unreachable"}},
        },
    )
    def get(self) -> tuple[dict[str, Any], int]:
        """Readiness: the database answers `SELECT 1` and its schema is migrated.

        503 when it cannot be reached, when its schema was never created, or when migrations
        this release needs are pending (`flask db upgrade`). A schema newer than this release
        (migrated for the next one, during a rolling deploy) is ready.
        """
        started = time.perf_counter()
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:  # any failure to reach the database means "not ready"
            db.session.rollback()
            return _not_ready("database unreachable")
        latency = round((time.perf_counter() - started) * 1000, 2)
        problem = _schema_problem()
        if problem:
            return _not_ready(problem)
        return {
            "status": "ok",
            "checks": {"database": {"status": "ok", "latency_ms": latency}},
        }, 200


def _not_ready(error: str) -> tuple[dict[str, Any], int]:
    return {"status": "fail", "checks": {"database": {"status": "fail", "error": error}}}, 503


def _schema_problem() -> str | None:
    """Why the database's schema cannot serve this release (None when it can)."""
    try:
        stamped = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except Exception:  # no such table: never migrated
        db.session.rollback()
        stamped = set()
    if not stamped:
        return "database schema not created: run `flask db upgrade`"
    heads, known = _revisions(current_app.extensions["migrate"].directory)
    if stamped <= known and not stamped <= heads:
        return "database migrations pending: run `flask db upgrade`"
    return None


@functools.cache
def _revisions(directory: str) -> tuple[frozenset[str], frozenset[str]]:
    """This release's head revisions, and every revision it knows, from its migrations."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(directory)
    known = frozenset(revision.revision for revision in script.walk_revisions())
    return frozenset(script.get_heads()), known


metrics_blp = Blueprint(
    "metrics", __name__, description="Prometheus metrics (switched off with METRICS_ENABLED=false)."
)


@metrics_blp.route("/metrics")
class Metrics(MethodView):
    @public
    @metrics_blp.doc(
        responses={
            "200": {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    def get(self) -> Response:
        """Prometheus metrics of every worker: request counts, latency, database pool.

        `http_requests_total` and `http_request_duration_seconds` by `method`, `endpoint` (the
        route rule) and `status`; the gauges `db_pool_size`, `db_pool_checked_out` and
        `db_pool_overflow`. Public: expose it only to the scraper (see the operations guide).
        """
        body, content_type = metrics.render()
        return current_app.response_class(body, mimetype=None, content_type=content_type)
