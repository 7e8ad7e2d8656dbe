"""No character list query needs a sequential scan of the characters table (PostgreSQL plans).

On 20,000 rows a sequential scan is sometimes the planner's honest best choice; on a million it
is a disaster. So the plans are taken with ``enable_seqscan = off``, which makes PostgreSQL use
an index whenever one can serve the query: a "Seq Scan" left in the plan means no index can.
The figures at a million rows are in bench/bench_scale.py.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from tests.conftest import truncate_all
from tests.support.factories import user_row
from tests.support.sql import driver_params

pytestmark = [pytest.mark.postgres_only, pytest.mark.shared_data]

SORTS = ("-created_at", "created_at", "name", "-name", "updated_at", "-updated_at")
QUERIES = [
    {"scope": scope, "sort": sort, "q": q}
    for scope in ("mine", "public")
    for sort in SORTS
    for q in (None, "quinzor", "an")
]


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.fixture(scope="module")
def populated(app):
    """20,000 characters over 200 users, half public, then ANALYZE."""
    from app.characters.models import Character
    from app.extensions import db
    from app.users.models import User

    rng = random.Random(3)
    syllables = ["al", "an", "bar", "cor", "el", "fin", "mor", "quin", "ra", "tor", "zor"]
    now = datetime.now(UTC)
    with app.app_context():
        users = [user_row(f"plan{i}", now) for i in range(200)]
        db.session.execute(insert(User), users)
        rows = []
        for user in users:
            for _ in range(100):
                created = now - timedelta(seconds=rng.randint(0, 10**7))
                name = "".join(rng.choice(syllables) for _ in range(3)).title()
                rows.append(
                    {
                        "id": uuid.uuid4(), "owner_id": user["id"], "name": name,
                        "attributes": {}, "backstory": "", "is_public": rng.random() < 0.5,
                        "created_at": created, "updated_at": created, "row_version": 1,
                    }
                )  # fmt: skip
        db.session.execute(insert(Character), rows)
        db.session.commit()
        db.session.execute(text("ANALYZE characters"))
        db.session.commit()
        viewer = db.session.get(User, users[0]["id"])
    yield viewer
    truncate_all(app)


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: json.dumps(q))
def test_list_queries_use_indexes(app, populated, query):
    from app.characters import views
    from app.characters.models import Character
    from app.characters.service import list_statement
    from app.common.pagination import _Derived, capped_count, page_with_count
    from app.extensions import db

    args = {k: v for k, v in query.items() if v is not None}
    with app.app_context():
        viewer = db.session.merge(populated)
        unsearched, values, search = list_statement(viewer=viewer, query=args)
        derived = _Derived(unsearched, views.with_owners, Character.id, search)
        statement = derived.statement
        keys = statement.with_only_columns(Character.id).limit(20).offset(9000)
        candidates = [  # what paginate() sends: shallow pages, the count, deep pages' keys
            page_with_count(statement, 20, 200, views.with_owners),
            capped_count(statement),
            views.with_owners(statement).where(Character.id.in_(keys.scalar_subquery())),
        ]
        if search:  # and a search's pages, walked or with their matches found once
            candidates += [derived.walked, derived.searched]
        for candidate in candidates:
            compiled = candidate.compile(dialect=db.engine.dialect)
            params = driver_params(
                compiled,
                {**values, "cf_page_limit": 20, "cf_page_offset": 200, "cf_walk_limit": 1000},
            )
            cursor = db.session.connection().connection.cursor()
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN (FORMAT JSON) {compiled.string}", params)
            plan = cursor.fetchone()[0][0]["Plan"]
            cursor.close()
            scans = [
                node["Node Type"]
                for node in _nodes(plan)
                if node.get("Relation Name") == "characters"
            ]
            assert scans, plan
            assert "Seq Scan" not in scans, (query, json.dumps(plan, indent=1)[:3000])


def test_large_lists_estimate_their_total_and_cap_their_depth(app, client, populated):
    from tests.support.factories import make_account, make_admin

    viewer = make_account(client)
    response = client.get("/api/v1/characters?scope=public", headers=viewer.auth)
    assert response.status_code == 200
    meta = json.loads(response.headers["X-Pagination"])
    assert meta["total_exact"] is False
    assert 5_000 < meta["total"] < 15_000  # the planner's estimate of ~10,000 public rows
    assert meta["total_pages"] == (meta["total"] - 1) // 20 + 1
    assert meta["last_page"] == min(meta["total_pages"], 500)  # served 10,000 items deep
    last = meta["last_page"]
    parts = [part.split("; ") for part in response.headers["Link"].split(", ")]
    links = {rel: url for url, rel in parts}
    assert links['rel="last"'].endswith(f"page={last}>")
    deepest = client.get(f"/api/v1/characters?scope=public&page={last}", headers=viewer.auth)
    assert deepest.status_code == 200 and deepest.get_json()
    # deeper: 422 for a list that holds more than 10,000 items (all 20,000, for an admin)
    admin = make_admin(app, client)
    too_deep = client.get("/api/v1/characters?scope=all&page=501", headers=admin.auth)
    assert too_deep.status_code == 422
    assert too_deep.get_json()["errors"]["query"]["page"]
    # while a list estimated that large that holds fewer is past its end: the public half
    public = len(_public_ids(app, "", "id"))
    assert public <= 10_000  # 9,930 of the fixture's seeded 20,000
    beyond = client.get("/api/v1/characters?scope=public&page=501", headers=viewer.auth)
    assert beyond.status_code == 200 and beyond.get_json() == []
    assert json.loads(beyond.headers["X-Pagination"])["total"] == public
    small = client.get("/api/v1/characters", headers=viewer.auth)  # own list: exact
    assert json.loads(small.headers["X-Pagination"]) == {"total": 0, "total_pages": 0}


def _pagination(response) -> dict:
    assert response.status_code == 200, response.get_json()
    return json.loads(response.headers["X-Pagination"])


def _public_matches(app, fragment: str) -> int:
    return len(_public_ids(app, fragment, "id"))


def test_searches_expected_to_match_many_are_estimated_not_counted(app, client, populated):
    """A common fragment: its matches are not counted (that would visit each one), the page
    comes with one row more to tell whether another follows, and the total is the estimate."""
    from tests.support.factories import make_account
    from tests.support.sql import statements

    viewer = make_account(client)
    matches = _public_matches(app, "an")
    assert matches > 2_000  # "an" is in about a quarter of the names
    url = "/api/v1/characters?scope=public&q=an"
    with statements(app) as sent:
        first = client.get(url, headers=viewer.auth)
    meta = _pagination(first)
    assert not [sql for sql in sent if "count(" in sql.lower()], sent
    assert meta["total_exact"] is False and meta["total"] > 1_000
    assert meta["next_page"] == 2 and meta["last_page"] == meta["total_pages"]
    items = first.get_json()
    assert len(items) == 20 and all("an" in item["name"].lower() for item in items)
    stamps = [item["created_at"] for item in items]
    assert stamps == sorted(stamps, reverse=True)  # still newest first
    second = client.get(f"{url}&page=2", headers=viewer.auth).get_json()
    assert len(second) == 20 and not {i["id"] for i in second} & {i["id"] for i in items}
    assert second[0]["created_at"] <= stamps[-1]

    last_page = (matches - 1) // 20 + 1  # the true last page: its total is exact after all
    last = client.get(f"{url}&page={last_page}", headers=viewer.auth)
    assert len(last.get_json()) == matches - (last_page - 1) * 20
    meta = _pagination(last)
    assert meta["total"] == matches and "total_exact" not in meta and "next_page" not in meta

    past = client.get(f"{url}&page={last_page + 1}", headers=viewer.auth)
    assert past.get_json() == [] and _pagination(past)["total"] > 1_000  # counted, estimated


@pytest.mark.parametrize(
    ("query", "walked"),
    [
        ("scope=public", True),
        ("scope=all", False),  # no index has this list's order: no walk down it
        ("scope=public&template_id={template}", False),  # the walk would visit every row
    ],
)
def test_a_common_search_walks_the_list_only_where_an_index_serves_it(
    app, client, populated, query, walked
):
    from tests.support.factories import create_template, make_admin
    from tests.support.sql import statements

    admin = make_admin(app, client)
    template = create_template(client, admin)["id"]
    by_template = "template_id" in query
    if by_template:  # every public character made from it: "an" is then expected > 500 times
        _set_template(app, template)
    try:
        url = f"/api/v1/characters?{query.format(template=template)}&q=an"
        with statements(app) as sent:
            response = client.get(url, headers=admin.auth)
    finally:
        if by_template:
            _set_template(app, None)
    assert response.status_code == 200
    assert "cf_matches" not in " ".join(sent)  # not counted: many are expected
    assert any("cf_walk" in sql for sql in sent) is walked
    if query == "scope=all":
        meta = _pagination(response)
        assert meta["total_exact"] is False and meta["next_page"] == 2
        assert all("an" in item["name"].lower() for item in response.get_json())


def _set_template(app, template_id: str | None) -> None:
    from app.extensions import db

    with app.app_context():
        db.session.execute(
            text("UPDATE characters SET template_id = :t WHERE is_public"), {"t": template_id}
        )
        db.session.commit()
    _settle(app)


def _settle(app) -> None:
    """What autovacuum would do after a test's mass update: fresh statistics, and the GIN
    indexes' pending lists (entries not yet merged, which the planner counts in their cost)
    merged, so that later tests see the plans a settled table gets."""
    from app.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE characters"
        )


def test_searches_expected_to_match_few_are_counted_exactly(app, client, populated):
    from tests.support.factories import make_account

    viewer = make_account(client)
    matches = _public_matches(app, "quinzor")
    assert 20 < matches < 1_000
    response = client.get("/api/v1/characters?scope=public&q=QuinZor", headers=viewer.auth)
    meta = _pagination(response)
    assert meta["total"] == matches and "total_exact" not in meta
    assert all("quinzor" in item["name"].lower() for item in response.get_json())


NAMES = [
    "Zyx%Qa_Bc", "ÆLFWYN Þorn", "Ælfwyn þorn", "Zyx\\Wal", "ZYXW", "aZyXwB", "İzyxo", "Zyxoß",
]  # fmt: skip


@pytest.mark.parametrize(
    "fragment",
    ["þ", "ß", "zy", "%q", "\\w", "zyx", "ZYXW", "zyxw", "x%qa", "qa_b", "%qa_", "x\\wa",
     "ælfwyn", "ÆLFWYN", "wyn þo", "İzyx", "izyx", "\u0131zyx", "zyxoß", "zyxoss", "zyxwzyxwzyxw"],
)  # fmt: skip
def test_the_index_of_name_pieces_misses_no_match(app, client, populated, fragment):
    """A public search of any length but three looks for its candidates by the name's pieces
    (migration c6d1e7a4f203): it finds exactly what the LIKE alone finds, whatever the case,
    the wildcards or the letters."""
    from app.characters.models import Character
    from app.common.pagination import contains_pattern
    from app.extensions import db
    from tests.support.factories import make_account
    from tests.support.sql import statements

    viewer = make_account(client)
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in NAMES]
    rows = [
        {"id": i, "owner_id": populated.id, "name": name, "attributes": {}, "backstory": "",
         "is_public": True, "created_at": now, "updated_at": now, "row_version": 1}
        for i, name in zip(ids, NAMES, strict=True)
    ]  # fmt: skip
    with app.app_context():
        db.session.execute(insert(Character), rows)
        db.session.commit()
        expected = {
            str(row[0])
            for row in db.session.execute(
                # the text folded by the database's lower(), as the names are: fold_text must agree
                text("SELECT id FROM characters WHERE is_public AND lower(name) LIKE lower(:p)"),
                {"p": contains_pattern(fragment)},
            )
        }
    try:
        with statements(app) as sent:
            response = client.get(
                "/api/v1/characters",
                query_string={"scope": "public", "q": fragment, "page_size": 100},
                headers=viewer.auth,
            )
        found = {item["id"] for item in response.get_json()}
        assert found == expected and _pagination(response)["total"] == len(expected)
        searched = [sql for sql in sent if "cf_matches" in sql]
        assert len(searched) == 1  # few expected: the matches are looked for in an index
        assert ("cf_name_pieces" in searched[0]) is (len(fragment.lower()) != 3)
    finally:
        with app.app_context():
            db.session.execute(text("DELETE FROM characters WHERE id = ANY(:ids)"), {"ids": ids})
            db.session.commit()


def test_name_pieces_are_every_one_two_and_four_letters_once(app, populated):
    from app.characters.models import search_pieces
    from app.extensions import db

    with app.app_context():
        pieces = db.session.execute(
            text("SELECT cf_name_pieces('abcab'), cf_name_pieces('ab'), cf_name_pieces('')")
        ).one()
    assert sorted(pieces[0]) == sorted(["a", "b", "c", "ab", "bc", "ca", "abca", "bcab"])
    assert sorted(pieces[1]) == ["a", "ab", "b"]
    assert pieces[2] == []
    # what a search looks up: the text itself, nothing for three letters, or its 4-letter pieces
    assert search_pieces("x") == ["x"] and search_pieces("xq") == ["xq"]
    assert search_pieces("abc") is None and search_pieces("") is None
    assert search_pieces("abcabc") == ["abca", "bcab", "cabc"]


def test_own_three_letter_and_admin_searches_do_not_use_name_pieces(app, client, populated):
    """Only public names have the index (a filter of every own name by its pieces would cost
    more than it saves), and a three-letter text is left to the trigram index."""
    from tests.support.factories import make_admin
    from tests.support.sql import statements

    admin = make_admin(app, client)
    for query in ("q=quinzor", "scope=public&q=qui", "scope=all&q=quinzor"):
        with statements(app) as sent:
            assert client.get(f"/api/v1/characters?{query}", headers=admin.auth).status_code == 200
        assert sent and not [sql for sql in sent if "cf_name_pieces" in sql], query
    with statements(app) as sent:  # and the public one of four letters does
        response = client.get("/api/v1/characters?scope=public&q=quinzor", headers=admin.auth)
    assert response.status_code == 200
    assert [sql for sql in sent if "cf_name_pieces" in sql]


def _public_ids(app, fragment: str, order: str) -> list[str]:
    from app.extensions import db

    with app.app_context():
        return [
            str(row[0])
            for row in db.session.execute(
                text(
                    "SELECT id FROM characters WHERE is_public AND lower(name) LIKE :p "
                    f"ORDER BY {order}"
                ),
                {"p": f"%{fragment}%"},
            )
        ]


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("-created_at", "created_at DESC, id DESC"),
        ("name", "lower(name), id"),
        ("-updated_at", "updated_at DESC, id DESC"),
    ],
)
def test_a_rare_search_finds_its_matches_once_for_its_page_and_count(
    app, client, populated, sort, order
):
    """Few expected matches: one statement after the estimate, which looks for the matches
    once for the page and its count (not once for each: at a million rows, a walk through the
    trigram index each), in the index of public names' pieces, and every page is the right
    slice."""
    from app.extensions import db
    from tests.support.factories import make_account
    from tests.support.sql import statements

    viewer = make_account(client)
    expected = _public_ids(app, "quinzor", order)
    assert 40 < len(expected) < 500  # more than two pages, counted exactly
    url = f"/api/v1/characters?scope=public&q=quinzor&sort={sort}&page_size=20"
    with statements(app) as sent:
        first = client.get(url, headers=viewer.auth)
    assert len(sent) == 2 and "EXPLAIN" in sent[0] and "cf_matches" in sent[1], sent
    with app.app_context():  # (on 20,000 rows a sequential scan may be cheaper: see the top)
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = db.session.connection().exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {sent[1]}",
            {
                "name_pattern": "%quinzor%",
                "name_pieces": ["inzo", "nzor", "quin", "uinz"],
                "param_1": 1001,
                "cf_page_limit": 20,
                "cf_page_offset": 0,
            },
        )
        nodes = list(_nodes(plan.scalar_one()[0]["Plan"]))
    searches = [  # what looks for matches: every scan of characters but the page's own rows
        node
        for node in nodes
        if node.get("Relation Name") == "characters" and node.get("Index Name") != "pk_characters"
    ]
    assert len(searches) == 1, json.dumps(nodes, indent=1)[:3000]
    used = [node["Index Name"] for node in _nodes(searches[0]) if "Index Name" in node]
    assert used == ["ix_characters_public_name_pieces"], searches[0]

    seen: list[str] = []
    pages = (len(expected) - 1) // 20 + 1
    for number in range(1, pages + 2):  # every page, and one past the last
        response = first if number == 1 else client.get(f"{url}&page={number}", headers=viewer.auth)
        meta = _pagination(response)
        assert meta["total"] == len(expected) and "total_exact" not in meta
        assert meta["total_pages"] == pages
        seen += [item["id"] for item in response.get_json()]
    assert seen == expected


def test_public_order_indexes_carry_the_name_and_names_have_fine_statistics(app, populated):
    """What lets a common fragment's search walk an index only (migration 8e4f1a2b6c90), and a
    rare one's walk only public names (migration bf2a392fa611)."""
    from app.extensions import db

    with app.app_context():
        definitions = dict(
            db.session.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'characters'")
            ).all()
        )
        targets = dict(
            db.session.execute(
                text(
                    "SELECT a.attrelid::regclass::text, a.attstattarget FROM pg_attribute a "
                    "JOIN pg_index i ON i.indexrelid = a.attrelid "
                    "WHERE i.indrelid = 'characters'::regclass AND a.attstattarget > 0"
                )
            ).all()
        )
    for name in ("ix_characters_public_created", "ix_characters_public_updated"):
        assert definitions[name].endswith("INCLUDE (name)"), definitions[name]
    pieces = definitions["ix_characters_public_name_pieces"]
    assert "gin (cf_name_pieces(lower((name)::text)))" in pieces, pieces
    assert pieces.endswith("WHERE (is_public IS TRUE)"), pieces
    assert targets == {
        "ix_characters_name_trgm": 1000,
        "ix_characters_public_name_trgm": 1000,
        "ix_characters_public_lower_name": 1000,
    }
    assert definitions["ix_characters_public_name_trgm"].endswith("WHERE (is_public IS TRUE)")


