"""Labels: ``/api/label/list`` (the catalogue) and ``/api/user/labels`` (read or replace a set)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import OBJECT_NOT_FOUND, PARAM_INVALID, USER_NOT_FOUND
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.profile import labels
from wsgi_app.services.profile import schemas as profile_schemas

bp = Blueprint("labels", __name__, url_prefix="/api")


@bp.route("/label/list", methods=["GET"])
@endpoint(
    summary="The label catalogue, page by page",
    params=[
        *PAGINATION,
        Param("category", enum=tuple(labels.CATALOGUE), description="only this category"),
    ],
    data_schema=profile_schemas.LABEL_PAGE_SCHEMA,
)
def catalogue(caller: UserCaller, page: int, page_count: int, category: str | None = None) -> dict[str, Any]:
    return labels.catalogue_page(page, page_count, category)


@bp.route("/user/labels", methods=["GET"])
@endpoint(
    summary="Your labels (or another's with peerId)",
    params=[Param("peerId", "integer", minimum=1, description="whose labels; default: yours")],
    errors=[USER_NOT_FOUND],
    data_schema=profile_schemas.USER_LABELS_SCHEMA,
)
def show_labels(caller: UserCaller, peer_id: int | None = None) -> dict[str, Any]:
    return labels.labels_of(caller.user_id, peer_id)


@bp.route("/user/labels", methods=["POST"])
@endpoint(
    summary="Replace your labels",
    params=[
        Param(
            "labelIds",
            max_length=300,
            description=f"label ids, comma-separated (e.g. 1,2,3), at most {labels.MAX_LABELS_PER_USER}; "
            "empty or absent clears them",
        )
    ],
    errors=[PARAM_INVALID, OBJECT_NOT_FOUND],
    data_schema=profile_schemas.USER_LABELS_SCHEMA,
)
def set_labels(caller: UserCaller, label_ids: str = "") -> dict[str, Any]:
    return labels.set_labels(caller.user_id, labels.parse_id_list(label_ids, "labelIds", allow_empty=True))
