"""Portrait upload, serving and removal over HTTP, on both storage backends."""

from __future__ import annotations

import io
import shutil
import uuid

import pytest
from PIL import Image

from tests.support.factories import make_account

BASE = "/api/v1/characters"


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (1600, 900), **params) -> bytes:
    image = Image.new("RGB", size, (200, 80, 40))
    for x in range(0, size[0], 50):
        for y in range(0, size[1], 50):
            image.putpixel((x, y), (x % 256, y % 256, 90))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gps_jpeg() -> bytes:
    image = Image.new("RGB", (300, 200), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 0.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 0.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


@pytest.fixture(scope="module", params=["filesystem", "database"])
def backend_app(request, app, database_url, tmp_path_factory):
    from app import create_app
    from tests.conftest import base_config

    instance = tmp_path_factory.mktemp(f"portraits-{request.param}")
    application = create_app(
        {
            **base_config(database_url, instance),
            "PORTRAIT_STORAGE": request.param,
            "MAX_PORTRAIT_BYTES": str(1024 * 1024),
        }
    )
    yield application
    from app.extensions import db

    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def web(backend_app):
    from tests.conftest import truncate_all

    yield backend_app.test_client()
    truncate_all(backend_app)
    shutil.rmtree(backend_app.config["PORTRAIT_DIR"], ignore_errors=True)


@pytest.fixture
def owner(web):
    return make_account(web)


@pytest.fixture
def stranger(web):
    return make_account(web)


def new_character(web, account, public=False):
    response = web.post(BASE, json={"name": "Sitter", "is_public": public}, headers=account.auth)
    return response.get_json()["id"], response.headers["ETag"]


def upload(web, account, character_id, data, tag, filename="portrait.png", field="file"):
    return web.put(
        f"{BASE}/{character_id}/portrait",
        data={field: (io.BytesIO(data), filename)},
        headers={**account.auth, "If-Match": tag},
        content_type="multipart/form-data",
    )


def stored(backend_app) -> set[tuple[uuid.UUID, str]]:
    from app.portraits.storage import storage

    with backend_app.app_context():
        return set(storage().stored())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_upload_and_serve(web, backend_app, owner, fmt):
    character_id, tag = new_character(web, owner)
    response = upload(web, owner, character_id, image_bytes(fmt), tag, filename="x.gif")
    assert response.status_code == 200, response.get_json()
    portrait = response.get_json()["portrait"]
    assert portrait == {
        "url": f"{BASE}/{character_id}/portrait",
        "thumbnail_url": f"{BASE}/{character_id}/portrait?size=thumb",
        "width": 1024,
        "height": 576,
        "content_type": "image/webp",
    }
    assert response.headers["ETag"] != tag
    assert (
        response.headers["ETag"]
        == web.get(f"{BASE}/{character_id}", headers=owner.auth).headers["ETag"]
    )
    full = web.get(portrait["url"], headers=owner.auth)
    assert full.status_code == 200
    assert full.mimetype == "image/webp"
    assert full.headers["X-Content-Type-Options"] == "nosniff"
    assert full.headers["Cache-Control"] == "private, no-cache"
    assert Image.open(io.BytesIO(full.data)).size == (1024, 576)
    thumb = web.get(portrait["thumbnail_url"], headers=owner.auth)
    assert Image.open(io.BytesIO(thumb.data)).size == (256, 144)
    assert thumb.headers["ETag"] != full.headers["ETag"]
    cached = web.get(portrait["url"], headers={**owner.auth, "If-None-Match": full.headers["ETag"]})
    assert cached.status_code == 304 and cached.data == b""
    assert len(stored(backend_app)) == 1


def test_exif_gps_is_gone(web, owner):
    character_id, tag = new_character(web, owner)
    assert upload(web, owner, character_id, gps_jpeg(), tag).status_code == 200
    served = Image.open(
        io.BytesIO(web.get(f"{BASE}/{character_id}/portrait", headers=owner.auth).data)
    )
    exif = served.getexif()
    assert 0x8825 not in exif and 0x010F not in exif
    assert "exif" not in served.info and "icc_profile" not in served.info


def test_polyglot_comes_out_as_a_plain_image(web, owner):
    character_id, tag = new_character(web, owner)
    polyglot = image_bytes("JPEG", (200, 100)) + b"PK\x03\x04<script>alert(1)</script>" * 50
    assert upload(web, owner, character_id, polyglot, tag).status_code == 200
    served = web.get(f"{BASE}/{character_id}/portrait", headers=owner.auth).data
    assert b"<script>" not in served and b"PK\x03\x04" not in served
    Image.open(io.BytesIO(served)).verify()


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GIF89a" + b"\x00" * 100, 415),
        (b"just text, not an image", 415),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415),
        (image_bytes("BMP", (20, 20)), 415),
        (image_bytes("PNG", (300, 300))[:200], 422),
    ],
    ids=["gif", "text", "svg", "bmp", "truncated-png"],
)
def test_rejected_files_store_nothing(web, backend_app, owner, data, status):
    character_id, tag = new_character(web, owner)
    response = upload(web, owner, character_id, data, tag)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]["files"]["file"]
    assert web.get(f"{BASE}/{character_id}", headers=owner.auth).get_json()["portrait"] is None
    assert stored(backend_app) == set()


