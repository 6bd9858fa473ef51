"""Application (appkey, secret, active) changes told to every process through Redis pub/sub.

Each process caches credentials for ``applications.APP_CACHE_TTL_SECS``
(:mod:`wsgi_app.services.auth.applications`). An admin change (``flask apps disable``,
``apps rotate-secret``, ``apps enable``) runs in its own process: after its commit it
publishes the appkey on :func:`changes_channel`, and every server process's listener
(``async_handlers.waiters.WakeListener``, the process's one pub/sub connection) forgets that
appkey at once (:func:`forget_changed`).

Invariants:

- the publish comes after the commit, so a process that forgets the appkey reads the new row;
- a listener that subscribes again after losing its subscription forgets every cached
  credential (:func:`forget_all`): a change published meanwhile is not lost. (Between a
  process's start and its first subscription, a few milliseconds, the TTL is the bound.)
- when Redis cannot take the publish, the change still holds everywhere within the TTL
  (the admin command says so); the local cache is cleared either way.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from wsgi_app.extensions import redis_client
from wsgi_app.services.auth import applications

log = logging.getLogger("datingtoday.applications")

CHANGES_CHANNEL_PREFIX = "apps:changed"


def changes_channel(client: Any) -> str:
    """The channel of application changes for the database a (sync or async) client uses."""
    db_number = client.connection_pool.connection_kwargs.get("db", 0)
    return f"{CHANGES_CHANNEL_PREFIX}:{db_number}"


def announce_change(appkey: str) -> bool:
    """After the commit of a change to ``appkey``: forget it here and tell every process.

    True when Redis took the publish; False when it failed (logged): the other processes
    then follow within ``applications.APP_CACHE_TTL_SECS``."""
    applications.forget(appkey)
    client = redis_client()
    try:
        client.publish(changes_channel(client), appkey)
    except RedisError as err:
        log.warning(
            "application change of %s not published (%s); other processes follow within %.0fs",
            appkey,
            err,
            applications.APP_CACHE_TTL_SECS,
        )
        return False
    return True


def forget_changed(payload: str | bytes) -> None:
    """A listener's handler of one published change (the payload is the appkey)."""
    appkey = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    applications.forget(appkey)


def forget_all() -> None:
    """A listener's handler of a new subscription after a lost one: changes it may have missed."""
    applications.clear_cache()
