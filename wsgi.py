"""WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi …``."""

import sys

from app import create_app
from app.config import ConfigError

try:
    app = create_app()
except ConfigError as error:  # one line naming the variable, no traceback
    print(f"configuration error: {error}", file=sys.stderr)
    raise SystemExit(1) from None
