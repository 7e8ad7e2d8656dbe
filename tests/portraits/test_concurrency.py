"""Concurrent portrait replacement with the same If-Match: one winner, no orphans."""

from __future__ import annotations

import io
from collections import Counter

import pytest
import requests
from PIL import Image

from tests.support.concurrency import simultaneously
from tests.support.servers import Gunicorn, server_env, sign_up_over_http

pytestmark = pytest.mark.postgres_only


def png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (shade, 100, 50)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("backend", ["filesystem", "database"])
def test_concurrent_replace_has_one_winner(app, database_url, tmp_path, backend):
    env = server_env(
        database_url, PORTRAIT_STORAGE=backend, PORTRAIT_DIR=str(tmp_path / "portraits")
    )
    with Gunicorn(env, workers=6) as server:
        auth = sign_up_over_http(server.url)
        created = requests.post(
            f"{server.url}/api/v1/characters", json={"name": "Race"}, headers=auth, timeout=10
        )
        url, tag = created.headers["Location"], created.headers["ETag"]
        counter = iter(range(12))
        images = [png(shade) for shade in range(0, 240, 20)]

        def put(session: requests.Session) -> requests.Response:
            data = images[next(counter)]
            return session.put(
                f"{server.url}{url}/portrait",
                files={"file": ("p.png", data, "image/png")},
                headers={**auth, "If-Match": tag},
                timeout=30,
            )

        responses = simultaneously(12, put)
        assert Counter(r.status_code for r in responses) == {200: 1, 412: 11}
        winner = next(r for r in responses if r.status_code == 200).json()["portrait"]
        served = requests.get(f"{server.url}{winner['url']}", headers=auth, timeout=10)
        assert served.status_code == 200
        if backend == "filesystem":
            files = [p for p in (tmp_path / "portraits").rglob("*") if p.is_file()]
            assert len(files) == 2  # the winner's full image and thumbnail, nothing else
        else:
            from sqlalchemy import func, select

            from app.extensions import db
            from app.portraits.storage import PortraitBlob

            with app.app_context():
                blobs = db.session.scalar(select(func.count()).select_from(PortraitBlob))
            assert blobs == 2
