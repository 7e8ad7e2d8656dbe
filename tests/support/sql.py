"""Watching and bypassing the app's SQL in tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg2
from flask import Flask
from sqlalchemy import event

from app.extensions import db


@contextmanager
def statements(application: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine sends while the block runs, as they reach the
    server (listening last, after every hook that rewrites them)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    with application.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def run_sql(database_url: str, sql: str, *params: Any) -> None:
    """What an operator (or another service) does directly in the database."""
    connection = psycopg2.connect(database_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        connection.close()


def driver_params(compiled: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a compiled statement, with ``values``, as psycopg2 takes them when
    the statement is sent past SQLAlchemy (an ``EXPLAIN`` of it): UUIDs as strings."""
    return {
        key: str(value) if isinstance(value, uuid.UUID) else value
        for key, value in compiled.construct_params(dict(values)).items()
    }
