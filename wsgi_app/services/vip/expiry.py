"""VIP expiry: the ``vip`` event when a person's VIP time runs out.

A person stops being VIP by the clock alone (``users.vip_expires_at`` passes);
nothing is written then. :func:`announce_expired` finds the people whose VIP
ran out and was not announced yet (``vip_expiry_announced_at``, cleared by each
purchase) and, per person in one transaction, marks it announced and stores
the ``vip`` event. Run once for the fleet every minute or so
(``flask --app wsgi_app events vip-expiry``); running it twice, or on two hosts
at once, announces each expiry once (the row is locked and checked again).
Expiries older than the event retention are marked without an event.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.user import User
from wsgi_app.services.events import producer
from wsgi_app.timeutil import utcnow

BATCH = 500


def announce_expired(now: datetime | None = None) -> int:
    """Announce every VIP expiry not yet announced; how many events were stored."""
    now = now or utcnow()
    oldest = now - timedelta(seconds=int(current_app.config["EVENT_RETENTION_SECS"]))
    due = (User.vip_expires_at <= now) & User.vip_expiry_announced_at.is_(None)
    announced = 0
    while True:
        user_ids = (
            db.session.execute(select(User.id).where(due).order_by(User.id).limit(BATCH)).scalars().all()
        )
        if not user_ids:
            return announced
        for user_id in user_ids:
            announced += transactions.write(
                functools.partial(_announce, user_id, now, oldest), what="vip expiry"
            )


def _announce(user_id: int, now: datetime, oldest: datetime) -> int:
    row = db.session.execute(
        select(User.vip_expires_at, User.vip_expiry_announced_at).where(User.id == user_id).with_for_update()
    ).first()
    if row is None or row.vip_expiry_announced_at is not None or row.vip_expires_at is None:
        return 0
    if row.vip_expires_at > now:
        return 0
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(vip_expiry_announced_at=now)
        .execution_options(synchronize_session=False)
    )
    if row.vip_expires_at < oldest:
        return 0
    producer.append(user_id, "vip", {"is_vip": False, "vip_expires_at": None, "reason": "expired"})
    return 1
