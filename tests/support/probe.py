"""A blueprint registered only by the tests, to exercise framework behaviour that no resource
of the foundation exposes yet (parsing, errors, pagination, database failures)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import text

from app.auth.policy import public
from app.common.api import Blueprint
from app.common.pagination import Page, PageQuery, sort_field
from app.common.schemas import BaseSchema, JSONObject, SafeHTML, StrictBoolean, StrictInteger, Text
from app.extensions import db

blp = Blueprint("probe", __name__, url_prefix="/api/v1/_probe", description="tests only")


class EchoSchema(BaseSchema):
    name = Text(required=True, validate=validate.Length(min=1, max=10))
    bio = SafeHTML(load_default="", validate=validate.Length(max=50))
    flag = StrictBoolean()
    count = StrictInteger()
    extra = JSONObject()
    items = fields.List(fields.Nested(lambda: ItemSchema()))


class ItemSchema(BaseSchema):
    dice = Text(required=True)


class StatementSchema(BaseSchema):
    kind = Text(required=True)
    secret = Text(required=True)


class ListQuery(PageQuery):
    sort = sort_field(["name", "created_at"], "name")
    q = Text()


@blp.route("/echo")
class Echo(MethodView):
    @public
    @blp.arguments(EchoSchema)
    @blp.response(200)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        return data


@blp.route("/items")
class Items(MethodView):
    @public
    @blp.arguments(ListQuery, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> Any:
        total = 45
        start = (args["page"] - 1) * args["page_size"]
        items = list(range(total))[start : start + args["page_size"]]
        page = Page(items=items, total=total, page=args["page"], page_size=args["page_size"])
        return items, 200, page.headers()


@blp.route("/empty")
class Empty(MethodView):
    @public
    @blp.arguments(PageQuery, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> Any:
        page = Page(items=[], total=0, page=args["page"], page_size=args["page_size"])
        return [], 200, page.headers()


@blp.route("/db")
class Database(MethodView):
    @public
    @blp.response(200)
    def get(self) -> dict[str, Any]:
        return {"one": db.session.execute(text("SELECT 1")).scalar_one()}


def _connection_state() -> dict[str, Any]:
    """The PostgreSQL backend serving this request, and whether its statements run inside a
    transaction (psycopg2's view, after one statement)."""
    import psycopg2.extensions

    from app.common.database import connection

    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    dbapi_connection = db.session.connection().connection.dbapi_connection
    status = dbapi_connection.get_transaction_status()  # type: ignore[union-attr]
    return {
        "pid": pid,
        "in_transaction": status != psycopg2.extensions.TRANSACTION_STATUS_IDLE,
        # Core statements (connection()) and the ORM session share one pooled connection
        "shared": connection().connection.dbapi_connection is dbapi_connection,
        "checked_out": db.engine.pool.checkedout(),
    }


@blp.route("/connection")
class Connection(MethodView):
    @blp.response(200)
    def get(self) -> dict[str, Any]:
        return _connection_state()

    @blp.response(200)
    def post(self) -> dict[str, Any]:
        return _connection_state()


@blp.route("/public-connection")
class PublicConnection(MethodView):
    @public
    @blp.response(200)
    def get(self) -> dict[str, Any]:
        return _connection_state()


@blp.route("/boom")
class Boom(MethodView):
    @public
    def get(self) -> Any:
        raise RuntimeError("secret detail: SELECT password FROM users in /etc/app/settings.py")


@blp.route("/dangling")
class Dangling(MethodView):
    @public
    def post(self) -> Any:
        """A write that refers to a row that is not there (as if deleted meanwhile)."""
        import uuid

        from app.character_templates.models import TemplateTag

        db.session.add(TemplateTag(template_id=uuid.uuid4(), tag="x", position=0))
        db.session.commit()
        return {}


@blp.route("/failing-statement")
class FailingStatement(MethodView):
    @public
    @blp.arguments(StatementSchema, location="query")
    def get(self, args: dict[str, Any]) -> Any:
        """A statement that fails with a value bound into it (which must not be logged)."""
        statements = {
            # PostgreSQL quotes the value in its message: a 500
            "cast": "SELECT CAST(:secret AS integer)",
            # no such table on either database: a 503
            "table": "SELECT :secret FROM no_such_table",
        }
        db.session.execute(text(statements[args["kind"]]), {"secret": args["secret"]})
        return {}


@blp.route("/private")
class Private(MethodView):
    @blp.response(200)
    def get(self) -> dict[str, Any]:
        return {"secret": True}


def register_probe(app: Flask) -> Flask:
    app.extensions["api"].register_blueprint(blp)
    return app
