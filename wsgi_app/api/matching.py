"""``/api/like`` (like, super-like or pass; who liked me, for VIP) and ``/api/match`` (matches, unmatch)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import (
    BLOCKED,
    LIKE_LIMIT_REACHED,
    SUPER_LIKE_LIMIT_REACHED,
    USER_NOT_FOUND,
    VIP_REQUIRED,
    ApiError,
)
from wsgi_app.extensions import db
from wsgi_app.models.user import User
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.matching import likes, matches
from wsgi_app.services.matching import schemas as matching_schemas
from wsgi_app.services.vip.status import is_vip

bp = Blueprint("likes", __name__, url_prefix="/api/like")
matches_bp = Blueprint("matches", __name__, url_prefix="/api/match")

PEER_ID = Param(
    "peerId", "integer", required=True, minimum=1, maximum=2**31 - 1, description="the other person"
)


@bp.route("/send", methods=["POST"])
@endpoint(
    summary="Like, super-like or pass a person (from the hot or nearby lists)",
    params=[PEER_ID, Param("kind", default="like", enum=likes.KINDS)],
    errors=[USER_NOT_FOUND, BLOCKED, LIKE_LIMIT_REACHED, SUPER_LIKE_LIMIT_REACHED],
    data_schema=matching_schemas.DECISION_SCHEMA,
    description="A like is invisible to its target unless it is mutual: then it is a match for both "
    "(a match event each, and each is in the other's /api/match/list). A VIP target also gets a like "
    "event and lists it in /api/like/received. The latest decision about a person counts (a pass "
    "after a like withdraws it). Per UTC day: 50 likes (super-likes included; VIP 500), 1 super-like "
    "(VIP 5); 531 / 532 when used up. Liking again someone you like costs nothing.",
)
def send(caller: UserCaller, peer_id: int, kind: str) -> dict[str, Any]:
    return likes.decide(caller.user_id, peer_id, kind)


@bp.route("/received", methods=["GET"])
@endpoint(
    summary="Who liked you (VIP)",
    params=PAGINATION,
    errors=[VIP_REQUIRED],
    data_schema=matching_schemas.RECEIVED_PAGE_SCHEMA,
    description="Newest first; without people you already decided about (liked, matched or passed) "
    "or blocked either way. 513 unless you are VIP.",
)
def received(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    user = db.session.get(User, caller.user_id)
    if user is None or not is_vip(user):
        raise ApiError(VIP_REQUIRED)
    return likes.received_page(caller.user_id, page, page_count)


@matches_bp.route("/list", methods=["GET"])
@endpoint(
    summary="Your matches, newest first, with their presence",
    params=PAGINATION,
    data_schema=matching_schemas.MATCH_PAGE_SCHEMA,
)
def match_list(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    return matches.matches_page(caller.user_id, page, page_count)


@matches_bp.route("/remove", methods=["POST"])
@endpoint(
    summary="Unmatch: the match ends for both of you, without telling the other why",
    params=[PEER_ID],
    data_schema=matching_schemas.UNMATCH_SCHEMA,
    description="Idempotent. Both get an unmatch event that only removes the match from their lists; "
    "your like becomes a pass. Blocking someone also ends a match.",
)
def match_remove(caller: UserCaller, peer_id: int) -> dict[str, Any]:
    return likes.unmatch(caller.user_id, peer_id)
