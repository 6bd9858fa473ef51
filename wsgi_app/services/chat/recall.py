"""Recall: a sender takes a message back within ``RECALL_WINDOW_SECS`` of sending it.

One transaction: both users' rows locked in id order (as a send locks them, so
a recall and a send of the pair run one after the other), the message deleted,
both contact rows pointed at the pair's newest remaining message and the
recipient's unread count recounted, and a durable ``recall`` event for the
recipient and for the sender (the sender's other devices remove it too). Its
media file is deleted after the commit. The message's own ``message`` event is
then skipped by the stream (it renders from the message row), so a device that
had not polled it yet never sees it; ``chat/poll``, history and the contacts
list no longer have it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, select, update

from wsgi_app import transactions
from wsgi_app.errors import OBJECT_NOT_FOUND, RECALL_WINDOW_PASSED, ApiError
from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.user import User
from wsgi_app.services.chat import media as chat_media
from wsgi_app.services.events import producer
from wsgi_app.services.upload_files import remove_after_commit
from wsgi_app.timeutil import utcnow

RECALL_WINDOW_SECS = 120

_LOCK_PAIR = (
    select(User.id).where(User.id.in_([bindparam("a"), bindparam("b")])).order_by(User.id).with_for_update()
)


def recall(sender_id: int, message_id: int) -> dict[str, Any]:
    """Take back message ``message_id`` of ``sender_id``; ``{"msg_id", "peer_id"}``."""
    message = db.session.get(Message, message_id)
    if message is None or message.sender_id != sender_id:
        raise ApiError(OBJECT_NOT_FOUND, "no such message of yours")
    peer_id = message.recipient_id
    db.session.expunge(message)

    def work() -> dict[str, Any]:
        db.session.execute(_LOCK_PAIR, {"a": sender_id, "b": peer_id}).all()
        row = db.session.execute(
            select(Message.created_at, Message.media_filename).where(Message.id == message_id)
        ).first()
        if row is None:
            raise ApiError(OBJECT_NOT_FOUND, "no such message of yours")
        if (utcnow() - row.created_at).total_seconds() > RECALL_WINDOW_SECS:
            raise ApiError(RECALL_WINDOW_PASSED)
        db.session.execute(delete(Message).where(Message.id == message_id))
        _repoint_contacts(sender_id, peer_id)
        payload = {"msg_id": message_id}
        producer.append_many(
            [
                producer.NewEvent(peer_id, "recall", {**payload, "peer_id": sender_id}),
                producer.NewEvent(sender_id, "recall", {**payload, "peer_id": peer_id}),
            ]
        )
        if row.media_filename:
            remove_after_commit([chat_media.media_path(row.media_filename)])
        return {"msg_id": message_id, "peer_id": peer_id}

    return transactions.write(work, what="chat recall")


def _repoint_contacts(sender_id: int, peer_id: int) -> None:
    """Both sides' last message: the pair's newest remaining one; the recipient's unread count."""
    in_pair = ((Message.sender_id == sender_id) & (Message.recipient_id == peer_id)) | (
        (Message.sender_id == peer_id) & (Message.recipient_id == sender_id)
    )
    newest = db.session.execute(select(func.max(Message.id)).where(in_pair)).scalar()
    unread = db.session.execute(
        select(func.count())
        .select_from(Message)
        .where(Message.sender_id == sender_id, Message.recipient_id == peer_id, Message.read_at.is_(None))
    ).scalar_one()
    for user_id, other_id in ((sender_id, peer_id), (peer_id, sender_id)):
        values: dict[str, Any] = {"last_message_id": newest}
        if user_id == peer_id:
            values["unread_count"] = unread
        db.session.execute(
            update(Contact)
            .where(Contact.user_id == user_id, Contact.peer_id == other_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
