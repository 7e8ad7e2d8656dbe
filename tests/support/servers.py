"""Real servers for tests whose behaviour depends on them: gunicorn (several workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` on a free loopback port, stdout captured."""

    def __init__(self, env: dict[str, Any], workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="cf-gunicorn-"))
        self.stdout_path = self.workdir / "stdout.log"
        self.stderr_path = self.workdir / "stderr.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
            **{k: str(v) for k, v in env.items()},
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
        }
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=self.env,
            stdout=self.stdout_path.open("wb"),
            stderr=self.stderr_path.open("wb"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.stderr_path.read_text()}")
            try:
                if requests.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start in 30 s")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(pid) for pid in out.split()]

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()


def server_env(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Settings for a gunicorn under test: the suite's database, generous rate limits."""
    return {
        "APP_ENV": "testing",
        "SECRET_KEY": "gunicorn-under-test-secret-key-0123456789abcdef",
        "DATABASE_URL": database_url,
        "RATELIMIT_REGISTER": "100000 per minute",
        "RATELIMIT_LOGIN": "100000 per minute",
        **overrides,
    }


def sign_up_over_http(base_url: str) -> dict[str, str]:
    """Register and log in a fresh user through the API; its Authorization header."""
    from tests.support.factories import PASSWORD, unique_name

    name = unique_name()
    account = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    registered = requests.post(f"{base_url}/api/v1/auth/register", json=account, timeout=10)
    assert registered.status_code == 201, registered.text
    login = requests.post(
        f"{base_url}/api/v1/auth/login",
        json={"email": account["email"], "password": PASSWORD},
        timeout=10,
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}