def test_more_than_40_megapixels_is_422(web, owner):
    character_id, tag = new_character(web, owner)
    huge = io.BytesIO()
    Image.new("L", (8000, 5001)).save(huge, "PNG")  # small on disk, 40.008 MP
    response = upload(web, owner, character_id, huge.getvalue(), tag)
    assert response.status_code == 422


def test_too_large_is_413_before_processing(web, backend_app, owner):
    character_id, tag = new_character(web, owner)
    big = image_bytes("PNG", (200, 200)) + b"\x00" * (1024 * 1024)
    response = upload(web, owner, character_id, big, tag)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    huge_body = b"\x00" * (3 * 1024 * 1024)  # over the limit + multipart slack: refused unread
    response = upload(web, owner, character_id, huge_body, tag)
    assert response.status_code == 413
    assert stored(backend_app) == set()


def test_bad_requests(web, owner):
    character_id, tag = new_character(web, owner)
    png = image_bytes("PNG", (50, 50))
    missing = web.put(
        f"{BASE}/{character_id}/portrait",
        data={"file": (io.BytesIO(png), "p.png")},
        headers=owner.auth,
        content_type="multipart/form-data",
    )
    assert missing.status_code == 428
    assert upload(web, owner, character_id, png, '"stale"').status_code == 412
    not_multipart = web.put(
        f"{BASE}/{character_id}/portrait", data=png, content_type="image/png",
        headers={**owner.auth, "If-Match": tag},
    )  # fmt: skip
    assert not_multipart.status_code == 415
    wrong_field = upload(web, owner, character_id, png, tag, field="image")
    assert wrong_field.status_code == 422
    assert web.get(f"{BASE}/{character_id}/portrait", headers=owner.auth).status_code == 404
    assert (
        web.get(f"{BASE}/{character_id}/portrait?size=huge", headers=owner.auth).status_code == 422
    )


def test_visibility(web, owner, stranger):
    png = image_bytes("PNG", (80, 60))
    private_id, tag = new_character(web, owner)
    upload(web, owner, private_id, png, tag)
    public_id, tag = new_character(web, owner, public=True)
    upload(web, owner, public_id, png, tag)
    assert web.get(f"{BASE}/{private_id}/portrait", headers=stranger.auth).status_code == 404
    public = web.get(f"{BASE}/{public_id}/portrait", headers=stranger.auth)
    assert public.status_code == 200
    assert public.headers["Cache-Control"] == "public, no-cache"
    view = web.get(f"{BASE}/{public_id}", headers=stranger.auth)
    write = upload(web, stranger, public_id, png, view.headers["ETag"])
    assert write.status_code == 403
    removal = web.delete(
        f"{BASE}/{public_id}/portrait", headers={**stranger.auth, "If-Match": view.headers["ETag"]}
    )
    assert removal.status_code == 403


