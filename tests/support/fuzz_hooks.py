"""Schemathesis hooks for tests/test_fuzz.py: authenticate every request as a real user.

The provider registers a fresh user and logs in through the API itself. Fuzzed requests may log
that user out or delete it (that is legitimate behaviour under test), so the token is renewed
every few seconds with a new user.
"""

from __future__ import annotations

import os
import uuid

import requests
import schemathesis

PASSWORD = "fuzzing password 123"


@schemathesis.auth(refresh_interval=3)
class RegisteredUser:
    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        base = os.environ["FUZZ_BASE_URL"]
        name = f"fuzz_{uuid.uuid4().hex[:12]}"
        email = f"{name}@example.com"
        registered = requests.post(
            f"{base}/api/v1/auth/register",
            json={"email": email, "username": name, "password": PASSWORD},
            timeout=10,
        )
        registered.raise_for_status()
        login = requests.post(
            f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        )
        login.raise_for_status()
        return login.json()["access_token"]

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
