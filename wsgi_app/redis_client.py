"""Redis clients for both sides of the process, real or embedded.

``REDIS_URL=redis://...`` gives real clients: a sync ``redis.Redis`` for the
Flask side and a ``redis.asyncio.Redis`` for the native Tornado handlers.
(``redis.asyncio`` is the maintained successor of aioredis, which no longer
imports on Python 3.11+.)

``REDIS_URL=memory://`` (the embedded default) gives fakeredis clients that all
share one in-process server, so a publish from a Flask worker thread reaches an
async subscriber on the event loop, as it would through a real Redis.

Real clients survive a Redis restart without failing a request: a command that
meets a connection error or timeout (a pooled connection that died with the old
server) reconnects and is retried ``REDIS_RETRIES`` times with a short
exponential backoff; the async pool also replaces a connection that shows EOF
when it is checked out. While Redis is down the retries end within
``~REDIS_BACKOFF_CAP_SECS * REDIS_RETRIES`` and the caller answers 503 (521).
"""

from __future__ import annotations

import threading

import fakeredis
import redis
import redis.asyncio as aioredis
import redis.asyncio.retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from wsgi_app import timeouts
from wsgi_app.config import EMBEDDED_REDIS_URL

ASYNC_MAX_CONNECTIONS = 32
ASYNC_POOL_WAIT_SECS = timeouts.REDIS_POOL_WAIT_SECS
REDIS_RETRIES = timeouts.REDIS_ATTEMPTS - 1
REDIS_BACKOFF_BASE_SECS = 0.02
REDIS_BACKOFF_CAP_SECS = 0.2
RETRIED_ERRORS = [RedisConnectionError, RedisTimeoutError]

_fake_server: fakeredis.FakeServer | None = None
_fake_server_lock = threading.Lock()


def is_embedded(url: str) -> bool:
    return url == EMBEDDED_REDIS_URL or url.startswith("memory:")


def shared_fake_server() -> fakeredis.FakeServer:
    """The one in-process Redis stand-in of this process."""
    global _fake_server
    with _fake_server_lock:
        if _fake_server is None:
            _fake_server = fakeredis.FakeServer()
        return _fake_server


def make_sync_client(url: str) -> redis.Redis:
    if is_embedded(url):
        return fakeredis.FakeRedis(server=shared_fake_server(), decode_responses=True)
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=timeouts.REDIS_REPLY_TIMEOUT_SECS,
        health_check_interval=30,
        retry=Retry(_backoff(), REDIS_RETRIES),
        retry_on_error=RETRIED_ERRORS,
    )


def make_async_client(url: str) -> aioredis.Redis:
    """The event loop's client: at most ``ASYNC_MAX_CONNECTIONS`` sockets, shared by every
    request of the process (thousands of polls authenticating at once wait for a free
    connection, up to ``ASYNC_POOL_WAIT_SECS``, instead of failing or opening thousands).
    Every reply within ``REDIS_REPLY_TIMEOUT_SECS`` (the pub/sub listener passes its own
    wait to ``get_message``)."""
    if is_embedded(url):
        return fakeredis.FakeAsyncRedis(server=shared_fake_server(), decode_responses=True)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=ASYNC_MAX_CONNECTIONS,
        timeout=ASYNC_POOL_WAIT_SECS,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=timeouts.REDIS_REPLY_TIMEOUT_SECS,
        health_check_interval=30,
        retry=redis.asyncio.retry.Retry(_backoff(), REDIS_RETRIES),
        retry_on_error=RETRIED_ERRORS,
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=REDIS_BACKOFF_CAP_SECS, base=REDIS_BACKOFF_BASE_SECS)
