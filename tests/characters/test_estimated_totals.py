"""Lists whose total is an estimate serve every item, however wrong the estimate (PostgreSQL).

Above 1,000 matches the total is the planner's estimate (app.common.pagination), which comes
from statistics that lag behind the table: a user whose characters were all added since the
last ANALYZE is estimated at a few rows, and one who deleted many since at too many. Following
``next`` must still reach every item exactly once, and the last page's total is exact.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, text

from tests.support.factories import make_account, user_row
from tests.support.sql import driver_params

pytestmark = pytest.mark.postgres_only


def _rows(owner_id: str, count: int, prefix: str) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "id": uuid.uuid4(), "owner_id": uuid.UUID(owner_id), "name": f"{prefix}{n:05}",
            "attributes": {}, "backstory": "", "is_public": True,
            "created_at": now - timedelta(seconds=n), "updated_at": now, "row_version": 1,
        }
        for n in range(count)
    ]  # fmt: skip


@pytest.fixture
def frozen_statistics(app) -> Iterator[None]:
    """No autovacuum ANALYZE of the characters table while the test runs: its statistics stay
    as the test left them."""
    from app.extensions import db

    with app.app_context():
        db.session.execute(text("ALTER TABLE characters SET (autovacuum_enabled = false)"))
        db.session.commit()
    yield
    with app.app_context():
        db.session.execute(text("ALTER TABLE characters RESET (autovacuum_enabled)"))
        db.session.commit()


def _insert(app, rows: list[dict], *, analyze: bool = False) -> None:
    from app.characters.models import Character
    from app.extensions import db

    with app.app_context():
        if rows:
            db.session.execute(insert(Character), rows)
            db.session.commit()
        if analyze:
            db.session.execute(text("ANALYZE characters"))
            db.session.commit()


def _walk(client, account, url: str) -> tuple[list[str], dict, int]:
    """Every item's id reached by following ``next`` from page 1; the last page's
    X-Pagination; the number of pages asked for."""
    ids: list[str] = []
    page, asked = 1, 0
    while True:
        asked += 1
        assert asked < 100, "next links never end"
        response = client.get(f"{url}&page={page}", headers=account.auth)
        assert response.status_code == 200, response.get_json()
        meta = json.loads(response.headers["X-Pagination"])
        ids += [item["id"] for item in response.get_json()]
        if "next_page" not in meta:
            return ids, meta, asked
        assert 'rel="next"' in response.headers["Link"]
        page = meta["next_page"]


def _others(client, app) -> None:
    """A table of 100 other owners' characters, analysed: the statistics the tests start from."""
    from app.extensions import db
    from app.users.models import User

    now = datetime.now(UTC)
    users = [user_row(f"other{n}", now) for n in range(100)]
    with app.app_context():
        db.session.execute(insert(User), users)
        db.session.commit()
    _insert(app, [row for user in users for row in _rows(str(user["id"]), 20, "other")])
    _insert(app, [], analyze=True)


@pytest.mark.parametrize(
    "query",
    [
        "scope=mine&sort=name",
        "scope=mine&sort=-created_at",
        "scope=mine&q=grown",
        "scope=public&q=grown&sort=name",
    ],
)
def test_a_list_the_statistics_underestimate_serves_every_item(
    app, client, frozen_statistics, query
):
    _others(client, app)
    owner = make_account(client)
    _insert(app, _rows(owner.id, 1_250, "grown"))  # since the last ANALYZE
    expected = {str(row) for row in _ids_of(app, owner.id)}

    ids, last, _ = _walk(client, owner, f"/api/v1/characters?{query}&page_size=100")

    assert len(ids) == len(set(ids)) == 1_250
    assert set(ids) == expected
    assert last["total"] == 1_250 and "total_exact" not in last

    # a deep page asked for directly (not reached through the links) has its rows too
    page = client.get(f"/api/v1/characters?{query}&page_size=100&page=12", headers=owner.auth)
    assert len(page.get_json()) == 100
    meta = json.loads(page.headers["X-Pagination"])
    assert meta["next_page"] == 13 and meta["total"] >= 1_201


