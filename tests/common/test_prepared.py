"""Server-side prepared statements for marked reads (app.common.prepared)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from app.common.prepared import prepared, to_prepare
from app.extensions import db
from tests.support.sql import run_sql, statements

BASE = "/api/v1/characters"


def test_placeholders_become_numbered_parameters():
    body, names = to_prepare(
        "SELECT %(a)s, %(b_1)s WHERE x = %(a)s AND name LIKE '%%x' AND %(weird.name)s"
    )
    assert body == "SELECT $1, $2 WHERE x = $1 AND name LIKE '%x' AND $3"
    assert names == ["a", "b_1", "weird.name"]
    assert to_prepare("SELECT 1") == ("SELECT 1", [])


def test_names_are_checked():
    with pytest.raises(ValueError, match="not a prepared statement name"):
        prepared(select(1), "no spaces; DROP TABLE users")
    assert prepared(select(1), "cf_one").get_execution_options()["cf_prepared"] == "cf_one"


@pytest.fixture
def sent(app) -> Iterator[list[str]]:
    """Every statement as it reached the server (after every hook rewrote it)."""
    with statements(app) as recorded:
        yield recorded


def prepared_names(app) -> list[set[str]]:
    """The statements each idle pooled connection has prepared, as the server tells."""
    with app.app_context():
        pool = db.engine.pool
        held = [pool.connect() for _ in range(pool.checkedin())]
        try:
            names = []
            for connection in held:
                cursor = connection.cursor()
                cursor.execute("SELECT name FROM pg_prepared_statements")
                names.append({row[0] for row in cursor.fetchall()})
                cursor.close()
                connection.rollback()
            return names
        finally:
            for connection in held:
                connection.close()


@pytest.mark.postgres_only
def test_a_read_by_id_is_prepared_once_per_connection(app, client, alice, bob, sent):
    created = client.post(BASE, json={"name": "Prep", "is_public": True}, headers=alice.auth)
    url = f"{BASE}/{created.get_json()['id']}"
    sent.clear()
    reads = [client.get(url, headers=who.auth) for who in (alice, bob, alice)]
    assert all(r.status_code == 200 and r.get_json() == created.get_json() for r in reads)
    executes = [s for s in sent if "EXECUTE cf_character_by_id(" in s]
    assert len(executes) == 3
    # the session check still travels in front of it, one round trip per read
    assert all(s.startswith("SELECT cf_assert_live_session(") for s in executes)
    assert any("cf_character_by_id" in names for names in prepared_names(app))
    assert (
        client.get(f"{BASE}/00000000-0000-0000-0000-000000000000", headers=alice.auth).status_code
        == 404
    )


@pytest.mark.postgres_only
def test_a_revoked_token_is_refused_on_a_prepared_read(client, alice):
    created = client.post(BASE, json={"name": "Prep"}, headers=alice.auth)
    url = f"{BASE}/{created.get_json()['id']}"
    assert client.get(url, headers=alice.auth).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=alice.auth).status_code == 204
    refused = client.get(url, headers=alice.auth)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.postgres_only
def test_a_new_connection_prepares_again(app, client, alice, database_url, sent):
    """A connection the server ended takes its prepared statements with it."""
    created = client.post(BASE, json={"name": "Prep"}, headers=alice.auth)
    url = f"{BASE}/{created.get_json()['id']}"
    assert client.get(url, headers=alice.auth).status_code == 200
    run_sql(  # every other backend of this database: the pool's
        database_url,
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    sent.clear()
    again = client.get(url, headers=alice.auth)
    assert again.status_code == 200 and again.get_json() == created.get_json()
    assert any("EXECUTE cf_character_by_id(" in s for s in sent)
    assert any("cf_character_by_id" in names for names in prepared_names(app))


@pytest.mark.postgres_only
def test_in_a_transaction_too_and_a_rollback_keeps_it(app, sent):
    statement = prepared(select(text("1 AS one")), "cf_test_in_transaction")
    with app.app_context():
        for _ in range(2):
            assert db.session.execute(statement).scalar() == 1  # in the session's transaction
            db.session.rollback()
    assert sent[-2:] == ["EXECUTE cf_test_in_transaction", "EXECUTE cf_test_in_transaction"]


@pytest.mark.postgres_only
def test_writes_check_the_session_with_a_prepared_statement(client, alice, sent):
    sent.clear()
    assert client.post(BASE, json={"name": "W"}, headers=alice.auth).status_code == 201
    assert any(s.startswith("EXECUTE cf_live_session_account(") for s in sent)
    assert client.post("/api/v1/auth/logout", headers=alice.auth).status_code == 204
    assert client.post(BASE, json={"name": "W"}, headers=alice.auth).status_code == 401


@pytest.mark.postgres_only
def test_one_name_for_two_statements_is_refused(app):
    with app.app_context(), db.engine.connect() as connection:
        connection.connection.dbapi_connection.autocommit = True
        try:
            one = prepared(select(text("1")), "cf_test_twice")
            assert connection.execute(one).scalar() == 1
            assert connection.execute(one).scalar() == 1
            with pytest.raises(RuntimeError, match="names two statements"):
                connection.execute(prepared(select(text("2")), "cf_test_twice"))
        finally:
            connection.connection.dbapi_connection.autocommit = False
            connection.invalidate()  # drop its prepared statements with it


@pytest.mark.postgres_only
def test_own_lists_are_prepared_and_every_other_list_is_planned_for_its_values(
    client, alice, bob, sent
):
    """Only one's own list, unsearched and unfiltered, has a plan that suits every value of
    its parameters (app.characters.service._prepared_name; its plans:
    tests/characters/test_query_plans.py)."""
    template = "00000000-0000-0000-0000-000000000001"  # a filter needs no such template
    for who, name in ((alice, "Ann"), (bob, "Bob")):
        client.post(BASE, json={"name": name, "is_public": True}, headers=who.auth)
    prepared_lists = {
        "": "EXECUTE cf_mine_created_at_desc_page(",
        "?sort=name": "EXECUTE cf_mine_name_page(",
        "?sort=-updated_at&page=3": "EXECUTE cf_mine_updated_at_desc_count(",  # empty page: counted
    }
    for query, execute in prepared_lists.items():
        for who, name in ((alice, "Ann"), (bob, "Bob"), (alice, "Ann")):
            sent.clear()
            listed = client.get(f"{BASE}{query}", headers=who.auth).get_json()
            assert [c["name"] for c in listed] == ([] if "page=3" in query else [name])
            assert sent[0].startswith("SELECT cf_assert_live_session(")  # checked as before
            assert any(execute in s for s in sent), sent
    for query in ("?scope=public", "?q=an", f"?template_id={template}", "?scope=public&q=b"):
        sent.clear()
        assert client.get(f"{BASE}{query}", headers=alice.auth).status_code == 200
        assert sent and not [s for s in sent if "EXECUTE cf_" in s], query


@pytest.mark.postgres_only
def test_deep_pages_of_an_own_list_are_prepared_and_right(app, client, alice, bob, sent):
    """From offset 500 an own list is counted first, then its page's keys are found and only
    their rows read (paginate's deferred join): both prepared, both taking each owner's values."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from app.characters.models import Character

    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = {who.id: [] for who in (alice, bob)}
    for who, count in ((alice, 530), (bob, 505)):
        for i in range(count):
            stamp = start + timedelta(minutes=i)
            rows[who.id].append(
                {
                    "id": uuid.uuid4(), "owner_id": uuid.UUID(who.id),
                    "name": f"{who.username} {i}", "attributes": {}, "backstory": "",
                    "is_public": False,
                    "created_at": stamp, "updated_at": stamp, "row_version": 1,
                }
            )  # fmt: skip
    with app.app_context():
        db.session.execute(insert(Character), rows[alice.id] + rows[bob.id])
        db.session.commit()
    for who, count in ((alice, 530), (bob, 505), (alice, 530)):
        sent.clear()
        page = client.get(f"{BASE}?page=26&page_size=20", headers=who.auth)  # offset 500
        newest_first = [row["name"] for row in reversed(rows[who.id])]
        assert [c["name"] for c in page.get_json()] == newest_first[500:520]
        meta = page.headers["X-Pagination"]
        assert f'"total": {count}' in meta and '"page": 26' in meta
        executed = " ".join(sent)
        assert "EXECUTE cf_mine_created_at_desc_count(" in executed
        assert "EXECUTE cf_mine_created_at_desc_keyed(" in executed
