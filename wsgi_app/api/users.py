"""``/api/user``: profiles."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from wsgi_app.api.endpoint import endpoint
from wsgi_app.errors import USER_NOT_FOUND
from wsgi_app.params import Param
from wsgi_app.services import profiles
from wsgi_app.services.request_auth import Caller

bp = Blueprint("users", __name__, url_prefix="/api/user")


@bp.route("/show", methods=["GET"])
@endpoint(
    summary="Show your own profile (or another's with peerId)",
    params=[Param("peerId", "integer", minimum=1, description="whose profile; default: yours")],
    errors=[USER_NOT_FOUND],
    data_schema=profiles.PROFILE_SCHEMA,
)
def show(caller: Caller, peer_id: int | None = None) -> dict[str, Any]:
    assert caller.user_id is not None
    if peer_id is None or peer_id == caller.user_id:
        return profiles.profile_data(profiles.get_user(caller.user_id), include_phone=True)
    return profiles.profile_data(profiles.get_user(peer_id))
