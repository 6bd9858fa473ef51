"""VIP status: a user is VIP while ``users.vip_expires_at`` lies in the future."""

from __future__ import annotations

from datetime import datetime

from wsgi_app.models.user import User
from wsgi_app.timeutil import utcnow


def is_vip(user: User, now: datetime | None = None) -> bool:
    """True while the user's VIP time has not run out (naive UTC, like every stored datetime)."""
    expires_at = user.vip_expires_at
    return expires_at is not None and expires_at > (now or utcnow())
