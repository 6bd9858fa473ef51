"""``/api/health``: 200 when the database and Redis answer, 503 naming the one that does not."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint
from sqlalchemy import text

from wsgi_app.api.endpoint import endpoint
from wsgi_app.errors import DATABASE_UNAVAILABLE, REDIS_UNAVAILABLE, ApiError
from wsgi_app.extensions import db, redis_client

bp = Blueprint("health", __name__, url_prefix="/api")
log = logging.getLogger("datingtoday.health")


@bp.route("/health", methods=["GET"])
@endpoint(
    summary="Liveness of the database and Redis",
    auth="none",
    errors=[DATABASE_UNAVAILABLE, REDIS_UNAVAILABLE],
    data_schema={
        "type": "object",
        "properties": {"database": {"type": "string"}, "redis": {"type": "string"}},
    },
)
def health(caller: None) -> dict[str, Any]:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:
        log.error("health: database check failed: %s", exc.__class__.__name__)
        raise ApiError(DATABASE_UNAVAILABLE) from None
    try:
        redis_client().ping()
    except Exception as exc:
        log.error("health: redis check failed: %s", exc.__class__.__name__)
        raise ApiError(REDIS_UNAVAILABLE) from None
    return {"database": "ok", "redis": "ok"}
