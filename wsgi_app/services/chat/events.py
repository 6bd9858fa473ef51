"""The one producer of chat wake-ups: "user X has new messages", announced after commit.

An announcement is one pipelined Redis round trip: raise the recipient's
latest-message-id key (raise-only, with a TTL; ``EVALSHA``), then publish the
wake-up. If Redis lacks the script, the key is raised and the wake-up published
again right after (a duplicate wake-up only makes polls look again).

Redis pub/sub only *wakes* long-polls; it never carries the only copy of a
message (messages live in the database and polls read them by cursor). So a
wake-up that is lost (Redis down, no listener) costs latency, never a message:
the next poll, or the listener's catch-up wake after it reconnects, finds it.

The channel name includes the Redis database number, so deployments (or test
runs) sharing one Redis server on different databases do not wake each other.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from wsgi_app.extensions import redis_client
from wsgi_app.services.redis_scripts import LuaScript

log = logging.getLogger("datingtoday.chat")

WAKE_CHANNEL_PREFIX = "chat:wake"
LATEST_MESSAGE_KEY_PREFIX = "chat:latest"
# Every write refreshes it; bounds how long a value left behind by a failed write can live.
LATEST_MESSAGE_TTL_SECS = 600

# KEYS[1] = latest-message key, ARGV = message id, ttl seconds. Sets the key to the id
# only if that is higher than what it holds (ids from concurrent senders may arrive out
# of order); always refreshes the TTL. Returns the value the key holds afterwards.
_RAISE_LATEST_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local new = tonumber(ARGV[1])
if new > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
  return new
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return current
"""


_RAISE_LATEST = LuaScript(_RAISE_LATEST_LUA)


def latest_message_key(user_id: int) -> str:
    """Redis key holding the highest message id sent to ``user_id``.

    Written by the send path after commit, before the wake-up is published
    (only ever raised, never lowered; :func:`announce_new_message`); read by the
    long-poll to skip the database when the cursor is already there. A missing
    key means "unknown: read the database", never "nothing new". It expires
    after ``LATEST_MESSAGE_TTL_SECS`` without a send.
    """
    return f"{LATEST_MESSAGE_KEY_PREFIX}:{user_id}"


def wake_channel(client: Any) -> str:
    """The wake-up channel for the database a (sync or async) Redis client uses."""
    db_number = client.connection_pool.connection_kwargs.get("db", 0)
    return f"{WAKE_CHANNEL_PREFIX}:{db_number}"


def wake_payload(user_id: int, message_id: int) -> str:
    return json.dumps({"user_id": user_id, "msg_id": message_id}, separators=(",", ":"))


def user_id_from_payload(payload: str | bytes) -> int | None:
    """The user to wake, or None for a malformed payload (ignored, never fatal)."""
    try:
        value = json.loads(payload)["user_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def announce_new_message(recipient_id: int, message_id: int) -> None:
    """Raise ``recipient_id``'s latest-message key, then wake their long-polls on every process.

    Call only after the commit. One pipelined round trip: the raise-only script
    first, then the publish, so a woken poll finds the key already raised. If
    that fails the key is deleted (best effort): a poll trusts the key to skip
    the database, so a stale-low value must not stay; the TTL bounds it even if
    the delete fails too (or the process dies between commit and here).
    """
    client = redis_client()
    key = latest_message_key(recipient_id)
    try:
        channel, payload = wake_channel(client), wake_payload(recipient_id, message_id)
        pipe = client.pipeline(transaction=False)
        _RAISE_LATEST.queue(pipe, [key], [message_id, LATEST_MESSAGE_TTL_SECS])
        pipe.execute_command("PUBLISH", channel, payload)
        raised, published = pipe.execute(raise_on_error=False)
        if _RAISE_LATEST.is_missing(raised):
            # Redis lacked the script (restarted, flushed): the wake-up went out before the
            # key was raised, so a poll may have parked on the stale key since. Raise it,
            # then wake again (a second wake-up is harmless).
            _RAISE_LATEST.run(client, [key], [message_id, LATEST_MESSAGE_TTL_SECS])
            client.execute_command("PUBLISH", channel, payload)
        for answer in (raised, published):
            if isinstance(answer, Exception) and not _RAISE_LATEST.is_missing(answer):
                raise answer
    except redis.RedisError:
        # The message is stored; pollers find it on their next poll or catch-up wake.
        log.warning("could not announce message %s to user %s", message_id, recipient_id, exc_info=True)
        try:
            client.delete(key)
        except redis.RedisError:
            log.warning(
                "could not drop latest-message key of user %s (expires in %ss)",
                recipient_id,
                LATEST_MESSAGE_TTL_SECS,
            )
