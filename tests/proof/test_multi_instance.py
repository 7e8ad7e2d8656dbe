"""Two instances of the service behind one (imaginary) load balancer: two gunicorn servers on
different ports, each with its own workers, sharing one PostgreSQL database, one Redis, one
``SECRET_KEY`` and database portrait storage, and nothing else (not even a portrait folder).

Every test sends its requests alternately to instance A and instance B and shows that the
state that matters lives in the shared stores, not in a process: revoked tokens, rate-limit
counters, Idempotency-Key records, row versions (``If-Match``) and portraits.
"""

from __future__ import annotations

import io
import itertools
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import create_pg_database, drop_pg_database
from tests.proof.remote import (
    API,
    CLIENT_TIMEOUT,
    RemoteAccount,
    assert_problem,
    create_character,
    sign_up,
    unique_label,
)
from tests.support.concurrency import simultaneously
from tests.support.factories import PASSWORD
from tests.support.postgres import migrate_database
from tests.support.servers import Gunicorn

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

REDIS_URL = os.environ.get("TEST_REDIS_URL")
LOGIN_LIMIT = 6


@dataclass
class Pair:
    a: Gunicorn
    b: Gunicorn
    portrait_dirs: tuple[Path, Path]

    def alternate(self) -> Iterator[str]:
        """A, B, A, B, … (base URLs)."""
        return itertools.cycle([self.a.url, self.b.url])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not REDIS_URL:
        pytest.skip("needs Redis (TEST_REDIS_URL, set by scripts/test.sh)")
    import redis

    server_url = os.environ["TEST_DATABASE_URL"]  # postgres_only: set whenever this runs
    database_url = create_pg_database(server_url, prefix="cf_multi")
    try:
        migrate_database(database_url, tmp_path_factory.mktemp("multi-migrate"))
        redis.Redis.from_url(REDIS_URL).flushdb()
        dirs = (tmp_path_factory.mktemp("portraits-a"), tmp_path_factory.mktemp("portraits-b"))
        shared = {
            "APP_ENV": "testing",
            "SECRET_KEY": "two-instances-share-this-secret-key-0123456789",
            "DATABASE_URL": database_url,
            "RATELIMIT_STORAGE_URI": REDIS_URL,
            "RATELIMIT_LOGIN": f"{LOGIN_LIMIT} per minute",
            "RATELIMIT_REGISTER": "1000 per minute",
            "PORTRAIT_STORAGE": "database",
            # behind a load balancer: the client address is the one it forwards, so each test
            # gets rate-limit buckets of its own
            "TRUSTED_PROXIES": "1",
        }
        with (
            Gunicorn({**shared, "PORTRAIT_DIR": str(dirs[0])}, workers=3) as a,
            Gunicorn({**shared, "PORTRAIT_DIR": str(dirs[1])}, workers=3) as b,
        ):
            yield Pair(a, b, dirs)
    finally:
        drop_pg_database(database_url)


# random start: a rerun within the minute never meets the buckets of the previous run
_hosts = itertools.count(random.randrange(0, 60000))


def fresh_address() -> str:
    """A client address (198.18.0.0/15, for benchmarks) that nobody else uses, so it has a
    rate-limit bucket of its own."""
    number = next(_hosts)
    return f"198.{18 + number // 65024}.{number // 254 % 256}.{number % 254 + 1}"


def account_on(pair: Pair) -> RemoteAccount:
    """Registered on A, signed in on B."""
    return sign_up(pair.a.url, pair.b.url, forwarded_for=fresh_address())


def test_logout_on_one_instance_is_refused_by_the_other(pair):
    """A login session revoked through A (``POST /auth/logout``) is revoked everywhere: B
    refuses its access token and its refresh token at once (401 with ``WWW-Authenticate``)."""
    account = account_on(pair)
    for base in (pair.a.url, pair.b.url):
        me = requests.get(f"{base}{API}/users/me", headers=account.auth, timeout=CLIENT_TIMEOUT)
        assert me.status_code == 200 and me.json()["email"] == account.email

    logout = requests.post(
        f"{pair.a.url}{API}/auth/logout", headers=account.auth, timeout=CLIENT_TIMEOUT
    )
    assert logout.status_code == 204

    for base in (pair.b.url, pair.a.url):
        me = requests.get(f"{base}{API}/users/me", headers=account.auth, timeout=CLIENT_TIMEOUT)
        assert_problem(me, 401)
        assert me.headers["WWW-Authenticate"].startswith("Bearer")
    refreshed = requests.post(
        f"{pair.b.url}{API}/auth/refresh",
        headers={"Authorization": f"Bearer {account.refresh}"},
        timeout=CLIENT_TIMEOUT,
    )
    assert_problem(refreshed, 401)


def test_login_rate_limit_is_shared_by_both_instances(pair):
    """``RATELIMIT_LOGIN=6 per minute`` on both instances, counters in the shared Redis: eight
    logins from one client address, alternating A and B, get exactly six answers and then 429
    with ``Retry-After`` from both instances (not six per instance, not six per worker)."""
    account = account_on(pair)
    address = fresh_address()
    answered: list[tuple[str, requests.Response]] = []
    for base, _ in zip(pair.alternate(), range(LOGIN_LIMIT + 2), strict=False):
        response = requests.post(
            f"{base}{API}/auth/login",
            json={"email": account.email, "password": PASSWORD},
            headers={"X-Forwarded-For": address},
            timeout=CLIENT_TIMEOUT,
        )
        answered.append((base, response))

    statuses = [response.status_code for _, response in answered]
    assert statuses == [200] * LOGIN_LIMIT + [429, 429], statuses
    limited = answered[LOGIN_LIMIT:]
    assert {base for base, _ in limited} == {pair.a.url, pair.b.url}
    for _, response in limited:
        assert_problem(response, 429)
        assert int(response.headers["Retry-After"]) > 0
    # another address is not affected
    other = requests.post(
        f"{pair.b.url}{API}/auth/login",
        json={"email": account.email, "password": PASSWORD},
        headers={"X-Forwarded-For": fresh_address()},
        timeout=CLIENT_TIMEOUT,
    )
    assert other.status_code == 200


