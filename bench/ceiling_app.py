"""The ceiling of bench_http.py: the smallest useful Flask app, one route, no database.

Served by ``bench_http.py`` with the project's own ``gunicorn.conf.py`` (same sync workers,
timeouts, recycling, no access log), so its requests per second are what this machine, this
Python, Flask and gunicorn can do at best; every API scenario is reported as a fraction of it.

    gunicorn -c gunicorn.conf.py bench.ceiling_app:app
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/")
def status() -> Response:
    return jsonify({"status": "ok"})
