"""Settings, read from the environment once, validated, in one place.

Every setting is named after its environment variable (API.md section 7). A bad value raises
:class:`ConfigError`, whose message is one line naming the variable; ``wsgi.py`` and
``gunicorn.conf.py`` turn it into a clean exit, never a traceback.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.common import fastjson, host_limits

MIB = 1024 * 1024
ENVIRONMENTS = ("development", "testing", "production")
# Values people paste from examples; production refuses them as SECRET_KEY.
PLACEHOLDER_SECRETS = {"change-me", "changeme", "secret", "dev", "development", "please-change-me"}
MIN_SECRET_LENGTH = 32
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A setting is missing or malformed; ``str(error)`` is one line naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    APP_ENV: str
    DATABASE_URL: str
    SECRET_KEY: str
    CORS_ORIGINS: tuple[str, ...]
    LOG_LEVEL: str
    LOG_FORMAT: str
    ACCESS_TOKEN_TTL: int
    REFRESH_TOKEN_TTL: int
    RATELIMIT_LOGIN: str
    RATELIMIT_REGISTER: str
    RATELIMIT_STORAGE_URI: str
    MAX_CONTENT_LENGTH: int
    MAX_PORTRAIT_BYTES: int
    PORTRAIT_STORAGE: str
    PORTRAIT_DIR: str
    METRICS_ENABLED: bool
    DOCS_ENABLED: bool
    WEB_CONCURRENCY: int
    BEHIND_HTTPS: bool
    TRUSTED_PROXIES: int
    DB_POOL_SIZE: int
    DB_MAX_OVERFLOW: int
    DB_POOL_TIMEOUT: int
    DB_STATEMENT_TIMEOUT_MS: int
    DB_CONNECT_TIMEOUT: int
    IDEMPOTENCY_TTL: int
    BIND: str
    GUNICORN_TIMEOUT: int

    @property
    def is_production(self) -> bool:
        return self.APP_ENV == "production"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: str) -> str:
    return value.strip()


def _positive_int(value: str) -> int:
    number = _int(value)
    if number < 1:
        raise ValueError("must be a positive integer")
    return number


def _int(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"must be an integer, not {value!r}") from None


def _non_negative_int(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise ValueError("must be 0 or a positive integer")
    return number


def _bool(value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"must be true or false, not {value!r}")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        word = value.strip().lower()
        if word not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {value!r}")
        return word

    return parse


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {value!r}")
    return level


def _origins(value: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
    for origin in origins:
        if origin == "*":
            raise ValueError("a wildcard is not allowed; list the allowed origins")
        if not origin.startswith(("http://", "https://")):
            raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
    return origins


def _rate_limit(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate limit such as '10 per minute'") from None
    return value.strip()


def _bind(value: str) -> str:
    """gunicorn's ``host:port`` (a bracketed IPv6 host allowed) or ``unix:/path``."""
    address = value.strip()
    if address.startswith("unix:"):
        if len(address) == len("unix:"):
            raise ValueError("unix: needs a socket path, as in unix:/run/character-forge.sock")
        return address
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"must be host:port with a port from 1 to 65535, not {value!r}")
    return address


def _storage_uri(value: str) -> str:
    uri = value.strip()
    if not uri.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
        raise ValueError("must be memory:// or a redis:// URL")
    return uri


def _database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = value.strip()
    if url.startswith("postgres://"):  # the scheme some hosting platforms hand out
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("is not a SQLAlchemy database URL") from None
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise ValueError(f"backend {backend!r} is not supported (use postgresql or sqlite)")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 defaults to psycopg 3; this service ships psycopg2.
        url = "postgresql+psycopg2" + url[len("postgresql") :]
    return url


# variable -> (parser, default). A default of None is computed in load_settings.
_SPEC: dict[str, tuple[Callable[[str], Any], str | None]] = {
    "APP_ENV": (_choice(*ENVIRONMENTS), "development"),
    "DATABASE_URL": (_database_url, None),
    "SECRET_KEY": (_text, None),
    "CORS_ORIGINS": (_origins, ""),
    "LOG_LEVEL": (_log_level, "INFO"),
    "LOG_FORMAT": (_choice("json", "text"), None),
    "ACCESS_TOKEN_TTL": (_positive_int, "900"),
    "REFRESH_TOKEN_TTL": (_positive_int, "2592000"),
    "RATELIMIT_LOGIN": (_rate_limit, "10 per minute"),
    "RATELIMIT_REGISTER": (_rate_limit, "5 per minute"),
    "RATELIMIT_STORAGE_URI": (_storage_uri, "memory://"),
    "MAX_CONTENT_LENGTH": (_positive_int, str(6 * MIB)),
    "MAX_PORTRAIT_BYTES": (_positive_int, str(5 * MIB)),
    "PORTRAIT_STORAGE": (_choice("filesystem", "database"), "filesystem"),
    "PORTRAIT_DIR": (_text, None),
    "METRICS_ENABLED": (_bool, "true"),
    "DOCS_ENABLED": (_bool, "true"),
    "WEB_CONCURRENCY": (_positive_int, None),
    "BEHIND_HTTPS": (_bool, "false"),
    "TRUSTED_PROXIES": (_non_negative_int, "0"),
    "DB_POOL_SIZE": (_positive_int, "5"),
    "DB_MAX_OVERFLOW": (_non_negative_int, "5"),
    "DB_POOL_TIMEOUT": (_positive_int, "5"),
    "DB_STATEMENT_TIMEOUT_MS": (_positive_int, "5000"),
    "DB_CONNECT_TIMEOUT": (_positive_int, "3"),
    "IDEMPOTENCY_TTL": (_positive_int, "86400"),
    # read by gunicorn.conf.py; validated here so that flask commands check them too
    "BIND": (_bind, "127.0.0.1:8000"),
    "GUNICORN_TIMEOUT": (_positive_int, "30"),
}


