"""Alembic environment, driven by Flask-Migrate (``flask db …``).

Logging is left to the application (no ``fileConfig``: it would disable the app's loggers).
SQLite gets batch mode so that ALTERs work there too.
"""

import logging

from alembic import context
from flask import current_app

from app.common.schema_compare import include_object

logger = logging.getLogger("alembic.env")
config = context.config
target_db = current_app.extensions["migrate"].db


def get_engine():
    return target_db.engine


def get_metadata():
    return target_db.metadata


def _configure_kwargs(dialect_name: str) -> dict:
    kwargs = dict(current_app.extensions["migrate"].configure_args)
    kwargs.setdefault("compare_type", True)
    kwargs.setdefault("include_object", include_object)
    kwargs["render_as_batch"] = dialect_name == "sqlite"
    return kwargs


def run_migrations_offline():
    url = get_engine().url
    context.configure(
        url=url.render_as_string(hide_password=False),
        target_metadata=get_metadata(),
        literal_binds=True,
        **_configure_kwargs(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    connectable = get_engine()
    with connectable.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            # The app's connections stop any statement after DB_STATEMENT_TIMEOUT_MS; building
            # an index or running ANALYZE on a large table takes longer (the index of name
            # pieces: ~7 s at a million characters, then ~6 s of ANALYZE). The connection is
            # discarded afterwards, so the pool never hands it to a request.
            connection.exec_driver_sql("SET statement_timeout = 0")
            connection.commit()
        try:
            kwargs = _configure_kwargs(connection.dialect.name)
            kwargs.setdefault("process_revision_directives", process_revision_directives)
            context.configure(connection=connection, target_metadata=get_metadata(), **kwargs)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if postgres:
                connection.invalidate()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
