"""The If-Match check is only the fast path: the write itself is guarded by the database."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tests.support.factories import create_template


def test_a_stale_write_is_refused_by_the_database(app, client, alice):
    from app.character_templates.models import Template
    from app.extensions import db

    created = create_template(client, alice)
    with app.app_context(), Session(db.engine) as other:
        stale = other.get(Template, uuid.UUID(created["id"]))  # reads row version N
        # meanwhile another request writes version N+1 (its own connection and session)
        tag = client.get(f"/api/v1/templates/{created['id']}", headers=alice.auth).headers["ETag"]
        response = client.patch(
            f"/api/v1/templates/{created['id']}",
            json={"name": "First writer"},
            headers={**alice.auth, "If-Match": tag},
        )
        assert response.status_code == 200
        stale.name = "Second writer"
        with pytest.raises(StaleDataError):
            other.commit()
    current = client.get(f"/api/v1/templates/{created['id']}", headers=alice.auth).get_json()
    assert current["name"] == "First writer"
