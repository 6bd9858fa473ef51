"""Redis clients for both sides of the process, real or embedded, direct or through Sentinel.

This module is the ONE factory of Redis connections of the product: the sync
client (Flask side), the ``redis.asyncio`` client (event loop, including its
pub/sub listener) and the decision whether the event loop's lean connection
(:mod:`async_handlers.redis_wire`) may be used all start from one
:class:`RedisTarget`, built from the app's config by :meth:`RedisTarget.from_config`.

``REDIS_URL=redis://...`` gives real clients: a sync ``redis.Redis`` for the
Flask side and a ``redis.asyncio.Redis`` for the native Tornado handlers.
(``redis.asyncio`` is the maintained successor of aioredis, which no longer
imports on Python 3.11+.)

``REDIS_SENTINELS=host:port,...`` (with ``REDIS_SENTINEL_MASTER``, the monitored
master's name) gives clients that find the primary through Redis Sentinel:
every new connection asks a sentinel for the current primary, a connection to a
primary that was demoted (``READONLY``) is dropped and retried on the new one,
and idle pooled connections are dropped when Sentinel names a new primary.
``REDIS_URL`` then supplies only the database number and credentials; its host
is not used. Without ``REDIS_SENTINELS`` nothing changes: one Redis, the
fastest path (the lean connection included).

``REDIS_URL=memory://`` (the embedded default) gives fakeredis clients that all
share one in-process server, so a publish from a Flask worker thread reaches an
async subscriber on the event loop, as it would through a real Redis.

Real clients survive a Redis restart or a Sentinel failover without failing
more than the requests of the switch itself: a command that meets a connection
error or timeout (a pooled connection that died with the old server) reconnects
and is retried ``REDIS_RETRIES`` times with a short exponential backoff; the
async pool also replaces a connection that shows EOF when it is checked out.
While no primary answers (Redis down; a killed primary not yet replaced by
Sentinel) the retries end within ``~REDIS_BACKOFF_CAP_SECS * REDIS_RETRIES``
and the caller answers 503 (521).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import fakeredis
import redis
import redis.asyncio as aioredis
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from wsgi_app import timeouts
from wsgi_app.config import DEFAULT_SENTINEL_MASTER, EMBEDDED_REDIS_URL

ASYNC_MAX_CONNECTIONS = 32
ASYNC_POOL_WAIT_SECS = timeouts.REDIS_POOL_WAIT_SECS
REDIS_RETRIES = timeouts.REDIS_ATTEMPTS - 1
REDIS_BACKOFF_BASE_SECS = 0.02
REDIS_BACKOFF_CAP_SECS = 0.2
RETRIED_ERRORS = [RedisConnectionError, RedisTimeoutError]
CONNECT_TIMEOUT_SECS = 2.0
HEALTH_CHECK_INTERVAL_SECS = 30
# A sentinel that does not answer this fast is skipped for the next one (master discovery).
SENTINEL_TIMEOUT_SECS = 0.5
DEFAULT_SENTINEL_PORT = 26379

_fake_server: fakeredis.FakeServer | None = None
_fake_server_lock = threading.Lock()


def is_embedded(url: str) -> bool:
    return url == EMBEDDED_REDIS_URL or url.startswith("memory:")


def parse_sentinels(items: str | list[str] | tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """``["10.0.0.1:26379", "redis-b"]`` (or the same comma-separated) ->
    ``(("10.0.0.1", 26379), ("redis-b", 26379))``."""
    if isinstance(items, str):
        items = [item for item in items.split(",") if item.strip()]
    addresses = []
    for item in items:
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        if not host or (port and not port.isdigit()):
            raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
        addresses.append((host, int(port) if port else DEFAULT_SENTINEL_PORT))
    return tuple(addresses)


@dataclass(frozen=True)
class RedisTarget:
    """Where this process's Redis is: one URL, or a Sentinel-monitored master.

    With ``sentinels`` the URL's host and port are not used (Sentinel names the
    primary); its database number, username and password are.
    """

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = DEFAULT_SENTINEL_MASTER
    sentinel_password: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RedisTarget:
        return cls(
            url=config.get("REDIS_URL") or EMBEDDED_REDIS_URL,
            sentinels=parse_sentinels(config.get("REDIS_SENTINELS") or ()),
            master_name=config.get("REDIS_SENTINEL_MASTER") or DEFAULT_SENTINEL_MASTER,
            sentinel_password=config.get("REDIS_SENTINEL_PASSWORD") or None,
        )

    @property
    def embedded(self) -> bool:
        return is_embedded(self.url) and not self.sentinels

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def lean_wire_url(self) -> str | None:
        """The URL the event loop's lean connection may dial directly; None when it must not
        (the embedded stand-in, or a Sentinel-managed primary whose address moves: then the
        coalesced round trips go through the ``redis.asyncio`` client, which follows it)."""
        return None if self.embedded or self.uses_sentinel else self.url

    def server_kwargs(self) -> dict[str, Any]:
        """Database and credentials from the URL (for Sentinel-managed connections)."""
        parts = urlsplit(self.url)
        path = parts.path.strip("/")
        kwargs: dict[str, Any] = {"db": int(path) if path.isdigit() else 0}
        if parts.username:
            kwargs["username"] = unquote(parts.username)
        if parts.password is not None:
            kwargs["password"] = unquote(parts.password)
        return kwargs

    def sentinel_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "socket_timeout": SENTINEL_TIMEOUT_SECS,
            "socket_connect_timeout": SENTINEL_TIMEOUT_SECS,
            "decode_responses": True,
        }
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs


def as_target(target: str | RedisTarget) -> RedisTarget:
    return target if isinstance(target, RedisTarget) else RedisTarget(url=target)


def shared_fake_server() -> fakeredis.FakeServer:
    """The one in-process Redis stand-in of this process."""
    global _fake_server
    with _fake_server_lock:
        if _fake_server is None:
            _fake_server = fakeredis.FakeServer()
        return _fake_server


def make_sync_client(target: str | RedisTarget) -> redis.Redis:
    target = as_target(target)
    if target.embedded:
        return fakeredis.FakeRedis(server=shared_fake_server(), decode_responses=True)
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECS,
        "socket_timeout": timeouts.REDIS_REPLY_TIMEOUT_SECS,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECS,
        "retry": Retry(_backoff(), REDIS_RETRIES),
        "retry_on_error": RETRIED_ERRORS,
    }
    if target.uses_sentinel:
        sentinel = redis.sentinel.Sentinel(target.sentinels, sentinel_kwargs=target.sentinel_kwargs())
        client: redis.Redis = sentinel.master_for(target.master_name, **options, **target.server_kwargs())
        return client
    return redis.Redis.from_url(target.url, **options)


class BlockingSentinelConnectionPool(
    redis.asyncio.sentinel.SentinelConnectionPool, aioredis.BlockingConnectionPool
):
    """Sentinel's pool (connections dial the primary Sentinel names) that, like the direct
    client's ``BlockingConnectionPool``, makes a caller wait for a free connection instead of
    failing when all ``max_connections`` are in use. Both parents are redis-py's public
    classes; ``tests/test_redis_sentinel.py`` checks both behaviours on the pinned version."""


def make_async_client(target: str | RedisTarget) -> aioredis.Redis:
    """The event loop's client: at most ``ASYNC_MAX_CONNECTIONS`` sockets, shared by every
    request of the process (thousands of polls authenticating at once wait for a free
    connection, up to ``ASYNC_POOL_WAIT_SECS``, instead of failing or opening thousands).
    Every reply within ``REDIS_REPLY_TIMEOUT_SECS`` (the pub/sub listener passes its own
    wait to ``get_message``)."""
    target = as_target(target)
    if target.embedded:
        return fakeredis.FakeAsyncRedis(server=shared_fake_server(), decode_responses=True)
    options: dict[str, Any] = {
        "max_connections": ASYNC_MAX_CONNECTIONS,
        "timeout": ASYNC_POOL_WAIT_SECS,
        "decode_responses": True,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECS,
        "socket_timeout": timeouts.REDIS_REPLY_TIMEOUT_SECS,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECS,
        "retry": redis.asyncio.retry.Retry(_backoff(), REDIS_RETRIES),
        "retry_on_error": RETRIED_ERRORS,
    }
    if target.uses_sentinel:
        client: aioredis.Redis = async_sentinel(target).master_for(
            target.master_name,
            connection_pool_class=BlockingSentinelConnectionPool,
            **options,
            **target.server_kwargs(),
        )
        return client  # owns its pool: aclose() closes it
    pool = aioredis.BlockingConnectionPool.from_url(target.url, **options)
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it


def async_sentinel(target: RedisTarget) -> redis.asyncio.sentinel.Sentinel:
    """A client of the target's sentinels (master discovery), for the event loop."""
    return redis.asyncio.sentinel.Sentinel(target.sentinels, sentinel_kwargs=target.sentinel_kwargs())


PrimaryLocator = Callable[[], Awaitable[tuple[str, int]]]


def primary_locator(target: str | RedisTarget) -> PrimaryLocator | None:
    """For a Sentinel target: a coroutine function answering where the primary is now
    (raises ``MasterNotFoundError``, a ``ConnectionError``, while none is); None otherwise."""
    target = as_target(target)
    if not target.uses_sentinel:
        return None
    sentinel = async_sentinel(target)

    async def locate() -> tuple[str, int]:
        host, port = await sentinel.discover_master(target.master_name)
        return str(host), int(port)

    return locate


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=REDIS_BACKOFF_CAP_SECS, base=REDIS_BACKOFF_BASE_SECS)
