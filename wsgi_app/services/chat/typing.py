"""Typing indicators: ephemeral ``typing`` events between people who may chat.

A ``start`` or ``stop`` goes to the peer's waiting event polls at once
(:func:`wsgi_app.services.events.producer.publish_ephemeral`; never stored).
Per sender and conversation at most one ``start`` (and one ``stop``) per
:data:`MIN_INTERVAL_SECS`: more is ``RATE_LIMITED`` with ``Retry-After``.
The receiver shows "typing" for ``TYPING_EXPIRES_SECS`` (15) after the last
``start`` unless a ``stop`` comes first (the event says ``expires_in``); the
same state is kept in Redis with that TTL, so a device that connects later asks
:func:`is_typing` instead of waiting for the next refresh.
Only between people who may chat: the peer exists and neither blocked the other.
"""

from __future__ import annotations

from flask import current_app

from wsgi_app.errors import BLOCKED, PARAM_INVALID, RATE_LIMITED, ApiError
from wsgi_app.extensions import redis_client
from wsgi_app.services.events import producer
from wsgi_app.services.profile.profiles import get_user
from wsgi_app.services.social.blocks import is_blocked_between
from wsgi_app.timeutil import format_wire_datetime, utcnow

STATES = ("start", "stop")
MIN_INTERVAL_SECS = 3


def _state_key(sender_id: int, peer_id: int) -> str:
    return f"typing:state:{sender_id}:{peer_id}"


def _limit_key(sender_id: int, peer_id: int, state: str) -> str:
    return f"typing:limit:{sender_id}:{peer_id}:{state}"


def _check_may_chat(sender_id: int, peer_id: int) -> None:
    if sender_id == peer_id:
        raise ApiError(PARAM_INVALID, "peerId: not yourself")
    get_user(peer_id)
    if is_blocked_between(sender_id, peer_id):
        raise ApiError(BLOCKED, "you cannot message this user")


def send_typing(sender_id: int, peer_id: int, state: str) -> dict[str, object]:
    """Tell ``peer_id`` that ``sender_id`` started or stopped typing to them."""
    _check_may_chat(sender_id, peer_id)
    expires = int(current_app.config["TYPING_EXPIRES_SECS"])
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.set(_limit_key(sender_id, peer_id, state), "1", nx=True, ex=MIN_INTERVAL_SECS)
    pipe.ttl(_limit_key(sender_id, peer_id, state))
    allowed, ttl = pipe.execute()
    if not allowed:
        retry = max(1, int(ttl or MIN_INTERVAL_SECS))
        raise ApiError(
            RATE_LIMITED, "typing: at most one per few seconds", headers={"Retry-After": str(retry)}
        )
    if state == "start":
        client.set(_state_key(sender_id, peer_id), "1", ex=expires)
    else:
        client.delete(_state_key(sender_id, peer_id))
    payload = {"peer_id": sender_id, "state": state, "expires_in": expires if state == "start" else 0}
    event = producer.ephemeral_event("typing", payload, format_wire_datetime(utcnow()) or "")
    producer.publish_ephemeral([peer_id], event)
    return {"peer_id": peer_id, "state": state, "expires_in": payload["expires_in"]}


def is_typing(viewer_id: int, peer_id: int) -> dict[str, object]:
    """Whether ``peer_id`` is typing to ``viewer_id`` now, and for how many more seconds."""
    _check_may_chat(viewer_id, peer_id)
    ttl = redis_client().ttl(_state_key(peer_id, viewer_id))
    typing = ttl is not None and int(ttl) > 0
    return {"peer_id": peer_id, "typing": typing, "expires_in": int(ttl) if typing else 0}
