"""``/api/user``: show and update profiles, the hot list."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.declarations import PAGINATION
from wsgi_app.errors import NICKNAME_INVALID, PARAM_INVALID, USER_NOT_FOUND
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.profile import access as profile_access
from wsgi_app.services.profile import hot_list, privacy
from wsgi_app.services.profile import schemas as profile_schemas
from wsgi_app.services.profile.schemas import PRESENCE_SCHEMA

bp = Blueprint("users", __name__, url_prefix="/api/user")

PEER_ID = Param("peerId", "integer", minimum=1, description="whose profile; default: yours")

UPDATE_PARAMS = [
    Param("nickname", max_length=200, error=NICKNAME_INVALID, description="1-32 characters after trimming"),
    Param("email", max_length=120, description="an e-mail address"),
    Param("gender", "integer", minimum=0, maximum=2, description="0 unknown, 1 male, 2 female"),
    Param("sexual", "integer", minimum=0, maximum=3),
    Param("height", "integer", minimum=100, maximum=250, description="centimetres"),
    Param("education", "integer", minimum=0, maximum=5),
    Param(
        "emotion", "integer", minimum=0, maximum=3, description="0 single, 1 married, 2 divorced, 3 secret"
    ),
    Param("salary", "integer", minimum=1, maximum=6, description="salary band"),
    Param("birthday", "date", description="YYYY-MM-DD; age 18-120"),
    Param("avatar", max_length=255, description="URL of one of your photos (see /api/photo/list)"),
    Param(
        "authority",
        "integer",
        minimum=0,
        maximum=2,
        description="who sees your profile: 0 nobody, 1 everyone, 2 people you chat with",
    ),
]


@bp.route("/show", methods=["GET"])
@endpoint(
    summary="Show your own profile (or another's with peerId)",
    params=[PEER_ID],
    errors=[USER_NOT_FOUND],
    data_schema=profile_schemas.SELF_PROFILE_SCHEMA,
    description="Another's profile is shown only when its owner lets you see it (else 501, like a "
    "missing user) and records a visit. phone only when showing yourself.",
    prefetch=profile_access.own_profile_prefetch,
    answered_from_prefetch=profile_access.own_profile_from_prefetch,
)
def show(caller: UserCaller, prefetched: dict[str, Any], peer_id: int | None = None) -> dict[str, Any]:
    return profile_access.show_profile(caller.user_id, peer_id, prefetched)


@bp.route("/update", methods=["POST"])
@endpoint(
    summary="Update your profile (only the fields sent change)",
    params=UPDATE_PARAMS,
    errors=[PARAM_INVALID, NICKNAME_INVALID],
    data_schema=profile_schemas.SELF_PROFILE_SCHEMA,
    description="phone, VIP time and ids can never be changed here; other parameters are ignored.",
)
def update(caller: UserCaller, **changes: Any) -> dict[str, Any]:
    return profile_access.update_profile(caller.user_id, changes)


@bp.route("/settings", methods=["GET"])
@endpoint(
    summary="Your account settings: e-mail, profile visibility (authority), VIP status",
    data_schema=profile_schemas.SETTINGS_SCHEMA,
    description="Changed through /api/user/update (email, authority); VIP through purchases.",
)
def settings(caller: UserCaller) -> dict[str, Any]:
    return profile_access.account_settings(caller.user_id)


@bp.route("/hot/list", methods=["GET"])
@endpoint(
    summary="The hot list: most visited people of the last days",
    params=PAGINATION,
    data_schema=profile_schemas.HOT_PAGE_SCHEMA,
    description="Ranked by distinct visitors in the last 7 days, then most recent visit. Never you, "
    "never hidden profiles, never anyone blocked either way.",
)
def hot(caller: UserCaller, page: int, page_count: int) -> dict[str, Any]:
    return hot_list.hot_page(caller.user_id, page, page_count)


PRIVACY_SCHEMA = {
    "type": "object",
    "required": ["read_receipts", "presence_hidden"],
    "properties": {
        "read_receipts": {"type": "boolean", "description": "send and see read receipts (default on)"},
        "presence_hidden": {"type": "boolean", "description": "hide your presence and see no one's"},
    },
}


@bp.route("/privacy", methods=["GET"])
@endpoint(summary="Your read-receipt and presence privacy switches", data_schema=PRIVACY_SCHEMA)
def privacy_show(caller: UserCaller) -> dict[str, Any]:
    return privacy.privacy_data(caller.user_id)


@bp.route("/privacy", methods=["POST"])
@endpoint(
    summary="Turn read receipts and presence on or off (only the switches sent change)",
    params=[
        Param(
            "readReceipts", "integer", minimum=0, maximum=1, description="0: you neither send nor see them"
        ),
        Param(
            "presenceHidden",
            "integer",
            minimum=0,
            maximum=1,
            description="1: nobody sees yours, you see none",
        ),
    ],
    data_schema=PRIVACY_SCHEMA,
)
def privacy_update(
    caller: UserCaller, read_receipts: int | None = None, presence_hidden: int | None = None
) -> dict[str, Any]:
    return privacy.update_privacy(
        caller.user_id,
        None if read_receipts is None else bool(read_receipts),
        None if presence_hidden is None else bool(presence_hidden),
    )


@bp.route("/presence", methods=["GET"])
@endpoint(
    summary='"Online now" or "active N minutes ago" of the people a page shows (up to 50)',
    params=[
        Param(
            "userIds",
            required=True,
            max_length=600,
            pattern=r"[0-9]{1,10}(,[0-9]{1,10}){0,49}",
            description="comma-separated user ids (of a hot, nearby, visitor or match page)",
        )
    ],
    data_schema={
        "type": "object",
        "required": ["list"],
        "properties": {
            "list": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["user_id", "presence"],
                    "properties": {"user_id": {"type": "integer"}, "presence": PRESENCE_SCHEMA},
                },
            }
        },
    },
    description="Online now = active (a waiting poll, a request) in the last 2.5 minutes; written at "
    "most once a minute. People blocked either way and unknown ids are left out; presence is null "
    "when either of you hides it.",
)
def presence_list(caller: UserCaller, user_ids: str) -> dict[str, Any]:
    return privacy.presence_of(caller.user_id, [int(part) for part in user_ids.split(",")])
