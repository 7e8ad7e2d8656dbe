"""Swagger UI at ``/docs``, with its assets served from the service (works offline)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Response, abort, send_from_directory

STATIC = Path(__file__).parent / "static"
BUNDLE = Path(swagger_ui_bundle.swagger_ui_path)
OWN_ASSETS = {"init.js"}

bp = Blueprint("apidocs", __name__, url_prefix="/docs")


@bp.get("", strict_slashes=False)
def index() -> Response:
    return send_from_directory(STATIC, "index.html", max_age=0)


@bp.get("/assets/<path:filename>")
def asset(filename: str) -> Response:
    folder = STATIC if filename in OWN_ASSETS else BUNDLE
    if not (folder / filename).is_file():
        abort(404)
    return send_from_directory(folder, filename, max_age=3600)
