"""Showing a profile (visibility, visit recording) and updating your own (partial, validated).

Only the fields listed in :data:`EDITABLE_FIELDS` can ever change through an
update; phone, VIP time and ids are not among them, whatever a client sends.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import bindparam, update

from wsgi_app import transactions
from wsgi_app.errors import NICKNAME_INVALID, PARAM_INVALID, USER_NOT_FOUND, ApiError
from wsgi_app.extensions import db
from wsgi_app.models.user import User
from wsgi_app.services.location import nearby_cells
from wsgi_app.services.location import positions as location
from wsgi_app.services.profile import cache as profile_cache
from wsgi_app.services.profile import hot_list, photos
from wsgi_app.services.profile.profiles import (
    PROFILE_COLUMNS,
    get_user,
    load_profile_row,
    profile_data,
)
from wsgi_app.services.profile.visibility import visible_by_authority, wrote_to_clause
from wsgi_app.services.profile.visits import record_visit
from wsgi_app.services.social.blocks import is_blocked_between_clause
from wsgi_app.services.vip.status import is_vip
from wsgi_app.timeutil import format_wire_datetime, utcnow

NICKNAME_MAX = 32
MIN_AGE, MAX_AGE = 18, 120
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"[^@\s]{{1,64}}@{_DNS_LABEL}(?:\.{_DNS_LABEL})+"
_EMAIL_RE = re.compile(EMAIL_PATTERN)
# Unicode bidi embedding/override/isolate controls: they reorder the text around a name.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}

EDITABLE_FIELDS = (
    "nickname",
    "email",
    "gender",
    "sexual",
    "height",
    "education",
    "emotion",
    "salary",
    "birthday",
    "avatar",
    "authority",
)


def self_profile_data(user: Any) -> dict[str, Any]:
    return profile_data(user, include_phone=True)


def account_settings(user_id: int) -> dict[str, Any]:
    user = get_user(user_id)
    return {
        "user_id": user.id,
        "email": user.email,
        "authority": user.authority,
        "is_vip": is_vip(user),
        "vip_expires_at": format_wire_datetime(user.vip_expires_at),
    }


# Another's profile with what deciding its visibility needs, in one query built once.
_SELECT_PEER_PROFILE = db.select(
    *PROFILE_COLUMNS,
    is_blocked_between_clause(bindparam("viewer"), bindparam("owner")).label("blocked"),
    wrote_to_clause(bindparam("owner"), bindparam("viewer")).label("owner_wrote_to_viewer"),
).where(User.__table__.c.id == bindparam("owner"))


def own_profile_prefetch(params: Mapping[str, str]) -> list[str]:
    """Redis keys worth reading in the request check of ``/api/user/show``: the claimed
    user's cached profile, unless another's profile is asked for."""
    claimed = params.get("userId")
    if params.get("peerId", "").strip() not in ("", (claimed or "").strip()):
        return []
    return profile_cache.prefetch_keys(claimed)


def own_profile_from_prefetch(params: Mapping[str, str], prefetched: Mapping[str, Any]) -> bool:
    """Whether :func:`show_profile` answers these parameters from ``prefetched`` alone,
    with no database or Redis call (your own profile, its cache entry current)."""
    return bool(own_profile_prefetch(params)) and profile_cache.cached_in(prefetched, params.get("userId"))


def show_profile(
    viewer_id: int, peer_id: int | None, prefetched: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Your own profile (cached: no query; ``prefetched`` may hold its cache entry), or
    another's when you may see it (one query, then the visit: one autocommitted upsert)."""
    if peer_id is None or peer_id == viewer_id:
        return self_profile_data(profile_cache.profile_row(viewer_id, prefetched))
    # A Core SELECT: on the session's connection, without the ORM execution layer.
    params = {"viewer": viewer_id, "owner": peer_id}
    peer = db.session.connection().execute(_SELECT_PEER_PROFILE, params).first()
    if peer is None or not visible_by_authority(peer.authority, peer.blocked, peer.owner_wrote_to_viewer):
        raise ApiError(USER_NOT_FOUND)  # indistinguishable from a missing user
    record_visit(viewer_id, peer_id)
    return profile_data(peer)


def clean_nickname(raw: str) -> str:
    nickname = raw.strip()
    if not 1 <= len(nickname) <= NICKNAME_MAX:
        raise ApiError(NICKNAME_INVALID, f"nickname: 1 to {NICKNAME_MAX} characters after trimming")
    for char in nickname:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            raise ApiError(NICKNAME_INVALID, "nickname: control characters are not allowed")
    return nickname


def age_on(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month, birthday.day))


def check_birthday(birthday: date) -> date:
    age = age_on(birthday, utcnow().date())
    if not MIN_AGE <= age <= MAX_AGE:
        raise ApiError(PARAM_INVALID, f"birthday: age must be between {MIN_AGE} and {MAX_AGE}")
    return birthday


@functools.lru_cache(maxsize=4096)  # at most one per subset of EDITABLE_FIELDS (2,048)
def _update_statement(columns: tuple[str, ...]) -> Any:
    """``UPDATE users SET <columns> WHERE id = :user_id``, built once per set of columns (building
    it per request, with its cache key, was a tenth of an update's CPU)."""
    users = User.__table__
    statement = (
        update(users).where(users.c.id == bindparam("user_id")).values({c: bindparam(c) for c in columns})
    )
    return transactions.single_statement(statement)


def update_profile(user_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply the sent fields (only :data:`EDITABLE_FIELDS`) in one autocommitted UPDATE, then
    read the profile back (it shows concurrent changes too)."""
    values = {name: value for name, value in changes.items() if name in EDITABLE_FIELDS}
    if "nickname" in values:
        values["nickname"] = clean_nickname(values["nickname"])
    if "email" in values:
        values["email"] = values["email"].strip().lower()
        if not _EMAIL_RE.fullmatch(values["email"]):
            raise ApiError(PARAM_INVALID, "email: not a valid address")
    if "birthday" in values:
        check_birthday(values["birthday"])
    if "avatar" in values and not photos.is_own_photo_url(user_id, values["avatar"]):
        raise ApiError(PARAM_INVALID, "avatar: must be the URL of one of your photos")
    if values:
        statement, params = _update_statement(tuple(sorted(values))), {**values, "user_id": user_id}

        def store() -> None:
            profile_cache.invalidate_after_commit([user_id])
            db.session.execute(statement, params)

        transactions.write(store, what="profile update")
        if "authority" in values:
            hot_list.invalidate()
            position = location.current_position(user_id)
            if position is not None:  # nearby lists only people visible to everyone
                nearby_cells.invalidate([location.cell_of(position.lat, position.lng)])
    return self_profile_data(load_profile_row(user_id))
