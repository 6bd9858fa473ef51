"""Administration of calling applications: list, enable/disable, rotate the secret.

Used by ``flask apps ...``. Secrets are printed only when created or rotated,
never by ``list``. After each change's commit, every server process forgets
the appkey at once (:mod:`~wsgi_app.services.auth.application_changes`); if
Redis cannot take that publish, they follow within ``applications.APP_CACHE_TTL_SECS``.
"""

from __future__ import annotations

import secrets
from typing import Any

from wsgi_app.extensions import db
from wsgi_app.models.application import Application
from wsgi_app.services.auth import application_changes, applications

SECRET_BYTES = 24


def list_applications(include_disabled: bool = True) -> list[dict[str, Any]]:
    query = db.select(Application).order_by(Application.id)
    if not include_disabled:
        query = query.where(Application.is_active.is_(True))
    return [
        {
            "name": row.name,
            "appkey": row.appkey,
            "sign_method": row.sign_method,
            "active": bool(row.is_active),
            "created_at": row.created_at.isoformat(timespec="seconds") + "Z",
        }
        for row in db.session.execute(query).scalars()
    ]


def _find(appkey: str) -> Application:
    row = db.session.execute(db.select(Application).where(Application.appkey == appkey)).scalar_one_or_none()
    if row is None:
        raise LookupError(f"no application with appkey {appkey}")
    return row


def set_active(appkey: str, active: bool) -> None:
    _find(appkey).is_active = active
    db.session.commit()
    application_changes.announce_change(appkey)


def rotate_secret(appkey: str) -> applications.AppCredentials:
    row = _find(appkey)
    row.secret = secrets.token_hex(SECRET_BYTES)
    db.session.commit()
    application_changes.announce_change(appkey)
    return applications.AppCredentials(row.id, row.appkey, row.secret, row.sign_method)
