"""The limiter's per-request hook is skipped only while no limit needs it (app.common.ratelimit).

Each test builds its own Flask app and Limiter: flask-limiter keeps limits on the Limiter
object, so the service's shared one must not collect these.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Blueprint, Flask
from flask_limiter import Limiter

from app.common import ratelimit


def _app(**config: str) -> tuple[Flask, Limiter]:
    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI="memory://", **config)
    limiter = Limiter(key_func=lambda: "one-client", default_limits=[], headers_enabled=False)
    bp = Blueprint("things", __name__)

    @bp.get("/things")
    def things() -> str:
        return "ok"

    @app.get("/plain")
    def plain() -> str:
        return "ok"

    @app.get("/limited")
    @limiter.limit("1 per minute")
    def limited() -> str:
        return "ok"

    app.register_blueprint(bp)
    return app, limiter


def _install(app: Flask, limiter: Limiter) -> None:
    limiter.init_app(app)
    ratelimit.install(app, limiter)


def _statuses(app: Flask, path: str, times: int = 3) -> list[int]:
    client = app.test_client()
    return [client.get(path).status_code for _ in range(times)]


def test_the_hook_is_replaced_and_idle_without_request_wide_limits():
    app, limiter = _app()
    _install(app, limiter)
    hooks = app.before_request_funcs[None]
    assert limiter._check_request_limit not in hooks
    assert [hook.__name__ for hook in hooks] == ["check_request_wide_limits"]
    assert not ratelimit.has_request_wide_limits(limiter)
    assert _statuses(app, "/plain") == [200, 200, 200]


def test_decorated_limits_still_apply():
    app, limiter = _app()
    _install(app, limiter)
    assert _statuses(app, "/limited") == [200, 429, 429]
    assert _statuses(app, "/plain") == [200, 200, 200]


@pytest.mark.parametrize(
    "setting", ["RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION"], ids=["default", "application"]
)
def test_configured_request_wide_limits_still_apply(setting):
    app, limiter = _app(**{setting: "2 per minute"})
    _install(app, limiter)
    assert ratelimit.has_request_wide_limits(limiter)
    assert _statuses(app, "/plain") == [200, 200, 429]


def test_a_blueprint_limit_added_after_start_up_applies():
    app, limiter = _app()
    _install(app, limiter)
    assert _statuses(app, "/things", 2) == [200, 200]
    limiter.limit("1 per minute")(app.blueprints["things"])
    assert ratelimit.has_request_wide_limits(limiter)
    assert _statuses(app, "/things") == [200, 429, 429]
    assert _statuses(app, "/plain") == [200, 200, 200]


def test_meta_limits_keep_the_hook_running():
    app, limiter = _app(RATELIMIT_META="5 per hour")
    _install(app, limiter)
    assert ratelimit.has_request_wide_limits(limiter)


def test_unknown_limiter_internals_keep_the_hook_running():
    """If a flask-limiter release moves its state, the hook runs on every request again."""
    assert ratelimit.has_request_wide_limits(SimpleNamespace())  # type: ignore[arg-type]
    renamed = SimpleNamespace(limit_manager=SimpleNamespace(), _meta_limits=[])
    assert ratelimit.has_request_wide_limits(renamed)  # type: ignore[arg-type]


def test_the_service_declares_no_request_wide_limits(app):
    """The service's own limiter: the hook is wrapped and idle; login and register keep
    their decorated limits (tests/auth/test_routes.py)."""
    from app.extensions import limiter

    assert not ratelimit.has_request_wide_limits(limiter)
    names = [getattr(hook, "__name__", "") for hook in app.before_request_funcs[None]]
    assert "check_request_wide_limits" in names
    assert limiter._check_request_limit not in app.before_request_funcs[None]


def test_an_ipv6_client_is_counted_by_its_64_network(app_factory):
    # a subscriber's /64 holds 2^64 addresses: one budget for all of them, not one each
    behind_proxy = app_factory(TRUSTED_PROXIES="1", RATELIMIT_LOGIN="3 per minute")
    client = behind_proxy.test_client()
    body = {"email": "nobody@example.com", "password": "not the password"}

    def login(address: str) -> int:
        headers = {"X-Forwarded-For": address}
        return client.post("/api/v1/auth/login", json=body, headers=headers).status_code

    same_network = [login(f"2001:db8:7:7::{n:x}") for n in range(1, 6)]
    assert same_network == [401, 401, 401, 429, 429]
    assert login("2001:db8:7:8::1") == 401  # the next /64 is another client
    ipv4 = [login("198.51.100.7") for _ in range(4)]
    assert ipv4 == [401, 401, 401, 429]  # an IPv4 address is still counted on its own
    assert login("198.51.100.8") == 401
    assert login("::ffff:198.51.100.7") == 429  # the same IPv4 client, mapped
