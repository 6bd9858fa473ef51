"""Profiles: loading users and shaping them for the wire (contract field names).

:func:`profile_data` takes anything with the user's attributes: an ORM ``User``
or the row :func:`load_profile_row` reads (only the columns a profile shows,
one query built once: loading whole ORM users was most of a profile read's
Python time).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam

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


_users = User.__table__
PROFILE_COLUMNS = (
    _users.c.id,
    _users.c.nickname,
    _users.c.birthday,
    _users.c.gender,
    _users.c.avatar,
    _users.c.height,
    _users.c.sexual,
    _users.c.education,
    _users.c.salary,
    _users.c.emotion,
    _users.c.phone,
    _users.c.authority,
)
_SELECT_PROFILE = db.select(*PROFILE_COLUMNS).where(_users.c.id == bindparam("user_id"))


def load_profile_row(user_id: int) -> Row[Any]:
    """The columns of ``user_id``'s profile (and ``authority``), or 501."""
    row = db.session.connection().execute(_SELECT_PROFILE, {"user_id": user_id}).first()  # Core: no ORM layer
    if row is None:
        raise ApiError(USER_NOT_FOUND)
    return row


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(USER_NOT_FOUND)
    return user


def profile_data(user: Any, *, include_phone: bool = False) -> dict[str, Any]:
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