def default_instance_path() -> Path:
    return Path(__file__).resolve().parent.parent / "instance"


def _development_secret(instance_path: Path) -> str:
    """A random key kept in ``instance/`` so every worker of a dev server shares it."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_settings(
    environ: Mapping[str, str] | None = None, *, instance_path: Path | None = None
) -> Settings:
    """Read and validate every setting; raise :class:`ConfigError` on the first bad one."""
    env = dict(os.environ if environ is None else environ)
    instance = instance_path or default_instance_path()
    values: dict[str, Any] = {}
    for variable, (parse, default) in _SPEC.items():
        raw = env.get(variable)
        if raw is None or raw.strip() == "":
            raw = default
        if raw is None:
            values[variable] = None
            continue
        try:
            values[variable] = parse(raw)
        except ValueError as exc:
            raise ConfigError(variable, str(exc)) from None

    app_env = values["APP_ENV"]
    if values["DATABASE_URL"] is None:
        values["DATABASE_URL"] = f"sqlite:///{instance / 'character_forge.db'}"
    if values["LOG_FORMAT"] is None:
        values["LOG_FORMAT"] = "text" if app_env == "development" else "json"
    if values["PORTRAIT_DIR"] is None:
        values["PORTRAIT_DIR"] = str(instance / "portraits")
    if values["WEB_CONCURRENCY"] is None:
        values["WEB_CONCURRENCY"] = os.cpu_count() or 1
    if values["IDEMPOTENCY_TTL"] < 86400:
        raise ConfigError("IDEMPOTENCY_TTL", "must be at least 86400 (24 hours)")
    if values["MAX_PORTRAIT_BYTES"] > values["MAX_CONTENT_LENGTH"]:
        raise ConfigError("MAX_PORTRAIT_BYTES", "must not be larger than MAX_CONTENT_LENGTH")

    secret = values["SECRET_KEY"] or ""
    if app_env == "production":
        if not secret:
            raise ConfigError("SECRET_KEY", "is required in production")
        if len(secret) < MIN_SECRET_LENGTH or secret.lower() in PLACEHOLDER_SECRETS:
            raise ConfigError(
                "SECRET_KEY",
                f"must be a random value of at least {MIN_SECRET_LENGTH} characters in "
                'production (python3 -c "import secrets; print(secrets.token_urlsafe(48))")',
            )
        if _truthy(env.get("FLASK_DEBUG")):
            raise ConfigError("FLASK_DEBUG", "debug mode must be off in production")
    elif not secret:
        secret = (
            _development_secret(instance) if app_env == "development" else secrets.token_urlsafe(48)
        )
    values["SECRET_KEY"] = secret
    return Settings(**values)


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in TRUE_WORDS


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def flask_config(settings: Settings) -> dict[str, Any]:
    """Flask and extension configuration derived from the settings."""
    is_postgres = settings.DATABASE_URL.startswith("postgresql")
    # No pool_pre_ping: a PostgreSQL connection is checked on checkout without a round trip
    # (app.common.database); an SQLite file cannot disconnect. JSON columns are encoded and
    # decoded with orjson where it gives exactly the standard library's result.
    engine: dict[str, Any] = {
        "json_serializer": fastjson.dumps,
        "json_deserializer": fastjson.loads,
        # a statement's parameters (password hashes, emails) stay out of exception messages,
        # and so out of the tracebacks that are logged
        "hide_parameters": True,
    }
    if is_postgres:
        engine.update(
            pool_size=settings.DB_POOL_SIZE,
            max_overflow=settings.DB_MAX_OVERFLOW,
            pool_timeout=settings.DB_POOL_TIMEOUT,
            pool_recycle=1800,
            connect_args={
                "connect_timeout": settings.DB_CONNECT_TIMEOUT,
                # generic plans for prepared statements: see app.common.prepared
                "options": f"-c statement_timeout={settings.DB_STATEMENT_TIMEOUT_MS}"
                " -c timezone=UTC -c plan_cache_mode=force_generic_plan",
                "application_name": "character-forge",
                "client_encoding": "utf8",
                # a dead host or a network partition ends the connection (then a 503) well
                # before gunicorn's worker timeout, instead of hanging the worker
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "tcp_user_timeout": 10_000,
            },
        )
    else:
        engine.update(connect_args={"timeout": 15})
    return {
        **settings.as_dict(),
        "TESTING": settings.APP_ENV == "testing",
        "SQLALCHEMY_DATABASE_URI": settings.DATABASE_URL,
        "SQLALCHEMY_ENGINE_OPTIONS": engine,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "API_TITLE": "Character Forge API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/" if settings.DOCS_ENABLED else None,
        "OPENAPI_JSON_PATH": "openapi.json",
        # memory:// under several gunicorn workers: a file they share (app.common.host_limits)
        "RATELIMIT_STORAGE_URI": host_limits.storage_uri(settings.RATELIMIT_STORAGE_URI),
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "PREFERRED_URL_SCHEME": "https" if settings.BEHIND_HTTPS else "http",
        "JWT_SECRET_KEY": settings.SECRET_KEY,
        "JWT_ALGORITHM": "HS256",
        "JWT_DECODE_ALGORITHMS": ["HS256"],
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=settings.ACCESS_TOKEN_TTL),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(seconds=settings.REFRESH_TOKEN_TTL),
        "JWT_DECODE_LEEWAY": 0,
        # The suite alone hashes passwords cheaply; every real environment uses RFC 9106's profile.
        "PASSWORD_HASH_PROFILE": "testing"
        if settings.APP_ENV == "testing"
        else "rfc9106-low-memory",
    }
