"""Calling applications: creation and a bounded in-process credentials cache.

Invariants of the cache (issue 11, memory exhaustion without credentials):

- only appkeys of the format appkeys have (:data:`APPKEY_PATTERN`, at most
  :data:`APPKEY_MAX_CHARS` characters) are ever looked up or cached: callers
  check the format first (:func:`wsgi_app.services.auth.core.required_appkey`);
- hits and misses live in two separate LRU maps, each capped in entries
  (:data:`APP_CACHE_MAX_ENTRIES`, :data:`APP_MISS_CACHE_MAX_ENTRIES`), so
  with the key length bound both are bounded in bytes, and a flood of made-up
  appkeys can evict only other misses, never a real application;
- an admin change is published to every server process, which forgets that
  appkey at once (:mod:`wsgi_app.services.auth.application_changes`); entries
  also live only :data:`APP_CACHE_TTL_SECS`, the bound when a publish is lost.

The cache is shared by the worker threads and the event loop (a lock guards it;
a lookup never does I/O under it).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from wsgi_app.extensions import db
from wsgi_app.models.application import SIGN_METHODS, Application

APP_CACHE_TTL_SECS = 30.0
APPKEY_MAX_CHARS = 32  # the column's width
APPKEY_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{APPKEY_MAX_CHARS}}}")
APP_CACHE_MAX_ENTRIES = 256
APP_MISS_CACHE_MAX_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """What a signature check needs; a plain value, safe to share across threads."""

    id: int
    appkey: str
    secret: str
    sign_method: str


class _BoundedTtlCache:
    """An LRU map of at most ``max_entries`` values, each fresh for ``ttl_secs``."""

    def __init__(self, max_entries: int, ttl_secs: float) -> None:
        self.max_entries = max_entries
        self.ttl_secs = ttl_secs
        self._entries: OrderedDict[str, tuple[float, AppCredentials | None]] = OrderedDict()

    def get(self, key: str, now: float) -> tuple[bool, AppCredentials | None]:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    def put(self, key: str, value: AppCredentials | None, now: float) -> None:
        self._entries[key] = (now + self.ttl_secs, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)


_hits = _BoundedTtlCache(APP_CACHE_MAX_ENTRIES, APP_CACHE_TTL_SECS)
_misses = _BoundedTtlCache(APP_MISS_CACHE_MAX_ENTRIES, APP_CACHE_TTL_SECS)
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


def cached_credentials(appkey: str) -> tuple[bool, AppCredentials | None]:
    """``(known, credentials)`` from the cache alone (no I/O: safe on the event loop)."""
    now = time.monotonic()
    with _cache_lock:
        known, creds = _hits.get(appkey, now)
        if not known:
            known, creds = _misses.get(appkey, now)
    return known, creds


def find_credentials(appkey: str) -> AppCredentials | None:
    """The active application with this appkey (the cache, else the database).

    ``appkey`` must already match :data:`APPKEY_PATTERN`; anything else is refused
    here too, so no caller can put an unbounded key in the cache.
    """
    if not APPKEY_PATTERN.fullmatch(appkey):
        return None
    known, creds = cached_credentials(appkey)
    if known:
        return creds
    row = db.session.execute(
        db.select(Application).where(Application.appkey == appkey, Application.is_active.is_(True))
    ).scalar_one_or_none()
    creds = AppCredentials(row.id, row.appkey, row.secret, row.sign_method) if row else None
    with _cache_lock:
        (_hits if creds is not None else _misses).put(appkey, creds, time.monotonic())
    return creds


def cache_sizes() -> tuple[int, int]:
    """``(hits, misses)`` held now (tests check the bound)."""
    with _cache_lock:
        return len(_hits), len(_misses)


def forget(appkey: str) -> None:
    """Forget one appkey's cached credentials (hit or miss) in this process."""
    with _cache_lock:
        _hits.discard(appkey)
        _misses.discard(appkey)


def clear_cache() -> None:
    """Forget every cached credential of this process (after an admin change, and between tests)."""
    with _cache_lock:
        _hits.clear()
        _misses.clear()
