"""Flask extensions, created unbound here and bound to the app in ``create_app``.

The flask-smorest ``Api`` is the exception: it holds the OpenAPI spec of one app, so the factory
creates one per app (``app.extensions["api"]``); tests build several apps in one process.
"""

from __future__ import annotations

from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from app.common.database import RequestSession
from app.common.ratelimit import client_key

# Every constraint gets a predictable name: Alembic can drop it again and SQLite's batch mode
# can rebuild tables that carry it.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects stay readable after commit (their ETag, say) without reloading them. A read's session
# shares the request's read connection (app.common.database).
db = SQLAlchemy(
    model_class=Base, session_options={"expire_on_commit": False, "class_": RequestSession}
)
migrate = Migrate(compare_type=True)
cors = CORS()
jwt = JWTManager()
limiter = Limiter(key_func=client_key, default_limits=[], headers_enabled=False)
