"""Contact rows: one per side of each conversation, with the last message and unread count.

``Contact(user_id=A, peer_id=B)`` is A's view of the conversation with B. A
send bumps both sides (the recipient's unread count grows); marking read sets
the reader's unread count from the messages themselves, so it cannot drift.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update

from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.user import User
from wsgi_app.services.blocks import blocked_either_way_clause
from wsgi_app.timeutil import utcnow

PEER_SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["user_id", "nickname", "avatar", "gender"],
    "properties": {
        "user_id": {"type": "integer"},
        "nickname": {"type": ["string", "null"]},
        "avatar": {"type": ["string", "null"]},
        "gender": {"type": "integer"},
    },
}


def peer_summary(user: User) -> dict[str, Any]:
    """What a conversation list needs of the other person, nothing more."""
    return {"user_id": user.id, "nickname": user.nickname, "avatar": user.avatar, "gender": user.gender}


def bump_contact(user_id: int, peer_id: int, message: Message, unread_increment: int) -> None:
    """Record ``message`` as the last of ``user_id``'s conversation with ``peer_id``.

    Runs in the send transaction, which holds both users' row locks, so the
    insert cannot race with another send of the same pair.
    """
    result = db.session.execute(
        update(Contact)
        .where(Contact.user_id == user_id, Contact.peer_id == peer_id)
        .values(
            last_message_id=message.id,
            updated_at=message.created_at,
            unread_count=Contact.unread_count + unread_increment,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        db.session.add(
            Contact(
                user_id=user_id,
                peer_id=peer_id,
                last_message_id=message.id,
                unread_count=unread_increment,
                updated_at=message.created_at,
            )
        )
        db.session.flush()


def mark_read(user_id: int, peer_id: int, up_to_id: int | None) -> dict[str, int]:
    """Mark ``peer_id``'s messages to ``user_id`` read (all, or up to ``up_to_id``); commits."""
    condition = (Message.recipient_id == user_id) & (Message.sender_id == peer_id) & Message.read_at.is_(None)
    marked = db.session.execute(
        update(Message)
        .where(condition if up_to_id is None else condition & (Message.id <= up_to_id))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    unread = db.session.execute(db.select(func.count()).select_from(Message).where(condition)).scalar_one()
    db.session.execute(
        update(Contact)
        .where(Contact.user_id == user_id, Contact.peer_id == peer_id)
        .values(unread_count=unread)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return {"peer_id": peer_id, "marked_count": int(marked or 0), "unread_count": int(unread)}


def list_contacts(
    user_id: int, page: int, page_count: int
) -> tuple[int, list[tuple[Contact, User, Message | None]]]:
    """``(total, rows)`` of the user's conversations, newest first, without blocked peers."""
    where = (Contact.user_id == user_id) & blocked_either_way_clause(user_id, Contact.peer_id)
    total = db.session.execute(db.select(func.count()).select_from(Contact).where(where)).scalar_one()
    rows = db.session.execute(
        db.select(Contact, User, Message)
        .join(User, User.id == Contact.peer_id)
        .outerjoin(Message, Message.id == Contact.last_message_id)
        .where(where)
        .order_by(Contact.last_message_id.desc(), Contact.peer_id.desc())
        .limit(page_count)
        .offset((page - 1) * page_count)
    ).all()
    return int(total), [(contact, peer, message) for contact, peer, message in rows]
