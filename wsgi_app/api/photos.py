"""``/api/photo``: upload, list, delete, reorder your photos; make one your avatar."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from wsgi_app.api.endpoint import endpoint
from wsgi_app.errors import (
    CONFLICT,
    NOT_AN_IMAGE,
    OBJECT_NOT_FOUND,
    PARAM_INVALID,
    PAYLOAD_TOO_LARGE,
    USER_NOT_FOUND,
    ApiError,
)
from wsgi_app.params import Param
from wsgi_app.services.auth.request_auth import UserCaller
from wsgi_app.services.profile import access as profile_access
from wsgi_app.services.profile import photos
from wsgi_app.services.profile import schemas as profile_schemas
from wsgi_app.services.profile.labels import parse_id_list
from wsgi_app.services.profile.profiles import get_user
from wsgi_app.services.profile.visibility import can_view_profile

bp = Blueprint("photos", __name__, url_prefix="/api/photo")

PHOTO_ID = Param("photoId", "integer", required=True, minimum=1, description="one of your photos")


@bp.route("/upload", methods=["POST"])
@endpoint(
    summary="Upload a photo (multipart field photo)",
    params=[Param("photo", "file", required=True, description="JPEG, PNG, WebP or GIF; at most 5 MiB")],
    errors=[PARAM_INVALID, NOT_AN_IMAGE, PAYLOAD_TOO_LARGE, CONFLICT],
    data_schema=profile_schemas.PHOTO_SCHEMA,
    description="The type is read from the content, never from the name. At most 9 photos (409 "
    "beyond). Above 24 million pixels 514, from the header before any decoding.",
)
def upload(caller: UserCaller) -> dict[str, Any]:
    upload = request.files.get("photo")
    if upload is None:
        raise ApiError(PARAM_INVALID, "missing parameter: photo (a multipart file)")
    return photos.photo_data(photos.add_photo(caller.user_id, upload.stream))


@bp.route("/list", methods=["GET"])
@endpoint(
    summary="List your photos (or another's with peerId), in display order",
    params=[Param("peerId", "integer", minimum=1, description="whose photos; default: yours")],
    errors=[USER_NOT_FOUND],
    data_schema=profile_schemas.PHOTO_LIST_SCHEMA,
)
def list_photos(caller: UserCaller, peer_id: int | None = None) -> dict[str, Any]:
    owner_id = caller.user_id if peer_id is None else peer_id
    if not can_view_profile(caller.user_id, get_user(owner_id)):
        raise ApiError(USER_NOT_FOUND)
    items = [photos.photo_data(photo) for photo in photos.user_photos(owner_id)]
    return {"user_id": owner_id, "list": items, "total": len(items)}


@bp.route("/delete", methods=["POST"])
@endpoint(
    summary="Delete one of your photos (clears the avatar if it was the avatar)",
    params=[PHOTO_ID],
    errors=[OBJECT_NOT_FOUND],
    data_schema={"type": "object", "required": ["photo_id"], "properties": {"photo_id": {"type": "integer"}}},
)
def delete(caller: UserCaller, photo_id: int) -> dict[str, Any]:
    photos.delete_photo(caller.user_id, photo_id)
    return {"photo_id": photo_id}


@bp.route("/reorder", methods=["POST"])
@endpoint(
    summary="Reorder your photos",
    params=[
        Param(
            "photoIds",
            required=True,
            max_length=200,
            pattern=r"\s*\d+\s*(,\s*\d+\s*)*",
            description="all your photo ids, comma-separated, first shown first (e.g. 3,1,2)",
        )
    ],
    errors=[PARAM_INVALID, OBJECT_NOT_FOUND],
    data_schema=profile_schemas.PHOTO_LIST_SCHEMA,
)
def reorder(caller: UserCaller, photo_ids: str) -> dict[str, Any]:
    ordered = photos.reorder_photos(caller.user_id, parse_id_list(photo_ids, "photoIds"))
    items = [photos.photo_data(photo) for photo in ordered]
    return {"user_id": caller.user_id, "list": items, "total": len(items)}


@bp.route("/avatar", methods=["POST"])
@endpoint(
    summary="Make one of your photos your avatar",
    params=[PHOTO_ID],
    errors=[OBJECT_NOT_FOUND],
    data_schema=profile_schemas.SELF_PROFILE_SCHEMA,
    description="Returns your updated profile.",
)
def set_avatar(caller: UserCaller, photo_id: int) -> dict[str, Any]:
    return profile_access.self_profile_data(photos.set_avatar(caller.user_id, photo_id))
