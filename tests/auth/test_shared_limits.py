"""With Redis storage, the rate limit is shared by every gunicorn worker."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.servers import Gunicorn

REDIS_URL = os.environ.get("TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL, set by scripts/test.sh)")
def test_login_limit_is_shared_by_two_workers(app, database_url):
    env = {
        # production: real Argon2id, so each login takes long enough for both workers to serve
        "APP_ENV": "production",
        "SECRET_KEY": "shared-limit-test-secret-key-0123456789abcdef",
        "DATABASE_URL": database_url,
        "RATELIMIT_LOGIN": "6 per minute",
        "RATELIMIT_STORAGE_URI": REDIS_URL,
    }
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    with Gunicorn(env, workers=2) as server:

        def attempt(_: int) -> int:
            return requests.post(
                f"{server.url}/api/v1/auth/login",
                json={"email": "nobody@example.com", "password": "whatever-it-is"},
                headers={"Connection": "close"},
                timeout=30,
            ).status_code

        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = sorted(pool.map(attempt, range(10)))
        lines = [json.loads(line) for line in server.stdout().splitlines() if line.strip()]
    pids = {line["pid"] for line in lines if line.get("path") == "/api/v1/auth/login"}
    assert len(pids) == 2, "both workers must have served logins for this test to mean anything"
    # 6 allowed in total across both workers, then 429 — not 6 per worker
    assert statuses == [401] * 6 + [429] * 4
