"""What ``wsgi_app.extensions`` tells the type checker about ``db`` and ``Model`` is true at runtime."""

from __future__ import annotations

import sqlalchemy
from flask_sqlalchemy.model import Model as FlaskModel
from sqlalchemy.orm import DeclarativeBase

from wsgi_app import models
from wsgi_app.extensions import Model, db

FORWARDED_NAMES = ("select", "insert", "update", "delete", "case", "text", "func")


def test_db_forwards_the_declared_names_to_sqlalchemy() -> None:
    for name in FORWARDED_NAMES:
        assert getattr(db, name) is getattr(sqlalchemy, name), name


def test_model_is_a_declarative_base_with_the_flask_model_mixin() -> None:
    runtime_model: object = db.Model  # typed by Flask-SQLAlchemy as a protocol, not as Model
    assert Model is runtime_model
    assert issubclass(Model, DeclarativeBase) and issubclass(Model, FlaskModel)
    assert Model.metadata is db.metadata


def test_every_model_maps_a_table() -> None:
    mapped = [cls for cls in vars(models).values() if isinstance(cls, type) and issubclass(cls, Model)]
    assert mapped
    for cls in mapped:
        assert isinstance(cls.__table__, sqlalchemy.Table), cls
