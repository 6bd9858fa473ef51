"""Profiles: loading users and shaping them for the wire (contract field names)."""

from __future__ import annotations

from typing import Any

from wsgi_app.errors import USER_NOT_FOUND, ApiError
from wsgi_app.extensions import db
from wsgi_app.models.user import User

PROFILE_FIELDS = (
    "user_id",
    "nickname",
    "birthday",
    "gender",
    "avatar",
    "height",
    "sexual",
    "education",
    "salary",
    "emotion",
)

PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": list(PROFILE_FIELDS),
    "properties": {
        "user_id": {"type": "integer"},
        "nickname": {"type": ["string", "null"]},
        "birthday": {"type": ["string", "null"], "format": "date"},
        "gender": {"type": "integer", "enum": [0, 1, 2]},
        "avatar": {"type": ["string", "null"]},
        "height": {"type": ["integer", "null"]},
        "sexual": {"type": "integer"},
        "education": {"type": "integer"},
        "salary": {"type": ["integer", "null"]},
        "emotion": {"type": "integer"},
        "phone": {"type": "string", "description": "only when showing yourself"},
    },
}


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(USER_NOT_FOUND)
    return user


def profile_data(user: User, *, include_phone: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user_id": user.id,
        "nickname": user.nickname,
        "birthday": user.birthday.isoformat() if user.birthday else None,
        "gender": user.gender,
        "avatar": user.avatar,
        "height": user.height,
        "sexual": user.sexual,
        "education": user.education,
        "salary": user.salary,
        "emotion": user.emotion,
    }
    if include_phone:
        data["phone"] = user.phone
    return data