def test_admins_may_replace_and_delete(web, backend_app, owner):
    from tests.support.factories import make_admin

    admin = make_admin(backend_app, web)
    character_id, tag = new_character(web, owner)
    tag = upload(web, owner, character_id, image_bytes("PNG", (40, 40)), tag).headers["ETag"]
    replaced = upload(web, admin, character_id, image_bytes("JPEG", (60, 40)), tag)
    assert replaced.status_code == 200
    removed = web.delete(
        f"{BASE}/{character_id}/portrait",
        headers={**admin.auth, "If-Match": replaced.headers["ETag"]},
    )
    assert removed.status_code == 204


def test_replace_and_delete_leave_no_orphans(web, backend_app, owner):
    character_id, tag = new_character(web, owner)
    first = upload(web, owner, character_id, image_bytes("PNG", (100, 100)), tag)
    second = upload(web, owner, character_id, image_bytes("JPEG", (120, 80)), first.headers["ETag"])
    assert second.status_code == 200
    keys = stored(backend_app)
    assert len(keys) == 1 and next(iter(keys))[0] == uuid.UUID(character_id)
    assert web.get(f"{BASE}/{character_id}/portrait", headers=owner.auth).status_code == 200
    gone = web.delete(
        f"{BASE}/{character_id}/portrait",
        headers={**owner.auth, "If-Match": second.headers["ETag"]},
    )
    assert gone.status_code == 204
    assert stored(backend_app) == set()
    assert web.get(f"{BASE}/{character_id}", headers=owner.auth).get_json()["portrait"] is None
    again = web.delete(
        f"{BASE}/{character_id}/portrait",
        headers={
            **owner.auth,
            "If-Match": web.get(f"{BASE}/{character_id}", headers=owner.auth).headers["ETag"],
        },
    )
    assert again.status_code == 404


def test_deleting_the_character_or_the_account_removes_files(web, backend_app, owner):
    first, tag = new_character(web, owner)
    tag = upload(web, owner, first, image_bytes("PNG", (30, 30)), tag).headers["ETag"]
    second, tag2 = new_character(web, owner)
    upload(web, owner, second, image_bytes("PNG", (31, 30)), tag2)
    assert len(stored(backend_app)) == 2
    assert web.delete(f"{BASE}/{first}", headers={**owner.auth, "If-Match": tag}).status_code == 204
    assert {key[0] for key in stored(backend_app)} == {uuid.UUID(second)}
    me = web.get("/api/v1/users/me", headers=owner.auth).headers["ETag"]
    assert web.delete("/api/v1/users/me", headers={**owner.auth, "If-Match": me}).status_code == 204
    assert stored(backend_app) == set()


def test_gc_removes_orphans(web, backend_app, owner):
    from app.portraits.storage import storage

    character_id, tag = new_character(web, owner)
    upload(web, owner, character_id, image_bytes("PNG", (30, 30)), tag)
    with backend_app.app_context():
        from app.extensions import db

        storage().put(uuid.UUID(character_id), "f" * 64, {"full": b"x", "thumb": b"y"})
        db.session.commit()
    assert len(stored(backend_app)) == 2
    # a fresh orphan may be an upload that has not committed yet: kept for an hour
    result = backend_app.test_cli_runner().invoke(args=["portraits", "gc"])
    assert "Removed 0 orphaned" in result.output and len(stored(backend_app)) == 2
    _age(backend_app, uuid.UUID(character_id), "f" * 64, hours=2)
    result = backend_app.test_cli_runner().invoke(args=["portraits", "gc"])
    assert "Removed 1" in result.output
    assert len(stored(backend_app)) == 1
    assert web.get(f"{BASE}/{character_id}/portrait", headers=owner.auth).status_code == 200


def _age(app, character_id: uuid.UUID, digest: str, *, hours: float) -> None:
    """Make a stored portrait look ``hours`` old (its files' times, or its blobs' rows)."""
    import os
    import time
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from app.extensions import db
    from app.portraits.storage import FilesystemStorage, PortraitBlob, storage

    with app.app_context():
        store = storage()
        if isinstance(store, FilesystemStorage):
            then = time.time() - hours * 3600
            for rendition in ("full", "thumb"):
                os.utime(store._path(character_id, digest, rendition), (then, then))
        else:
            db.session.execute(
                update(PortraitBlob)
                .where(PortraitBlob.character_id == character_id, PortraitBlob.digest == digest)
                .values(created_at=datetime.now(UTC) - timedelta(hours=hours))
            )
            db.session.commit()