def test_a_search_estimate_carries_the_session_check(app, client, populated):
    """The EXPLAIN is the search's first statement, so the revocation check rides on it."""
    from tests.support.factories import make_account
    from tests.support.sql import statements

    viewer = make_account(client)
    url = "/api/v1/characters?scope=public&q=an"
    with statements(app) as sent:
        assert client.get(url, headers=viewer.auth).status_code == 200
    assert "cf_assert_live_session" in sent[0] and "EXPLAIN" in sent[0]
    assert client.post("/api/v1/auth/logout", headers=viewer.auth).status_code == 204
    refused = client.get(url, headers=viewer.auth)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"


def test_a_search_the_planner_overestimates_walks_no_further_than_its_bound(app, client, populated):
    """The estimate comes from a sample, and can be stale: here the statistics say 1,500 names
    contain "qqx" (the planner expects ~750 of them public: > 500), but only the 30 oldest
    public names do. With a page of one,
    the walk may look at (0 + 1 + 1) x 1,000 entries of the ~10,000 public ones: it finds no
    match there, so the search is counted instead, exactly. (Unbounded, the walk would have
    gone on to the oldest names and answered with the estimate.)"""
    from app.common.pagination import SEARCH_WALK_FACTOR
    from app.extensions import db
    from tests.support.factories import make_account
    from tests.support.sql import statements

    assert SEARCH_WALK_FACTOR == 1000  # what the numbers above assume
    viewer = make_account(client)
    with app.app_context():
        run = db.session.execute
        run(text("ALTER TABLE characters SET (autovacuum_enabled = off)"))  # keep them stale
        public = [
            row[0]
            for row in run(
                text("SELECT id FROM characters WHERE is_public ORDER BY created_at, id")
            )
        ]
        names = dict(
            run(
                text("SELECT id, name FROM characters WHERE id = ANY(:ids)"),
                {"ids": public[:30] + public[-1500:]},
            ).all()
        )
        rename = text("UPDATE characters SET name = name || 'qqx' WHERE id = ANY(:ids)")
        restore = text("UPDATE characters SET name = :name WHERE id = :id")
        run(rename, {"ids": public[-1500:]})  # the newest 1,500, while ANALYZE looks
        db.session.commit()
        run(text("ANALYZE characters"))
        db.session.commit()
        for character_id in public[-1500:]:
            run(restore, {"id": character_id, "name": names[character_id]})
        run(rename, {"ids": public[:30]})  # and now only the oldest 30
        db.session.commit()
    try:
        url = "/api/v1/characters?scope=public&q=QQX&page_size=1"
        with statements(app) as sent:
            response = client.get(url, headers=viewer.auth)
        meta = _pagination(response)
        assert any("cf_walk" in sql for sql in sent) and any("cf_matches" in sql for sql in sent)
        assert meta["total"] == 30 and "total_exact" not in meta
        assert [item["id"] for item in response.get_json()] == [str(public[29])]  # the newest
    finally:
        with app.app_context():
            for character_id in public[:30]:
                db.session.execute(restore, {"id": character_id, "name": names[character_id]})
            db.session.execute(text("ALTER TABLE characters RESET (autovacuum_enabled)"))
            db.session.commit()
        _settle(app)


