"""Small factories that build data through the API (or the service layer for admins)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@dataclass
class Account:
    id: str
    email: str
    username: str
    password: str
    access: str
    refresh: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}{next(_counter)}_{uuid.uuid4().hex[:6]}"


def register(client: FlaskClient, environ_base: dict[str, str] | None = None, **fields: Any) -> Any:
    username = fields.pop("username", unique_name())
    body = {
        "email": fields.pop("email", f"{username}@example.com"),
        "username": username,
        "password": fields.pop("password", PASSWORD),
        **fields,
    }
    return client.post("/api/v1/auth/register", json=body, environ_base=environ_base or {})


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def make_account(client: FlaskClient, **fields: Any) -> Account:
    password = fields.get("password", PASSWORD)
    response = register(client, **fields)
    assert response.status_code == 201, response.get_json()
    user = response.get_json()
    tokens = login(client, user["email"], password).get_json()
    return Account(
        id=user["id"],
        email=user["email"],
        username=user["username"],
        password=password,
        access=tokens["access_token"],
        refresh=tokens["refresh_token"],
    )


def make_admin(app: Flask, client: FlaskClient) -> Account:
    from app.users import service

    username = unique_name("admin")
    with app.app_context():
        service.create_user(
            email=f"{username}@example.com", username=username, password=PASSWORD, role="admin"
        )
    tokens = login(client, f"{username}@example.com").get_json()
    user = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).get_json()
    return Account(
        id=user["id"],
        email=user["email"],
        username=username,
        password=PASSWORD,
        access=tokens["access_token"],
        refresh=tokens["refresh_token"],
    )


SIMPLE_DEFINITION: dict[str, Any] = {
    "names": {"basic": {"parts": [["Al", "Bo", "Cy"], ["ric", "na", "dan"]]}},
    "tables": {"traits": ["brave", "greedy", "curious", "pious", "reckless", "honest"]},
    "fields": [
        {"key": "name", "type": "name", "generator": "basic"},
        {"key": "klass", "type": "choice", "options": ["Fighter", "Wizard", "Rogue"]},
        {"key": "str", "type": "integer", "dice": "4d6kh3"},
        {
            "key": "hit_points",
            "type": "integer",
            "dice": {
                "switch": "klass",
                "cases": {"Fighter": "1d10", "Wizard": "1d6"},
                "default": "1d8",
            },
        },
        {"key": "traits", "type": "pick", "table": "traits", "count": 2},
        {
            "key": "spells",
            "type": "pick",
            "when": "klass == 'Wizard'",
            "count": 2,
            "options": ["Shield", "Sleep", "Light"],
        },
        {"key": "str_mod", "type": "derived", "expr": "floor((str - 10) / 2)"},
        {"key": "left_handed", "type": "boolean", "chance": [1, 10]},
        {"key": "motto", "type": "text", "default": "", "max_length": 50},
    ],
}


def create_template(client: FlaskClient, account: Account, **fields: Any) -> Any:
    body = {"name": fields.pop("name", unique_name("Template ")), "definition": SIMPLE_DEFINITION}
    body.update(fields)
    response = client.post("/api/v1/templates", json=body, headers=account.auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def picking_definition(fields: int, texts: int = 0) -> dict[str, Any]:
    """A definition well within 64 KiB whose characters are large: ``fields`` pick fields that
    each take all 1,000 options of one shared table (48,000 bytes of JSON per field), and
    ``texts`` text fields (empty by default, up to 10,000 characters each when edited)."""
    table = [f"{index:04d}{'x' * 41}" for index in range(1000)]
    picks = [
        {"key": f"p{index}", "type": "pick", "table": "t", "count": 1000} for index in range(fields)
    ]
    notes = [{"key": f"t{index}", "type": "text", "default": ""} for index in range(texts)]
    return {"tables": {"t": table}, "fields": picks + notes}


def user_row(username: str, now: datetime) -> dict[str, Any]:
    """A ``users`` row for a bulk insert past the API (lists of thousands of characters): an
    account that cannot sign in (no password hash matches)."""
    return {
        "id": uuid.uuid4(), "email": f"{username}@example.com", "username": username,
        "username_key": username, "password_hash": "x", "display_name": username, "bio": "",
        "role": "user", "is_active": True, "created_at": now, "updated_at": now,
        "row_version": 1,
    }  # fmt: skip
