"""Privacy switches of the event stream's features: read receipts and presence.

``read_receipts`` off: the person sends no read receipts and sees none
(:func:`wsgi_app.services.chat.contacts.receipts_on`). ``presence_hidden`` on:
no one sees their presence, they see no one's, and no ``presence`` events go
to or from them (:mod:`wsgi_app.services.events.presence`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.user import User
from wsgi_app.services.events import presence
from wsgi_app.services.profile.profiles import get_user
from wsgi_app.services.social.blocks import blocked_either_way_clause

MAX_PRESENCE_IDS = 50


def privacy_data(user_id: int) -> dict[str, Any]:
    user = get_user(user_id)
    return {"read_receipts": bool(user.read_receipts), "presence_hidden": bool(user.presence_hidden)}


def update_privacy(user_id: int, read_receipts: bool | None, presence_hidden: bool | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if read_receipts is not None:
        values["read_receipts"] = read_receipts
    if presence_hidden is not None:
        values["presence_hidden"] = presence_hidden
    if values:
        transactions.write_statement(
            update(User)
            .where(User.id == user_id)
            .values(**values)
            .execution_options(synchronize_session=False),
            what="privacy",
        )
        db.session.expire_all()
    return privacy_data(user_id)


def presence_of(viewer_id: int, user_ids: list[int]) -> dict[str, Any]:
    """Presence of up to :data:`MAX_PRESENCE_IDS` people as ``viewer_id`` may see it (people blocked
    either way and unknown ids are left out; ``presence`` null when either side hides it)."""
    wanted = list(dict.fromkeys(user_ids))[:MAX_PRESENCE_IDS]
    viewer_hidden = presence.viewer_hides_presence(viewer_id)
    rows = db.session.execute(
        select(User).where(User.id.in_(wanted), blocked_either_way_clause(viewer_id, User.id))
    ).scalars()
    by_id = {user.id: user for user in rows}
    return {
        "list": [
            {"user_id": uid, "presence": presence.presence_data(viewer_hidden, by_id[uid])}
            for uid in wanted
            if uid in by_id
        ]
    }