def test_idempotency_key_used_on_one_instance_replays_on_the_other(pair):
    """``POST /characters`` with an ``Idempotency-Key`` on A (201), then the same request on B:
    B replays A's response (same status, body, ``Location`` and ``ETag``, plus
    ``Idempotent-Replayed: true``) and nothing new is created; the same key with another body
    is 422 on either instance."""
    account = account_on(pair)
    name = unique_label("Once")
    body = {"name": name, "backstory": "<p>made once</p>", "attributes": {"level": 3}}
    headers = {**account.auth, "Idempotency-Key": unique_label("key")}

    first = requests.post(
        f"{pair.a.url}{API}/characters", json=body, headers=headers, timeout=CLIENT_TIMEOUT
    )
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    replayed = requests.post(
        f"{pair.b.url}{API}/characters", json=body, headers=headers, timeout=CLIENT_TIMEOUT
    )
    assert replayed.status_code == 201, replayed.text
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == first.json()
    for header in ("Location", "ETag"):
        assert replayed.headers[header] == first.headers[header]

    for base in (pair.a.url, pair.b.url):
        mine = requests.get(
            f"{base}{API}/characters",
            params={"q": name},
            headers=account.auth,
            timeout=CLIENT_TIMEOUT,
        )
        assert mine.status_code == 200
        assert [c["id"] for c in mine.json()] == [first.json()["id"]]
    other_body = requests.post(
        f"{pair.b.url}{API}/characters",
        json={**body, "name": f"{name} again"},
        headers=headers,
        timeout=CLIENT_TIMEOUT,
    )
    assert_problem(other_body, 422)


def test_if_match_race_across_instances_has_one_winner(pair):
    """Sixteen PATCHes with the same ``If-Match``, released at the same moment and spread
    evenly over A and B (three workers each): exactly one 200, fifteen 412, and afterwards both
    instances serve the winner's version with the ETag the winner was given."""
    account = account_on(pair)
    created = create_character(pair.a.url, account, name="Contested")
    path, etag = created.headers["Location"], created.headers["ETag"]
    targets = itertools.cycle([pair.a.url, pair.b.url])
    writers = itertools.count()

    def patch(session: requests.Session) -> requests.Response:
        base, writer = next(targets), next(writers)  # both thread-safe under the GIL
        return session.patch(
            f"{base}{path}",
            json={"backstory": f"<p>writer {writer}</p>"},
            headers={**account.auth, "If-Match": etag},
            timeout=CLIENT_TIMEOUT,
        )

    responses = simultaneously(16, patch)
    assert Counter(r.status_code for r in responses) == {200: 1, 412: 15}
    by_instance = Counter(r.url.split("/api/")[0] for r in responses)
    assert by_instance == {pair.a.url: 8, pair.b.url: 8}
    for response in responses:
        if response.status_code == 412:
            assert_problem(response, 412)
    winner = next(r for r in responses if r.status_code == 200)
    for base in (pair.a.url, pair.b.url):
        current = requests.get(f"{base}{path}", headers=account.auth, timeout=CLIENT_TIMEOUT)
        assert current.headers["ETag"] == winner.headers["ETag"] != etag
        assert current.json()["backstory"] == winner.json()["backstory"]


def test_portrait_uploaded_on_one_instance_is_served_by_the_other(pair):
    """A PNG uploaded to A (multipart ``file``, ``If-Match``) is stored in the database, so B
    serves the same image and thumbnail bytes with the same ``Content-Type`` and ``ETag``; B
    also sees the character's new ETag. Neither instance wrote a file to its portrait folder."""
    account = account_on(pair)
    created = create_character(pair.a.url, account, name="Painted")
    path = created.headers["Location"]
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (180, 40, 90)).save(buffer, "PNG")

    uploaded = requests.put(
        f"{pair.a.url}{path}/portrait",
        files={"file": ("portrait.png", buffer.getvalue(), "image/png")},
        headers={**account.auth, "If-Match": created.headers["ETag"]},
        timeout=CLIENT_TIMEOUT,
    )
    assert uploaded.status_code == 200, uploaded.text
    portrait = uploaded.json()["portrait"]
    assert portrait["width"] == 300 and portrait["height"] == 200

    on_b = requests.get(f"{pair.b.url}{path}", headers=account.auth, timeout=CLIENT_TIMEOUT)
    assert on_b.headers["ETag"] == uploaded.headers["ETag"]
    assert on_b.json()["portrait"] == portrait
    for url in (portrait["url"], portrait["thumbnail_url"]):
        from_a = requests.get(f"{pair.a.url}{url}", headers=account.auth, timeout=CLIENT_TIMEOUT)
        from_b = requests.get(f"{pair.b.url}{url}", headers=account.auth, timeout=CLIENT_TIMEOUT)
        assert from_a.status_code == from_b.status_code == 200
        assert from_b.content == from_a.content and len(from_b.content) > 0
        assert from_b.headers["Content-Type"] == from_a.headers["Content-Type"]
        assert from_b.headers["Content-Type"] == portrait["content_type"]
        assert from_b.headers["ETag"] == from_a.headers["ETag"]
        with Image.open(io.BytesIO(from_b.content)) as image:
            assert max(image.size) <= (256 if "size=thumb" in url else 1024)
    assert [p for folder in pair.portrait_dirs for p in folder.rglob("*") if p.is_file()] == []
