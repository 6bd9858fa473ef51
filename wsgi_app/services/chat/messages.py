"""Chat: send (idempotent by client message id), history, the long-poll batch, contacts.

Ordering guarantee behind the long-poll cursor: a send locks both users' rows
before it inserts, so the messages *to one user* are inserted and committed
one after another, and their ids (which only grow) are allocated in commit
order. A poller that has seen id N can therefore never later find a committed
message to it with an id below N: reading ``id > cursor`` loses nothing.
(SQLite serialises writers anyway; on MariaDB this is the row lock.)

A send (text) is one transaction: ``BEGIN``, ONE locking read that takes both
users' row locks in id order and returns the check (peer exists, blocked either
way, an earlier message with this ``clientMsgId``: scalar subqueries, consistent
reads that lock nothing), the rate limit (Redis, once per send), the insert, both
contact rows in one upsert, ``COMMIT``; retried on deadlock, idempotent by the
unique ``(sender_id, client_msg_id)``. Then one pipelined Redis round trip
announces it (:mod:`wsgi_app.services.chat.events`). Five MariaDB and two Redis
round trips (it was six and two: the check ran as its own query before).

Rate-limit decision: a refused send (a replay of an earlier ``clientMsgId``, an
unknown peer, a block) does not count against the sender's limit, and a replay
is answered even at the limit, as before. So the rate limit runs after the check,
inside the transaction: the pair's row locks are held one Redis round trip
longer (~0.1 ms; the locks serialise only sends touching the same user). A
deadlock retry does not hit the limit again. A refused send costs ``BEGIN``, the
locking read and ``ROLLBACK``; an unknown peer id holds a gap lock on ``users``
for that long. A send with a file checks and rate-limits before the transaction
(the file is written before it and must not be written for a refused send); the
transaction checks again under the locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from flask import current_app
from sqlalchemy import Row, bindparam, func
from sqlalchemy.exc import IntegrityError

from wsgi_app import transactions
from wsgi_app.errors import BLOCKED, CONFLICT, PARAM_INVALID, USER_NOT_FOUND, ApiError
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.chat import Message
from wsgi_app.models.user import User
from wsgi_app.services import rate_limit
from wsgi_app.services.chat import contacts as chat_contacts
from wsgi_app.services.chat import events as chat_events
from wsgi_app.services.chat import media as chat_media
from wsgi_app.services.chat import send_statements as statements
from wsgi_app.services.events import producer as event_producer
from wsgi_app.services.profile.profiles import get_user
from wsgi_app.services.social.blocks import (
    blocked_either_way_clause,
    is_blocked_between,
)
from wsgi_app.services.upload_files import remove_files
from wsgi_app.timeutil import format_wire_datetime, utcnow

MESSAGE_KINDS = (chat_media.KIND_TEXT, chat_media.KIND_VOICE, chat_media.KIND_IMAGE)
MAX_TEXT_CHARS = 2000
CLIENT_MSG_ID_PATTERN = r"[A-Za-z0-9_\-:.]{1,64}"
MAX_PAGE_SIZE = 50
MAX_POLL_BATCH = 100


@dataclass(frozen=True)
class SentMessage:
    message: dict[str, Any]
    duplicate: bool


def message_data(message: Message | Row[Any]) -> dict[str, Any]:
    """The wire form of a message: an ORM ``Message`` or a Core row of ``messages``."""
    return {
        "msg_id": message.id,
        "client_msg_id": message.client_msg_id,
        "sender_id": message.sender_id,
        "recipient_id": message.recipient_id,
        "kind": message.kind,
        "content": message.body,
        "media_url": chat_media.media_url(message.media_filename),
        "created_at": format_wire_datetime(message.created_at),
        "read_at": format_wire_datetime(message.read_at),
    }


def _load_message(message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    assert message is not None  # messages are deleted only with their sender
    return message


def _replay(existing: Message, peer_id: int, kind: str) -> SentMessage:
    """A retried send: the stored message, announced again (the first announcement may have
    been lost with a crash right after its commit), unless the id was used for a different one."""
    if existing.recipient_id != peer_id or existing.kind != kind:
        raise ApiError(CONFLICT, "clientMsgId already used for a different message")
    chat_events.announce_new_message(existing.recipient_id, existing.id)
    return SentMessage(message_data(existing), duplicate=True)


def _check_content(kind: str, content: str | None, upload: IO[bytes] | None) -> str | None:
    text = (content or "").strip() or None
    if kind == chat_media.KIND_TEXT:
        if text is None:
            raise ApiError(PARAM_INVALID, "content: required for a text message")
        if upload is not None:
            raise ApiError(PARAM_INVALID, "file: not allowed on a text message")
    elif upload is None:
        raise ApiError(PARAM_INVALID, f"file: required for a {kind} message")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise ApiError(PARAM_INVALID, f"content: at most {MAX_TEXT_CHARS} characters")
    return text


# The poll's statement, built once, run on the session's Connection (no ORM execution layer).
_messages = Message.__table__
_MESSAGES_AFTER = (
    db.select(_messages)
    .where(
        _messages.c.recipient_id == bindparam("user"),
        _messages.c.id > bindparam("cursor"),
        blocked_either_way_clause(bindparam("user"), _messages.c.sender_id),
    )
    .order_by(_messages.c.id)
    .limit(bindparam("limit"))
)


def _send_check(sender_id: int, peer_id: int, client_msg_id: str) -> tuple[bool, bool, int | None]:
    """``(peer exists, blocked either way, id of the message already stored under
    client_msg_id)`` in one query, outside any transaction (it locks nothing)."""
    params = {"peer": peer_id, "sender": sender_id, "cmid": client_msg_id}
    row = db.session.connection().execute(statements.SEND_CHECK, params).one()
    return row[0] is not None, bool(row[1]), row[2]


def _refuse(peer_exists: bool, blocked: bool) -> None:
    if not peer_exists:
        raise ApiError(USER_NOT_FOUND)
    if blocked:
        raise ApiError(BLOCKED, "you cannot message this user")


class _Send:
    """One send's transaction (:func:`wsgi_app.transactions.write` may run it more than once)."""

    __slots__ = ("limit_checked", "values")

    def __init__(self, values: dict[str, Any], limit_checked: bool) -> None:
        self.values = values
        self.limit_checked = limit_checked

    def __call__(self) -> tuple[int, bool]:
        """``(message id, False)`` for a new message, ``(id, True)`` for an earlier one with
        this ``clientMsgId``. The pair lock and the check are ONE statement: both users' rows
        ``FOR UPDATE`` in id order, each with the check columns (scalar subqueries: consistent
        reads that lock nothing). Then, once per send, the rate limit; then the insert and
        both contact rows."""
        values = self.values
        sender_id, peer_id = values["sender_id"], values["recipient_id"]
        params = {"sender": sender_id, "peer": peer_id, "cmid": values["client_msg_id"]}
        rows = statements.LOCK_AND_CHECK.rows(params)
        existing_id = rows[0][2] if rows else None
        if existing_id is not None:
            return int(existing_id), True
        _refuse(any(row[0] == peer_id for row in rows), bool(rows and rows[0][1]))
        if not self.limit_checked:  # not again when a deadlock makes this run again
            self.limit_checked = True
            rate_limit.enforce(
                redis_client(), f"chat:send:{sender_id}", current_app.config["CHAT_SEND_LIMITS"], "messages"
            )
        message_id = statements.INSERT_MESSAGE.insert(values)
        chat_contacts.bump_contacts(sender_id, peer_id, message_id, values["created_at"])
        event_producer.append(peer_id, "message", ref_id=message_id)
        return message_id, False


