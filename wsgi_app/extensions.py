"""Extensions, created once here and bound to the app in ``create_app``."""

from __future__ import annotations

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from wsgi_app.redis_client import make_sync_client


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


class RedisStore:
    """A Flask extension holding this app's sync Redis client."""

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = make_sync_client(app.config["REDIS_URL"])

    @property
    def client(self) -> redis.Redis:
        return current_app.extensions["redis"]


redis_store = RedisStore()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:  # type: ignore[no-untyped-def]
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
