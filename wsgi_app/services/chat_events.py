"""The one producer of chat wake-ups: "user X has new messages", published after commit.

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

log = logging.getLogger("datingtoday.chat")

WAKE_CHANNEL_PREFIX = "chat:wake"
LATEST_MESSAGE_KEY_PREFIX = "chat:latest"


def latest_message_key(user_id: int) -> str:
    """Redis key holding the highest message id sent to ``user_id``.

    Written by the send path after commit, before the wake-up is published
    (only ever raised, never lowered); read by the long-poll to skip the
    database when the cursor is already there. A missing key means "unknown:
    read the database", never "nothing new".
    """
    return f"{LATEST_MESSAGE_KEY_PREFIX}:{user_id}"


# Raise-only: SET the key only when the new id is higher (one atomic round trip).
_RAISE_LATEST_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
"""


def raise_latest_message_id(client: Any, user_id: int, message_id: int) -> None:
    """Raise ``latest_message_key(user_id)`` to ``message_id`` (never lowers it).

    The same step :func:`announce_new_message` pipelines before its publish.
    """
    client.eval(_RAISE_LATEST_LUA, 1, latest_message_key(user_id), str(message_id))


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
    """Raise the recipient's latest-message key, then wake their long-polls on every
    process, in one pipelined round trip. Call only after the commit."""
    client = redis_client()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.eval(_RAISE_LATEST_LUA, 1, latest_message_key(recipient_id), str(message_id))
        pipe.publish(wake_channel(client), wake_payload(recipient_id, message_id))
        raised, _ = pipe.execute(raise_on_error=False)
        if isinstance(raised, Exception):  # a stale key would hide the message: make it unknown
            client.delete(latest_message_key(recipient_id))
    except redis.RedisError:
        # The message is stored; pollers find it on their next poll or catch-up wake.
        log.warning("could not announce message %s to user %s", message_id, recipient_id, exc_info=True)
