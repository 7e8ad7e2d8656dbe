"""Settings: defaults, validation, and a clean one-line refusal to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings, setting_names

ROOT = Path(__file__).resolve().parent.parent
STRONG = "k" * 48


def settings(tmp_path, **env):
    return load_settings(env, instance_path=tmp_path)


def test_defaults(tmp_path):
    s = settings(tmp_path)
    assert s.APP_ENV == "development"
    assert f"sqlite:///{tmp_path / 'character_forge.db'}" == s.DATABASE_URL
    assert s.LOG_FORMAT == "text"
    assert (s.ACCESS_TOKEN_TTL, s.REFRESH_TOKEN_TTL) == (900, 2592000)
    assert (s.RATELIMIT_LOGIN, s.RATELIMIT_REGISTER) == ("10 per minute", "5 per minute")
    assert s.MAX_CONTENT_LENGTH == 6 * 1024 * 1024
    assert s.MAX_PORTRAIT_BYTES == 5 * 1024 * 1024
    assert s.PORTRAIT_STORAGE == "filesystem"
    assert s.METRICS_ENABLED and s.DOCS_ENABLED
    assert (os.cpu_count() or 1) == s.WEB_CONCURRENCY
    assert not s.BEHIND_HTTPS and s.TRUSTED_PROXIES == 0
    assert s.CORS_ORIGINS == ()
    assert (s.BIND, s.GUNICORN_TIMEOUT) == ("127.0.0.1:8000", 30)


@pytest.mark.parametrize("bind", ["0.0.0.0:80", "[::1]:8000", "unix:/run/forge.sock"])
def test_bind_forms_gunicorn_takes(tmp_path, bind):
    assert bind == settings(tmp_path, BIND=bind).BIND


def test_development_secret_is_random_but_shared_by_workers(tmp_path):
    first = settings(tmp_path).SECRET_KEY
    assert len(first) >= 32
    assert first == settings(tmp_path).SECRET_KEY
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


def test_json_logs_outside_development(tmp_path):
    assert settings(tmp_path, APP_ENV="testing").LOG_FORMAT == "json"
    assert settings(tmp_path, APP_ENV="production", SECRET_KEY=STRONG).LOG_FORMAT == "json"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"APP_ENV": "production"}, "SECRET_KEY"),
        ({"APP_ENV": "production", "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"APP_ENV": "production", "SECRET_KEY": "change-me"}, "SECRET_KEY"),
        ({"APP_ENV": "production", "SECRET_KEY": STRONG, "FLASK_DEBUG": "1"}, "FLASK_DEBUG"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"ACCESS_TOKEN_TTL": "abc"}, "ACCESS_TOKEN_TTL"),
        ({"REFRESH_TOKEN_TTL": "0"}, "REFRESH_TOKEN_TTL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "example.com"}, "CORS_ORIGINS"),
        ({"RATELIMIT_LOGIN": "lots"}, "RATELIMIT_LOGIN"),
        ({"RATELIMIT_STORAGE_URI": "memcached://x"}, "RATELIMIT_STORAGE_URI"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"METRICS_ENABLED": "maybe"}, "METRICS_ENABLED"),
        ({"PORTRAIT_STORAGE": "s3"}, "PORTRAIT_STORAGE"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES"),
        ({"MAX_PORTRAIT_BYTES": "9999999999"}, "MAX_PORTRAIT_BYTES"),
        ({"BIND": "127.0.0.1:99999"}, "BIND"),
        ({"BIND": "localhost:xx"}, "BIND"),
        ({"BIND": "8000"}, "BIND"),
        ({"BIND": "unix:"}, "BIND"),
        ({"GUNICORN_TIMEOUT": "abc"}, "GUNICORN_TIMEOUT"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, env, variable):
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, **env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert "\n" not in str(caught.value)


def test_postgres_scheme_alias(tmp_path):
    url = settings(tmp_path, DATABASE_URL="postgres://u:p@db/forge").DATABASE_URL
    assert url == "postgresql+psycopg2://u:p@db/forge"


def test_env_example_lists_every_setting():
    listed = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
    }
    assert set(setting_names()) <= listed


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    full_env = {
        key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "FLASK_DEBUG"}
    }
    full_env.update(env)
    return subprocess.run(
        command, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
    ],
    ids=["flask", "gunicorn"],
)
def test_production_without_secret_stops_with_one_line(command, tmp_path):
    result = _run(command, APP_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == ["configuration error: SECRET_KEY: is required in production"]


def test_switches_turn_endpoints_off(app_factory):
    client = app_factory(METRICS_ENABLED="false", DOCS_ENABLED="false").test_client()
    for path in ("/metrics", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 404
    assert client.get("/health/live").status_code == 200


def test_an_empty_metrics_directory_is_no_directory(tmp_path):
    # .env.example once left PROMETHEUS_MULTIPROC_DIR empty: prometheus_client took the name
    # alone for multiprocess mode, and every flask command left sample files in its directory
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "FLASK_DEBUG", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(PROMETHEUS_MULTIPROC_DIR="", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}")
    command = [sys.executable, "-m", "flask", "--app", str(ROOT / "wsgi.py"), "routes"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix == ".db") == []
