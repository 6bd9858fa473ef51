"""``/api/block`` and ``/api/report``: blocking people, and reporting them to moderators."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import RATE_LIMITED, USER_NOT_FOUND
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.social import blocks, reports
from wsgi_app.services.social import schemas as social_schemas

bp = Blueprint("blocks", __name__, url_prefix="/api")

PEER_ID = Param(
    "peerId", "integer", required=True, minimum=1, maximum=2**31 - 1, description="the other user"
)


@bp.route("/block/add", methods=["POST"])
@endpoint(
    summary="Block a user: neither of you sees the other anywhere any more",
    params=[PEER_ID],
    errors=[USER_NOT_FOUND, RATE_LIMITED],
    data_schema=social_schemas.BLOCK_RESULT_SCHEMA,
    description="Idempotent. Blocking yourself is refused with 300. Limits (block and unblock "
    "together): 30 per hour, 100 per day.",
)
def block_add(caller: UserCaller, peer_id: int) -> dict[str, Any]:
    blocks.block(caller.user_id, peer_id)
    return {"peer_id": peer_id, "blocked": True}


@bp.route("/block/remove", methods=["POST"])
@endpoint(
    summary="Lift your block of a user",
    params=[PEER_ID],
    errors=[USER_NOT_FOUND, RATE_LIMITED],
    data_schema=social_schemas.BLOCK_RESULT_SCHEMA,
    description="Idempotent. A block the other user placed on you stays; "
    "'blocked' tells whether you still cannot see each other. Shares the limits of block/add.",
)
def block_remove(caller: UserCaller, peer_id: int) -> dict[str, Any]:
    blocks.unblock(caller.user_id, peer_id)
    return {"peer_id": peer_id, "blocked": blocks.is_blocked_between(caller.user_id, peer_id)}


@bp.route("/block/list", methods=["GET"])
@endpoint(
    summary="The people you blocked, latest first",
    params=PAGINATION,
    data_schema=social_schemas.BLOCK_PAGE_SCHEMA,
)
def block_list(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    return blocks.blocks_page(caller.user_id, page, page_count)


@bp.route("/report/add", methods=["POST"])
@endpoint(
    summary="Report a user to the moderators",
    params=[
        PEER_ID,
        Param("reason", required=True, enum=reports.REPORT_REASONS),
        Param("detail", max_length=reports.REPORT_DETAIL_MAX_CHARS, description="optional free text"),
    ],
    errors=[USER_NOT_FOUND, RATE_LIMITED],
    data_schema=social_schemas.REPORT_SCHEMA,
    description="Limits: 5 reports per hour, 20 per day. Reporting yourself is refused with 300.",
)
def report_add(caller: UserCaller, peer_id: int, reason: str, detail: str | None = None) -> dict[str, Any]:
    return reports.report_user(caller.user_id, peer_id, reason, detail)
