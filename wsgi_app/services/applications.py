"""Calling applications: creation and a short-lived in-process lookup cache."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from wsgi_app.extensions import db
from wsgi_app.models.application import SIGN_METHODS, Application

APP_CACHE_TTL_SECS = 30.0


@dataclass(frozen=True)
class AppCredentials:
    """What a signature check needs; a plain value, safe to share across threads."""

    id: int
    appkey: str
    secret: str
    sign_method: str


_cache: dict[str, tuple[float, AppCredentials | None]] = {}
_cache_lock = threading.Lock()


def create_application(name: str, sign_method: str) -> AppCredentials:
    if sign_method not in SIGN_METHODS:
        raise ValueError(f"sign method must be one of {', '.join(SIGN_METHODS)}")
    app = Application(
        name=name,
        appkey=secrets.token_hex(8).upper(),
        secret=secrets.token_hex(24),
        sign_method=sign_method,
        is_active=True,
    )
    db.session.add(app)
    db.session.commit()
    return AppCredentials(app.id, app.appkey, app.secret, app.sign_method)


def find_credentials(appkey: str) -> AppCredentials | None:
    """The active application with this appkey, cached for a few seconds."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(appkey)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = db.session.execute(
        db.select(Application).where(Application.appkey == appkey, Application.is_active.is_(True))
    ).scalar_one_or_none()
    creds = AppCredentials(row.id, row.appkey, row.secret, row.sign_method) if row else None
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[appkey] = (now + APP_CACHE_TTL_SECS, creds)
    return creds


def clear_cache_for_testing() -> None:
    with _cache_lock:
        _cache.clear()
