"""The shared pagination helper: X-Pagination and Link headers."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest


def links(response) -> dict[str, dict]:
    result = {}
    for part in response.headers["Link"].split(", "):
        url, rel = part.split("; ")
        parsed = urlparse(url.strip("<>"))
        result[rel.split('"')[1]] = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    return result


def test_middle_page(probe):
    response = probe.get("/api/v1/_probe/items?page=2&page_size=20&sort=-name&q=x")
    assert response.status_code == 200
    assert response.get_json() == list(range(20, 40))
    assert json.loads(response.headers["X-Pagination"]) == {
        "total": 45,
        "total_pages": 3,
        "first_page": 1,
        "last_page": 3,
        "page": 2,
        "previous_page": 1,
        "next_page": 3,
    }
    rels = links(response)
    assert set(rels) == {"first", "last", "prev", "next"}
    assert rels["next"] == {"page": "3", "page_size": "20", "sort": "-name", "q": "x"}
    assert rels["first"]["page"] == "1"
    assert rels["last"]["page"] == "3"


def test_links_keep_the_query_as_it_was_with_page_in_its_place(probe):
    response = probe.get("/api/v1/_probe/items?q=a%26b+%C3%A9&page=2&page_size=20&sort=-name")
    assert response.status_code == 200
    urls = {
        rel.split('"')[1]: url.strip("<>")
        for url, rel in (part.split("; ") for part in response.headers["Link"].split(", "))
    }
    query = "q=a%26b+%C3%A9&page={}&page_size=20&sort=-name"
    assert urls == {
        rel: f"http://localhost/api/v1/_probe/items?{query.format(number)}"
        for rel, number in {"first": 1, "last": 3, "prev": 1, "next": 3}.items()
    }
    without_page = probe.get("/api/v1/_probe/items?page_size=20&q=x")
    assert without_page.headers["Link"].startswith(
        '<http://localhost/api/v1/_probe/items?page_size=20&q=x&page=1>; rel="first"'
    )


def test_first_and_last_pages_omit_prev_and_next(probe):
    first = probe.get("/api/v1/_probe/items")
    meta = json.loads(first.headers["X-Pagination"])
    assert meta["page"] == 1 and "previous_page" not in meta and meta["next_page"] == 2
    assert set(links(first)) == {"first", "last", "next"}
    last = probe.get("/api/v1/_probe/items?page=3")
    meta = json.loads(last.headers["X-Pagination"])
    assert "next_page" not in meta and meta["previous_page"] == 2
    assert set(links(last)) == {"first", "last", "prev"}
    assert last.get_json() == list(range(40, 45))


def test_page_past_the_end_is_empty_200(probe):
    response = probe.get("/api/v1/_probe/items?page=9")
    assert response.status_code == 200
    assert response.get_json() == []
    meta = json.loads(response.headers["X-Pagination"])
    assert meta["total"] == 45 and meta["last_page"] == 3


def test_no_items_at_all(probe):
    response = probe.get("/api/v1/_probe/empty")
    assert response.get_json() == []
    assert json.loads(response.headers["X-Pagination"]) == {"total": 0, "total_pages": 0}
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "page_size=0",
        "page_size=101",
        "page_size=1.5",
        "sort=bogus",
        "sort=--name",
        # int() takes these; a query string's integer is ASCII digits only
        "page=1_0",
        "page=%2B2",
        "page=%202",
        "page=%D9%A1",  # an Arabic-Indic digit one
        "page_size=%D9%A5",
        # one value each: the first was used, the others dropped (and kept in Link)
        "page_size=1&page_size=2",
        "sort=name&sort=-name",
    ],
)
def test_bad_paging_parameters_are_422(probe, query):
    response = probe.get(f"/api/v1/_probe/items?{query}")
    assert response.status_code == 422
    assert response.get_json()["errors"]["query"]
