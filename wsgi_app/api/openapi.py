"""``/api/openapi.json``: the OpenAPI document, generated from the code on each request."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from wsgi_app.api.endpoint import endpoint
from wsgi_app.openapi import document as openapi

bp = Blueprint("openapi", __name__, url_prefix="/api")


@bp.route("/openapi.json", methods=["GET"])
@endpoint(
    summary="This OpenAPI document (unsigned)",
    auth="none",
    data_schema={
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "description": "the OpenAPI 3.1 document itself, not wrapped in the envelope",
        openapi.RAW_BODY_MARKER: True,
    },
)
def openapi_document(caller: None) -> Response:
    document: dict[str, Any] = openapi.build_document(current_app)
    return jsonify(document)
