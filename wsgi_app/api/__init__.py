"""Thin blueprints, one per area of the API; logic lives in ``wsgi_app.services``."""

from __future__ import annotations

from flask import Flask

from wsgi_app.api import (
    account,
    auth,
    blocks,
    chat,
    docs,
    health,
    labels,
    location,
    matching,
    metrics,
    openapi,
    payment,
    photos,
    users,
    vip,
    visitors,
)

AREAS = (
    auth,
    users,
    health,
    photos,
    labels,
    visitors,
    vip,
    payment,
    blocks,
    account,
    openapi,
    chat,
    location,
    matching,
    metrics,
    docs,
)


def register_blueprints(app: Flask) -> None:
    for module in AREAS:
        app.register_blueprint(module.bp)
    app.register_blueprint(chat.contacts_bp)
    app.register_blueprint(matching.matches_bp)