def send_message(
    sender_id: int,
    peer_id: int,
    client_msg_id: str,
    kind: str,
    content: str | None,
    upload: IO[bytes] | None,
) -> SentMessage:
    """Store one message (once per ``client_msg_id``), commit, then announce it."""
    if peer_id == sender_id:
        raise ApiError(PARAM_INVALID, "peerId: you cannot message yourself")
    text = _check_content(kind, content, upload)
    stored = None
    if upload is not None:
        # A file is written before the transaction (never inside: it may run again), so the
        # check and the rate limit come first here, as a refused send must write no file.
        peer_exists, blocked, existing_id = _send_check(sender_id, peer_id, client_msg_id)
        if existing_id is not None:
            return _replay(_load_message(existing_id), peer_id, kind)
        _refuse(peer_exists, blocked)
        rate_limit.enforce(
            redis_client(), f"chat:send:{sender_id}", current_app.config["CHAT_SEND_LIMITS"], "messages"
        )
        stored = chat_media.store_media(kind, upload, sender_id)
    values: dict[str, Any] = {
        "sender_id": sender_id,
        "recipient_id": peer_id,
        "client_msg_id": client_msg_id,
        "kind": kind,
        "body": text,
        "media_filename": stored.filename if stored else None,
        "created_at": utcnow().replace(microsecond=0),
    }
    try:
        work = _Send(values, limit_checked=upload is not None)
        message_id, earlier = transactions.write(work, what="chat send")
    except IntegrityError:
        existing_id = _send_check(sender_id, peer_id, client_msg_id)[2]
        if stored:
            remove_files([stored.path])
        if existing_id is None:
            raise
        return _replay(_load_message(existing_id), peer_id, kind)  # a concurrent retry won
    except BaseException:
        if stored:
            remove_files([stored.path])
        raise
    if earlier:
        if stored:
            remove_files([stored.path])
        return _replay(_load_message(message_id), peer_id, kind)
    chat_events.announce_new_message(peer_id, message_id)
    message = {
        "msg_id": message_id,
        "client_msg_id": client_msg_id,
        "sender_id": sender_id,
        "recipient_id": peer_id,
        "kind": kind,
        "content": text,
        "media_url": chat_media.media_url(values["media_filename"]),
        "created_at": format_wire_datetime(values["created_at"]),
        "read_at": None,
    }
    return SentMessage(message, duplicate=False)


