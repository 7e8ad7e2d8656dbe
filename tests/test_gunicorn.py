"""The app under real gunicorn, over a socket: headers, problems, logs, multi-worker metrics."""

from __future__ import annotations

import http
import json
import re
from pathlib import Path

import pytest
import requests

from tests.support.servers import Gunicorn


def production_env(database_url: str, portraits: Path, **overrides: str) -> dict[str, str]:
    """Production settings for a gunicorn of these tests (its defaults, rate limits included)."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "a-production-grade-secret-key-for-the-test-server-0123",
        "DATABASE_URL": database_url,
        "PORTRAIT_DIR": str(portraits),
        **overrides,
    }


@pytest.fixture(scope="module")
def server(app, database_url, tmp_path_factory):
    env = production_env(
        database_url,
        tmp_path_factory.mktemp("portraits"),
        CORS_ORIGINS="https://app.example.com",
    )
    with Gunicorn(env, workers=2) as gunicorn:
        yield gunicorn


def test_request_over_a_socket(server):
    response = requests.get(
        f"{server.url}/health/ready", headers={"X-Request-ID": "sock-1"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["X-Request-ID"] == "sock-1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


def test_problem_over_a_socket(server):
    response = requests.get(f"{server.url}/api/v2/anything", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "about:blank" and body["request_id"] == response.headers["X-Request-ID"]


def test_two_workers_are_running(server):
    assert len(server.worker_pids()) == 2


def test_metrics_cover_every_worker(server):
    session = requests.Session()
    for _ in range(40):
        # fresh connections spread the requests over both workers
        requests.get(f"{server.url}/health/live", headers={"Connection": "close"}, timeout=10)
    counts = []
    for _ in range(6):
        text = session.get(
            f"{server.url}/metrics", headers={"Connection": "close"}, timeout=10
        ).text
        match = re.search(
            r'^http_requests_total\{endpoint="/health/live",method="GET",status="200"\} (\S+)$',
            text,
            re.MULTILINE,
        )
        assert match, text[:500]
        counts.append(float(match.group(1)))
    # Whichever worker answers the scrape, it reports the sum over both (>= 40 requests + probes)
    assert min(counts) >= 40
    assert "db_pool_size" in text


def test_stdout_is_one_json_object_per_line(server):
    requests.get(
        f"{server.url}/health/live",
        headers={"Authorization": "Bearer top-secret-token"},
        timeout=10,
    )
    lines = [line for line in server.stdout().splitlines() if line.strip()]
    assert lines
    for line in lines:
        json.loads(line)
    assert "top-secret-token" not in server.stdout()
    assert "Booting worker" in server.stderr()  # gunicorn's own messages go to stderr


def test_start_up_clears_only_old_metric_samples(app, database_url, tmp_path):
    env = production_env(database_url, tmp_path / "portraits")
    gunicorn = Gunicorn(env, workers=2)
    samples = tmp_path / "shared"  # a directory named by mistake, holding other files
    (samples / "keep" / "sub").mkdir(parents=True)
    (samples / "keep" / "sub" / "data.txt").write_text("not metrics")
    (samples / "counter_4242.db").write_bytes(b"samples of an earlier run")
    gunicorn.env["PROMETHEUS_MULTIPROC_DIR"] = str(samples)
    with gunicorn:
        assert (samples / "keep" / "sub" / "data.txt").read_text() == "not metrics"
        assert not (samples / "counter_4242.db").exists()
        requests.get(f"{gunicorn.url}/health/live", timeout=10)
        assert "http_requests_total" in requests.get(f"{gunicorn.url}/metrics", timeout=10).text


def test_memory_rate_limits_hold_across_the_workers_of_an_instance(app, database_url, tmp_path):
    # API.md's default store is memory://, and its default workers one per core: each worker
    # counting on its own let a client sign in (workers x the limit) times a minute
    from tests.support.concurrency import simultaneously

    env = production_env(
        database_url,
        tmp_path / "portraits",
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_LOGIN="4 per minute",
    )
    with Gunicorn(env, workers=3) as gunicorn:
        body = {"email": "nobody@example.com", "password": "not the password"}

        def login(session: requests.Session) -> requests.Response:
            return session.post(f"{gunicorn.url}/api/v1/auth/login", json=body, timeout=30)

        statuses = sorted(response.status_code for response in simultaneously(12, login))
        statuses += [login(requests.Session()).status_code for _ in range(3)]  # and one by one
    assert statuses.count(401) == 4, statuses
    assert statuses.count(429) == 11, statuses
    assert "count the rate limits together" in gunicorn.stderr_path.read_text()


def _raw_exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is (no client library would send such bytes) and read the
    whole answer (gunicorn closes the connection after these errors)."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/v1/characters?q=" + b"x" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET /health/live HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431),
        (b"HELLO THERE\r\n\r\n", 400),
        (b"GET /health/live HTTP/9.9\r\nHost: a\r\n\r\n", 400),
        (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n",
            501,
        ),
    ],
)
def test_gunicorns_own_errors_are_problems_too(server, request_bytes, status):
    # answered by gunicorn before the app is reached: "every 4xx and 5xx, from every layer"
    got, headers, body = _raw_exchange(server.url, request_bytes)
    assert got == status
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"] == "about:blank"
    # the status's own reason phrase (gunicorn passes "Bad Request" along with its 501)
    assert problem["title"] == http.HTTPStatus(status).phrase and problem["detail"]
    assert problem["request_id"] == headers["X-Request-ID"]
    assert b"y" * 100 not in body and b"HELLO" not in body  # the request is not echoed
    # the worker's usual error page writer is back for anything else
    assert requests.get(f"{server.url}/health/live", timeout=10).status_code == 200
