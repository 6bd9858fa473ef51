"""Extensions, created once here and bound to the app in ``create_app``.

Models subclass ``Model``, which is Flask-SQLAlchemy's ``db.Model``. The ``TYPE_CHECKING`` branch
only describes what exists at runtime (``db.Model`` is a declarative base built from ``Base``'s bases
and Flask-SQLAlchemy's model mixin; ``db.select`` and friends are ``sqlalchemy``'s), so that mypy
sees typed statements and rows (tests/test_extensions_typing.py checks the description).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import redis
import sqlalchemy
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Table, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from wsgi_app.redis_client import RedisTarget, make_sync_client


class Base(DeclarativeBase):
    pass


if TYPE_CHECKING:
    from flask_sqlalchemy.model import Model as _FlaskModel

    class _SQLAlchemy(SQLAlchemy):
        """``db`` as the type checker sees it. At runtime ``SQLAlchemy.__getattr__`` forwards these
        names to ``sqlalchemy`` untyped; spelled out, statements keep their column and row types."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.select = sqlalchemy.select
            self.insert = sqlalchemy.insert
            self.update = sqlalchemy.update
            self.delete = sqlalchemy.delete
            self.case = sqlalchemy.case
            self.text = sqlalchemy.text
            self.func = sqlalchemy.func

    class Model(_FlaskModel, DeclarativeBase):
        __abstract__ = True
        __table__: ClassVar[Table]  # every model maps one declared table

    db = _SQLAlchemy(model_class=Base)
else:
    db = SQLAlchemy(model_class=Base)
    Model = db.Model

migrate = Migrate()


class RedisStore:
    """A Flask extension holding this app's sync Redis client."""

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = make_sync_client(RedisTarget.from_config(app.config))

    @property
    def client(self) -> redis.Redis:
        client: redis.Redis = current_app.extensions["redis"]
        return client


redis_store = RedisStore()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL and foreign keys for SQLite; other databases are left alone."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def redis_client() -> redis.Redis:
    """The sync Redis client of the current app (Flask side or executor threads)."""
    return redis_store.client
