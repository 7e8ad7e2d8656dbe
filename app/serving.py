"""gunicorn's sync worker, with the error responses gunicorn writes itself as RFC 9457 problems.

gunicorn answers some requests before the app sees them: a request line longer than its
``limit_request_line`` (414), header fields over their limits (431), bytes that are not an HTTP
request (400), a transfer coding it does not support (501). It writes those as small HTML pages
(``gunicorn.util.write_error``). API.md wants every 4xx and 5xx, from every layer, as
``application/problem+json`` with a request id, so :class:`ProblemSyncWorker` swaps that writer,
for the duration of its own ``handle_error`` only, for :func:`write_problem`. Which errors are
the client's, their status codes and their logging stay gunicorn's.

Used by ``gunicorn.conf.py`` (``worker_class``); it is still the sync worker, one request at a
time, so swapping a module attribute for the length of one call is safe.
"""

from __future__ import annotations

import contextlib
import functools
import http
import json
import socket
import uuid
from typing import Any

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

from app.http import API_CSP, HSTS, REQUEST_ID_HEADER

# What the client is told, by status (gunicorn's own message can quote the request's bytes)
_DETAILS = {
    400: "The request is not valid HTTP/1.1.",
    403: "The request was refused.",
    414: "The request line (method, path and query) is longer than the server accepts.",
    417: "The Expect header asks for something the server does not do.",
    431: "The request's header fields are larger than the server accepts.",
    500: "The server could not handle the request.",
    501: "The request uses a transfer coding the server does not support.",
}


def problem_headers(*, behind_https: bool) -> list[tuple[str, str]]:
    """The headers the app puts on every response (``app.http``), for these too."""
    headers = [
        ("Content-Type", "application/problem+json"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", API_CSP),
    ]
    if behind_https:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def write_problem(
    sock: socket.socket,
    status_int: int,
    reason: str,
    mesg: str,
    *,
    headers: list[tuple[str, str]],
) -> None:
    """``gunicorn.util.write_error``'s contract, answered as a problem document. The title and
    the status line carry the status's own reason phrase: gunicorn passes "Bad Request" along
    with some other statuses (its 501 for an unsupported transfer coding, say)."""
    with contextlib.suppress(ValueError):
        reason = http.HTTPStatus(status_int).phrase
    request_id = uuid.uuid4().hex
    body = json.dumps(
        {
            "type": "about:blank",
            "title": reason,
            "status": status_int,
            "detail": _DETAILS.get(status_int, reason),
            "request_id": request_id,
        }
    ).encode()
    head = [f"HTTP/1.1 {status_int} {reason}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers]
    head += [f"{REQUEST_ID_HEADER}: {request_id}", f"Content-Length: {len(body)}", "", ""]
    util.write_nonblock(sock, "\r\n".join(head).encode("latin-1") + body)


class ProblemSyncWorker(SyncWorker):
    """The sync worker, answering its own errors as problems (see the module)."""

    def init_process(self) -> None:
        from app.config import load_settings

        behind_https = load_settings().BEHIND_HTTPS  # validated already, in the master
        self._problem_writer = functools.partial(
            write_problem, headers=problem_headers(behind_https=behind_https)
        )
        super().init_process()  # runs the worker loop: last

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        html_writer = util.write_error
        util.write_error = self._problem_writer
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            util.write_error = html_writer
