"""``/api/visitor``: who viewed my profile (counts for everyone, the list for VIP)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import VIP_REQUIRED, ApiError
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.profile import schemas as profile_schemas
from wsgi_app.services.profile import visits
from wsgi_app.services.profile.profiles import get_user
from wsgi_app.services.vip.status import is_vip

bp = Blueprint("visitors", __name__, url_prefix="/api/visitor")


def require_vip(user_id: int) -> None:
    if not is_vip(get_user(user_id)):
        raise ApiError(VIP_REQUIRED, "the visitor list is a VIP feature")


@bp.route("/summary", methods=["GET"])
@endpoint(
    summary="How many people viewed you, and how many are new",
    data_schema=profile_schemas.SUMMARY_SCHEMA,
)
def summary(caller: UserCaller) -> dict[str, Any]:
    return visits.summary(caller.user_id)


@bp.route("/list", methods=["GET"])
@endpoint(
    summary="Who viewed you, newest first (VIP)",
    params=PAGINATION,
    errors=[VIP_REQUIRED],
    data_schema=profile_schemas.VISITOR_PAGE_SCHEMA,
    description="One entry per visitor with the number of visits and the latest time.",
)
def visitor_list(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    require_vip(caller.user_id)
    return visits.visitor_page(caller.user_id, page, page_count)


@bp.route("/read", methods=["POST"])
@endpoint(
    summary="Mark all your visitors as seen (VIP)",
    errors=[VIP_REQUIRED],
    data_schema={
        "type": "object",
        "required": ["marked"],
        "properties": {"marked": {"type": "integer", "description": "visitors that were new"}},
    },
)
def mark_read(caller: UserCaller) -> dict[str, Any]:
    require_vip(caller.user_id)
    return {"marked": visits.mark_all_read(caller.user_id)}
