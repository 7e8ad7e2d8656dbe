"""Writes that race a deletion or an edit of what they work on.

Each test reproduces, deterministically, an interleaving that concurrent requests produced
under gunicorn: the service has read a row, then another request (here: another connection,
committed) deletes or changes it, then the service writes. The answer must be a problem that
says so (404, 412, 422 or 401, never a 500 or a "duplicate"), and nothing may be left behind.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import delete, select
from sqlalchemy.orm import undefer

from tests.support.factories import create_template

CHARACTERS = "/api/v1/characters"


def _elsewhere(app, statement) -> None:
    """Run ``statement`` on another connection and commit it: another request's write."""
    from app.extensions import db

    with app.app_context(), db.engine.begin() as other:
        other.execute(statement)


def test_a_portrait_upload_whose_character_was_deleted_leaves_no_files(app, client, alice):
    from app.characters.models import Character
    from app.errors import NotFound
    from app.extensions import db
    from app.portraits.service import replace_portrait

    created = client.post(CHARACTERS, json={"name": "Gone"}, headers=alice.auth).get_json()
    character_id = uuid.UUID(created["id"])
    image = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(image, "PNG")
    image.seek(0)
    with app.app_context():
        character = db.session.get(Character, character_id)  # read by the upload...
        _elsewhere(app, delete(Character).where(Character.id == character_id))  # ...deleted
        with pytest.raises(NotFound):  # 404, as a GET would say (it used to be a 500)
            replace_portrait(character=character, upload=image)
        root = Path(app.config["PORTRAIT_DIR"])
        assert not [path for path in root.rglob(f"{character_id}-*") if path.is_file()]


def test_a_fork_of_a_template_deleted_meanwhile_is_404(app, client, alice, bob):
    from app.character_templates import service
    from app.character_templates.models import Template
    from app.errors import NotFound
    from app.extensions import db
    from app.users.models import User

    template = create_template(client, alice, is_public=True)
    template_id = uuid.UUID(template["id"])
    with app.app_context():
        viewer = db.session.get(User, uuid.UUID(bob.id))
        forked = service.get_forkable(viewer=viewer, template_id=template_id)
        _elsewhere(app, delete(Template).where(Template.id == template_id))
        with pytest.raises(NotFound):
            service.fork_template(viewer=viewer, template=forked)
        owned = select(Template.id).where(Template.owner_id == uuid.UUID(bob.id))
        assert db.session.scalars(owned).all() == []  # no half-made fork


@pytest.mark.parametrize(
    "change", [{"definition": {"fields": [{"key": "x", "type": "text"}]}}, {"name": "Renamed"}]
)
def test_an_edit_of_a_template_deleted_meanwhile_is_404(app, client, alice, change):
    from app.character_templates import service
    from app.character_templates.models import Template
    from app.errors import NotFound
    from app.extensions import db

    template_id = uuid.UUID(create_template(client, alice)["id"])
    with app.app_context():
        template = db.session.get(  # read by the edit (its definition too)...
            Template, template_id, options=[undefer(Template.definition)]
        )
        _elsewhere(app, delete(Template).where(Template.id == template_id))  # ...deleted
        with pytest.raises(NotFound):  # was a 409 "refers to something deleted", or a 412
            service.update_template(template=template, data=change)


def test_a_character_of_a_template_deleted_meanwhile_is_422_on_template_id(app, client, alice):
    from app.character_templates.models import Template
    from app.characters import service
    from app.errors import ValidationFailed
    from app.extensions import db
    from app.users.models import User

    template = create_template(client, alice)
    template_id = uuid.UUID(template["id"])
    with app.app_context():
        owner = db.session.get(User, uuid.UUID(alice.id))
        real = service._usable_template  # the check passes, then the template goes

        def usable_then_deleted(viewer, wanted):
            found = real(viewer, wanted)
            _elsewhere(app, delete(Template).where(Template.id == template_id))
            return found

        service._usable_template = usable_then_deleted
        try:
            with pytest.raises(ValidationFailed) as raised:
                service.generate_character(
                    owner=owner,
                    data={"template_id": template_id, "seed": 1, "locks": {}, "rerolls": {}},
                )
        finally:
            service._usable_template = real
    assert list(raised.value.errors["json"]) == ["template_id"]
    assert client.get(CHARACTERS, headers=alice.auth).get_json() == []


def test_a_character_of_an_account_deleted_meanwhile_is_401(app, client, alice):
    from app.characters import service
    from app.errors import Unauthorized
    from app.extensions import db
    from app.users.models import User

    with app.app_context():
        owner = db.session.get(User, uuid.UUID(alice.id))
        db.session.commit()  # the request's own reads are over
        _elsewhere(app, delete(User).where(User.id == owner.id))
        with pytest.raises(Unauthorized):
            service.create_character(owner=owner, data={"name": "Orphan"})


@pytest.mark.parametrize("retry", [True, False])
def test_an_admin_change_without_if_match_is_applied_over_a_concurrent_edit(
    app, client, alice, retry
):
    from sqlalchemy.orm.exc import StaleDataError

    from app.extensions import db
    from app.users import service
    from app.users.models import User

    user_id = uuid.UUID(alice.id)
    reads = []

    def edited_meanwhile(user: User) -> None:
        reads.append(user.row_version)
        if len(reads) == 1:  # the owner's PATCH /users/me lands between read and write
            bump = User.__table__.update().where(User.id == user_id)
            _elsewhere(app, bump.values(row_version=User.row_version + 1, display_name="Al"))

    with app.app_context():
        if retry:  # no If-Match: the change is made on the fresh row
            user = service.moderate_user(
                user_id=user_id,
                data={"is_active": False},
                precondition=edited_meanwhile,
                retry=True,
            )
            assert (user.is_active, user.display_name) == (False, "Al")
            assert reads[1] == reads[0] + 1
        else:  # an If-Match was sent: the admin acted on what they read, so 412
            with pytest.raises(StaleDataError):
                service.moderate_user(
                    user_id=user_id,
                    data={"is_active": False},
                    precondition=edited_meanwhile,
                    retry=False,
                )
            db.session.rollback()
            assert db.session.get(User, user_id).is_active is True
