"""Logging: one JSON object per line on stdout (or readable text in development).

Every record carries the request id of the request it belongs to. Nothing here logs bodies or
headers, so passwords, tokens and ``Authorization`` never reach the log.
"""

from __future__ import annotations

import logging
import sys

from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class _JsonFormatter(JsonFormatter):
    def add_fields(self, log_record: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record["pid"] = record.process


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the record."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str, fmt: str) -> None:
    """Route the root logger to stdout in the chosen format (idempotent)."""
    handler = StdoutHandler()
    if fmt == "json":
        handler.setFormatter(
            _JsonFormatter(
                "%(message)s %(request_id)s",
                rename_fields={"asctime": "timestamp"},
                timestamp=True,
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_character_forge", False):
            root.removeHandler(existing)
    handler._character_forge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The app writes its own request log; werkzeug's would duplicate it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
