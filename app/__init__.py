"""Character Forge: the application factory.

``create_app()`` reads and validates the settings, then registers, in order: extensions,
blueprints, the error handler, the per-request hooks and the CLI commands.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from app.common.json_provider import FastJSONProvider
from app.config import default_instance_path, flask_config, load_settings, setting_names
from app.logs import configure_logging

PROJECT_ROOT = Path(__file__).resolve().parent.parent
API_PREFIX = "/api/v1"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application.

    ``config`` overrides settings by their environment-variable names (``DATABASE_URL`` …);
    any other key is copied into ``app.config`` as is.
    """
    overrides = dict(config or {})
    names = set(setting_names())
    load_development_dotenv(overrides.get("APP_ENV"))
    environ = {**os.environ, **{k: str(v) for k, v in overrides.items() if k in names}}
    instance_path = Path(overrides.pop("INSTANCE_PATH", default_instance_path()))
    settings = load_settings(environ, instance_path=instance_path)

    from app.http import ForgeFlask  # here, as the other app modules: metrics register on import

    app = ForgeFlask(__name__, instance_path=str(instance_path), static_folder=None)
    # "/api/v1//characters" names no resource: a 404 problem, not a redirect to another path
    app.url_map.merge_slashes = False
    app.json = FastJSONProvider(app)
    app.config.update(flask_config(settings))
    app.config.update({k: v for k, v in overrides.items() if k not in names})
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    if settings.TRUSTED_PROXIES:
        hops = settings.TRUSTED_PROXIES
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_hooks(app)
    register_commands(app)
    return app


def load_development_dotenv(app_env: str | None = None) -> None:
    """A ``.env`` file is read in development only, and never overrides the real environment."""
    app_env = app_env or os.environ.get("APP_ENV") or "development"
    dotenv_file = PROJECT_ROOT / ".env"
    if app_env == "development" and dotenv_file.is_file():
        from dotenv import load_dotenv

        load_dotenv(dotenv_file, override=False)


def register_extensions(app: Flask) -> None:
    from app.auth import session_check
    from app.common import prepared, ratelimit
    from app.common.api import ProblemApi
    from app.common.database import (
        install_ctype_check,
        install_liveness_check,
        install_read_connections,
    )
    from app.extensions import cors, db, jwt, limiter, migrate
    from app.portraits.storage import init_storage

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    app.config["API_SPEC_OPTIONS"] = {
        "info": {"description": (Path(__file__).parent / "apidocs" / "intro.md").read_text()},
        "security": [{"bearerAuth": []}],
    }
    app.extensions["api"] = ProblemApi(app)
    if app.config["CORS_ORIGINS"]:
        cors.init_app(
            app,
            origins=list(app.config["CORS_ORIGINS"]),
            supports_credentials=False,
            # Access-Control-Allow-Origin only in answer to an allowed Origin; Vary: Origin is
            # added to every response by app.http (flask-cors adds it only for two origins or
            # more, yet with one the answer still depends on the Origin sent)
            always_send=False,
            vary_header=False,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "X-Pagination",
                "Link",
                "X-Request-ID",
                "Retry-After",
                "Idempotent-Replayed",
            ],
            max_age=600,
        )
    jwt.init_app(app)
    init_storage(app)
    limiter.init_app(app)
    ratelimit.install(app, limiter)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
        elif db.engine.dialect.name == "postgresql":
            install_liveness_check(db.engine)
            install_ctype_check(db.engine)
            install_read_connections(app, db.engine)
            prepared.install(db.engine)
            session_check.install(db.engine)
            app.extensions["session_check_folded"] = True


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    from app.common.pagination import register_sqlite_functions

    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()
    register_sqlite_functions(dbapi_connection)


def register_blueprints(app: Flask) -> None:
    from app.apidocs.routes import bp as docs_bp
    from app.auth.routes import blp as auth_blp
    from app.character_templates.routes import blp as templates_blp
    from app.characters.routes import blp as characters_blp
    from app.health.routes import blp as health_blp
    from app.health.routes import metrics_blp
    from app.portraits.routes import blp as portraits_blp
    from app.users.routes import blp as users_blp

    api = app.extensions["api"]
    api.register_blueprint(auth_blp, url_prefix=f"{API_PREFIX}/auth")
    api.register_blueprint(users_blp, url_prefix=f"{API_PREFIX}/users")
    api.register_blueprint(templates_blp, url_prefix=f"{API_PREFIX}/templates")
    api.register_blueprint(characters_blp, url_prefix=f"{API_PREFIX}/characters")
    api.register_blueprint(portraits_blp, url_prefix=f"{API_PREFIX}/characters")
    api.register_blueprint(health_blp)
    if app.config["METRICS_ENABLED"]:
        api.register_blueprint(metrics_blp)
    if app.config["DOCS_ENABLED"]:
        app.register_blueprint(docs_bp)


def register_errorhandlers(app: Flask) -> None:
    from app.errors import register_error_handlers

    register_error_handlers(app)


def register_hooks(app: Flask) -> None:
    from app.auth.policy import register_auth_hook
    from app.common.api import reject_unexpected_body, reject_unknown_query
    from app.common.idempotency import reject_malformed_key
    from app.http import register_request_hooks

    register_request_hooks(app)
    register_auth_hook(app)
    # after the authentication hook (a 401 comes first): the query, the headers, then the body
    app.before_request(reject_unknown_query)
    app.before_request(reject_malformed_key)
    app.before_request(reject_unexpected_body)


def register_commands(app: Flask) -> None:
    from app.auth.cli import auth_cli
    from app.cli import idempotency_cli, seed_command
    from app.portraits.cli import portraits_cli
    from app.users.cli import users_cli

    for command in (users_cli, auth_cli, idempotency_cli, portraits_cli, seed_command):
        app.cli.add_command(command)
