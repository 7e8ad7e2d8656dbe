"""Per-request plumbing: request ids, security headers, the request log and metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Request, Response, current_app, g, request
from flask.sessions import NullSession, SessionInterface
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from app.health import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI is served from this service (app.apidocs): scripts and styles from 'self' only;
# blob: images are the responses its "Try it out" shows (a portrait is drawn from a blob URL)
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
JSON_TYPES = ("application/json", "application/problem+json")

access_log = logging.getLogger("app.request")


class NoSessionInterface(SessionInterface):
    """No cookie sessions: the API authenticates with bearer tokens only (API.md, CORS).

    Flask's default interface parses the ``Cookie`` header and builds a signer on every request
    to open a session nobody reads (a measured 15 µs, a fortieth of a read). Here ``session`` is
    always Flask's ``NullSession``, which refuses writes, and no response sets a cookie.
    """

    def open_session(self, app: Flask, request: Request) -> NullSession:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: object, response: Response) -> None:
        return None


class ForgeFlask(Flask):
    """Flask, answering a plain ``OPTIONS`` (Flask's automatic one) 204 with ``Allow``: it has
    no content, so no ``text/html`` type and empty body as Flask's 200 carries."""

    def make_default_options_response(self) -> Response:
        response = super().make_default_options_response()
        response.status_code = 204
        return response


def _answer_preflight() -> Response | None:
    """A CORS preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is
    answered before routing, on any path: flask-cors (an ``after_request`` hook) adds the
    ``Access-Control-*`` headers, or none for an origin not allowed. Routed as usual, a preflight
    for a malformed id or an unknown path got a 404, which a browser reports as a CORS error
    without ever sending the request; now the request is sent and gets its 404 problem, with
    the CORS headers that let the page read it. Registered only when ``CORS_ORIGINS`` is set."""
    if request.method != "OPTIONS":
        return None
    headers = request.headers
    if "Origin" not in headers or "Access-Control-Request-Method" not in headers:
        return None
    return current_app.make_default_options_response()  # no Allow where no resource is


def _begin_request() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _security_headers(response: Response, *, behind_https: bool) -> None:
    headers = response.headers
    headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    is_docs = request.blueprint == "apidocs"
    headers["Content-Security-Policy"] = DOCS_CSP if is_docs else API_CSP
    status = response.status_code
    if status == 204 or status == 304:
        # no body, so no Content-Type; a 304 repeats the Cache-Control its 200 would carry
        # (RFC 9110, 15.4.5): the JSON resources' no-store, unless it set its own (portraits)
        headers.remove("Content-Type")
        if status == 304 and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
    elif response.mimetype in JSON_TYPES and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    if behind_https:
        headers["Strict-Transport-Security"] = HSTS


def _endpoint_label(app: Flask) -> str:
    """The route rule a request matched, for the metrics; for a 405 the rule of the path (which
    exists, only not for this method); ``<unmatched>`` for paths no rule has."""
    if request.url_rule is not None:
        return request.url_rule.rule
    error = request.routing_exception
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        adapter = app.create_url_adapter(request)
        if adapter is not None:
            try:
                rule, _ = adapter.match(method=error.valid_methods[0], return_rule=True)
            except HTTPException:
                return "<unmatched>"
            return rule.rule
    return "<unmatched>"


def _finish_request(response: Response, app: Flask) -> Response:
    _security_headers(response, behind_https=app.config["BEHIND_HTTPS"])
    if app.config["CORS_ORIGINS"]:
        # whether Access-Control-Allow-Origin is sent depends on the Origin (flask-cors)
        response.vary.add("Origin")
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    endpoint = _endpoint_label(app)
    if app.config["METRICS_ENABLED"]:
        metrics.observe_request(request.method, endpoint, response.status_code, elapsed)
        metrics.observe_pool()
    level = logging.WARNING if response.status_code >= 500 else logging.INFO
    if not access_log.isEnabledFor(level):
        return response
    access_log.log(
        level,
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2),
            "user_id": g.get("user_id"),
        },
    )
    return response


def register_request_hooks(app: Flask) -> None:
    app.session_interface = NoSessionInterface()
    app.before_request(_begin_request)
    if app.config["CORS_ORIGINS"]:
        app.before_request(_answer_preflight)  # before authentication and every check
    app.after_request(lambda response: _finish_request(response, app))