def test_two_files_in_the_field_are_422(web, owner):
    character_id, tag = new_character(web, owner)
    png = image_bytes("PNG", (80, 60))
    response = web.put(
        f"{BASE}/{character_id}/portrait",
        data={"file": [(io.BytesIO(png), "a.png"), (io.BytesIO(png), "b.png")]},
        headers={**owner.auth, "If-Match": tag},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "file" in response.get_json()["errors"]["files"]
    assert web.get(f"{BASE}/{character_id}", headers=owner.auth).get_json()["portrait"] is None


def test_if_none_match_star_is_304_while_there_is_a_portrait(web, owner):
    character_id, tag = new_character(web, owner)
    star = {**owner.auth, "If-None-Match": "*"}
    assert web.get(f"{BASE}/{character_id}/portrait", headers=star).status_code == 404
    upload(web, owner, character_id, image_bytes("PNG", (80, 60)), tag)
    response = web.get(f"{BASE}/{character_id}/portrait", headers=star)
    assert response.status_code == 304
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_a_portrait_replaced_while_it_is_read_is_served_not_404(web, backend_app, owner):
    # the read has the character (its old image) in hand when the replacement commits and
    # removes the old files: it then serves the new image, as its character now says
    from app.characters.models import Character
    from app.extensions import db
    from app.portraits.service import read_portrait

    character_id, tag = new_character(web, owner)
    tag = upload(web, owner, character_id, image_bytes("PNG", (40, 30)), tag).headers["ETag"]
    with backend_app.app_context():
        character = db.session.get(Character, uuid.UUID(character_id))
        old_digest = character.portrait_digest
        db.session.commit()  # the read's own statements are over: the replacement may commit
        replaced = upload(web, owner, character_id, image_bytes("PNG", (50, 20)), tag)
        assert replaced.status_code == 200
        data = read_portrait(character=character, rendition="full")
        assert character.portrait_digest != old_digest
        assert Image.open(io.BytesIO(data)).size == (50, 20)


def test_a_cache_busting_query_parameter_is_ignored_but_a_bad_size_is_not(web, owner):
    character_id, tag = new_character(web, owner)
    upload(web, owner, character_id, image_bytes("PNG", (40, 30)), tag)
    url = f"{BASE}/{character_id}/portrait"
    assert web.get(f"{url}?v=3", headers=owner.auth).status_code == 200
    assert web.get(f"{url}?size=thumb&v=3", headers=owner.auth).status_code == 200
    assert web.get(f"{url}?size=huge", headers=owner.auth).status_code == 422
    # `v` is the one parameter taken and ignored: a typo is not the full image in silence
    mistyped = web.get(f"{url}?szie=thumb", headers=owner.auth)
    assert mistyped.status_code == 422
    assert mistyped.get_json()["errors"] == {"query": {"szie": ["Unknown field."]}}
    # a NUL is 422 in any string, an ignored one too
    assert web.get(f"{url}?v=%00", headers=owner.auth).status_code == 422


def test_multipart_that_is_broken_or_carries_other_fields(web, owner):
    character_id, tag = new_character(web, owner)
    url = f"{BASE}/{character_id}/portrait"
    headers = {**owner.auth, "If-Match": tag}
    png = image_bytes("PNG", (40, 30))
    extra = web.put(
        url,
        data={"file": (io.BytesIO(png), "p.png"), "comment": "hello"},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert extra.status_code == 422  # as an unknown JSON member would be
    assert extra.get_json()["errors"]["files"]["comment"] == ["Unknown field."]
    no_boundary = web.put(url, data=b"--x\r\n", headers=headers, content_type="multipart/form-data")
    assert no_boundary.status_code == 400
    garbage = web.put(
        url,
        data=b"not multipart at all",
        headers=headers,
        content_type="multipart/form-data; boundary=zz",
    )
    assert garbage.status_code == 400
    assert web.get(f"{BASE}/{character_id}", headers=owner.auth).get_json()["portrait"] is None