def test_a_list_the_statistics_overestimate_ends_at_its_last_item(app, client, frozen_statistics):
    from app.characters.models import Character
    from app.extensions import db

    _others(client, app)
    owner = make_account(client)
    rows = _rows(owner.id, 12_000, "shrunk")
    _insert(app, rows, analyze=True)
    with app.app_context():  # 10,800 go after the ANALYZE: the estimate stays near 12,000
        gone = [row["id"] for row in rows[1_200:]]
        db.session.execute(delete(Character).where(Character.id.in_(gone)))
        db.session.commit()

    url = "/api/v1/characters?scope=mine&sort=name&page_size=100"
    first = json.loads(client.get(url, headers=owner.auth).headers["X-Pagination"])
    assert first["total"] > 10_000 and first["last_page"] == 100  # the estimate, served deep
    ids, last, asked = _walk(client, owner, url)
    assert len(ids) == len(set(ids)) == 1_200 and asked == 12
    assert last["total"] == 1_200 and "total_exact" not in last

    # the estimate's last page is past the end: empty, with the exact total, so its `last`
    # link leads to the real last page
    past = client.get(f"{url}&page={first['last_page']}", headers=owner.auth)
    assert past.status_code == 200 and past.get_json() == []
    meta = json.loads(past.headers["X-Pagination"])
    assert meta == {"total": 1_200, "total_pages": 12, "first_page": 1, "last_page": 12}
    assert 'rel="last"' in past.headers["Link"] and "page=12>" in past.headers["Link"]
    # past the depth an estimated list is served to, a list this short is past its end too
    beyond = client.get(f"{url}&page=101", headers=owner.auth)
    assert beyond.status_code == 200 and beyond.get_json() == []
    assert json.loads(beyond.headers["X-Pagination"])["total"] == 1_200


def _ids_of(app, owner_id: str) -> list[uuid.UUID]:
    from sqlalchemy import select

    from app.characters.models import Character
    from app.extensions import db

    with app.app_context():
        return list(db.session.scalars(select(Character.id).where(Character.owner_id == owner_id)))


def _plan_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.parametrize("query", [{"q": "birch"}, {"template_id": "template"}])
def test_a_deep_page_the_statistics_underestimate_reads_its_keys_once(
    app, client, frozen_statistics, query
):
    """The page's keys are found once, whatever the planner expects: estimating a user's rows
    (all added since the last ANALYZE) at one, it used to run the keys' subquery again for each
    of them, thousands of times, and a deep page of such a list hit the statement timeout."""
    from app.characters import views
    from app.characters.models import Character
    from app.characters.service import list_statement
    from app.common.pagination import _Derived
    from app.extensions import db
    from app.users.models import User
    from tests.support.factories import create_template

    _others(client, app)
    owner = make_account(client)
    template = create_template(client, owner)
    rows = _rows(owner.id, 6_000, "birch")
    for row in rows:
        row["template_id"] = uuid.UUID(template["id"])
    _insert(app, rows)
    if "template_id" in query:
        query = {"template_id": uuid.UUID(template["id"])}
    with app.app_context():
        viewer = db.session.get(User, uuid.UUID(owner.id))
        statement, values, search = list_statement(
            viewer=viewer, query={"scope": "mine", "sort": "-created_at", **query}
        )
        keyed = _Derived(statement, views.with_owners, Character.id, search).keyed
        compiled = keyed.compile(dialect=db.engine.dialect)
        params = driver_params(compiled, {**values, "cf_page_limit": 21, "cf_page_offset": 3_000})
        cursor = db.session.connection().connection.cursor()
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.string}", params)
        plan = cursor.fetchone()[0][0]["Plan"]
        cursor.close()
        db.session.rollback()
    assert plan["Actual Rows"] == 21
    visited = sum(
        node["Actual Rows"] * node["Actual Loops"]
        for node in _plan_nodes(plan)
        if node.get("Relation Name") == "characters"
    )
    assert visited < 20_000, json.dumps(plan, indent=1)[:4000]