@pytest.mark.parametrize("sort", SORTS)
def test_own_lists_have_one_plan_for_every_owner_on_the_owners_index(app, populated, sort):
    """One's own list is sent prepared, and its connections use the generic plan of a prepared
    statement (app.common.prepared): that one plan, made without the owner's id, the LIMIT or
    the OFFSET, must walk the owner's index in the list's order, without sorting the rows."""
    from app.characters import views
    from app.characters.models import Character
    from app.characters.service import _prepared_name, list_statement
    from app.common.pagination import _prepared
    from app.common.prepared import OPTION, _rewritten
    from app.extensions import db

    query = {"scope": "mine", "sort": sort}
    with app.app_context():
        viewer = db.session.merge(populated)
        statement, values, _search = list_statement(viewer=viewer, query=query)
        name = _prepared_name(query, values)
        derived = _prepared(statement, views.with_owners, Character.id, None, name)
        # shallow pages with their count, the count alone, deep pages by their keys
        for candidate, sorts_rows in (
            (derived.counted, False),
            (derived.capped, False),
            (derived.keyed, True),
        ):
            assert candidate.get_execution_options()[OPTION].startswith(f"{name}_")
            compiled = candidate.compile(dialect=db.engine.dialect)
            body, execute = _rewritten("cf_plan_test", compiled.string)
            params = driver_params(compiled, {**values, "cf_page_limit": 20, "cf_page_offset": 40})
            cursor = db.session.connection().connection.cursor()
            cursor.execute("SHOW plan_cache_mode")
            assert cursor.fetchone()[0] == "force_generic_plan"  # set for every connection
            cursor.execute(f"PREPARE cf_plan_test AS {body}")
            cursor.execute(f"EXPLAIN (FORMAT JSON) {execute}", params)
            plan = cursor.fetchone()[0][0]["Plan"]
            cursor.execute("DEALLOCATE cf_plan_test")
            cursor.close()
            shown = json.dumps(plan, indent=1)[:3000]
            scans = [node for node in _nodes(plan) if node.get("Relation Name") == "characters"]
            assert scans, shown
            for scan in scans:
                if scan.get("Index Name") == "pk_characters":  # a deep page's rows, by key
                    continue
                assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), shown
                assert scan["Index Name"].startswith("ix_characters_owner_"), shown
                assert "$1" in scan["Index Cond"], shown  # the generic plan, for any owner
            # the rows come in the index's order; only a deep page sorts its own 20 keys' rows
            assert sorts_rows or not [n for n in _nodes(plan) if n["Node Type"] == "Sort"], shown