def history(user_id: int, peer_id: int, before_id: int | None, page_count: int) -> dict[str, Any]:
    """The conversation with ``peer_id``, newest first, ``page_count`` messages before ``before_id``."""
    get_user(peer_id)
    if is_blocked_between(user_id, peer_id):
        raise ApiError(BLOCKED, "conversation not available")
    rows: list[Message] = []
    for sender, recipient in ((user_id, peer_id), (peer_id, user_id)):
        query = db.select(Message).where(Message.sender_id == sender, Message.recipient_id == recipient)
        if before_id is not None:
            query = query.where(Message.id < before_id)
        rows.extend(db.session.execute(query.order_by(Message.id.desc()).limit(page_count + 1)).scalars())
    rows.sort(key=lambda m: m.id, reverse=True)
    page, has_more = rows[:page_count], len(rows) > page_count
    receipts = chat_contacts.receipts_on(user_id, peer_id)
    return {
        "list": [_seen_by(user_id, message_data(m), receipts) for m in page],
        "has_more": has_more,
        "next_before_id": page[-1].id if has_more else None,
    }


def latest_message_id_for(user_id: int) -> int:
    """The highest message id addressed to ``user_id`` (0 if none): a fresh poll cursor."""
    value = db.session.execute(
        db.select(func.max(Message.id)).where(Message.recipient_id == user_id)
    ).scalar_one()
    return int(value or 0)


def messages_after(user_id: int, cursor: int | None, limit: int) -> dict[str, Any]:
    """The long-poll batch: messages to ``user_id`` with id > ``cursor``, oldest first.

    Without a cursor: no messages, just the current cursor to start polling from.
    Messages from users blocked either way are left out. One prebuilt Core
    statement on the session's connection (a woken poll runs it; no ORM objects).
    """
    if cursor is None:
        return {"list": [], "cursor": latest_message_id_for(user_id), "has_more": False}
    params = {"user": user_id, "cursor": cursor, "limit": limit + 1}
    rows = db.session.connection().execute(_MESSAGES_AFTER, params).all()
    batch = rows[:limit]
    return {
        "list": [message_data(m) for m in batch],
        "cursor": batch[-1].id if batch else cursor,
        "has_more": len(rows) > limit,
    }


def _seen_by(viewer_id: int, message: dict[str, Any], receipts: bool) -> dict[str, Any]:
    """``message`` as ``viewer_id`` sees it: no read time on their own messages without read receipts."""
    if not receipts and message["sender_id"] == viewer_id:
        message["read_at"] = None
    return message


def contacts_page(user_id: int, page: int, page_count: int) -> dict[str, Any]:
    total, rows = chat_contacts.list_contacts(user_id, page, page_count)
    own_receipts = bool(db.session.execute(db.select(User.read_receipts).where(User.id == user_id)).scalar())
    return {
        "total": total,
        "list": [
            {
                "peer": chat_contacts.peer_summary(peer),
                "last_message": _seen_by(user_id, message_data(message), own_receipts and peer.read_receipts)
                if message is not None
                else None,
                "unread_count": contact.unread_count,
            }
            for contact, peer, message in rows
        ],
        "has_next": page * page_count < total,
    }
