"""Contact rows: one per side of each conversation, with the last message and unread count.

``Contact(user_id=A, peer_id=B)`` is A's view of the conversation with B. A
send bumps both sides in one upsert (the recipient's unread count grows);
marking read sets the reader's unread count from the messages themselves, so
it cannot drift.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, DateTime, bindparam, func, text, update

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.user import User
from wsgi_app.raw_statements import RawStatement
from wsgi_app.services.events import producer as event_producer
from wsgi_app.services.social.blocks import blocked_either_way_clause
from wsgi_app.timeutil import format_wire_datetime, utcnow


def peer_summary(user: User) -> dict[str, Any]:
    """What a conversation list needs of the other person, nothing more."""
    return {"user_id": user.id, "nickname": user.nickname, "avatar": user.avatar, "gender": user.gender}


# The two-row upsert of a send, as text: SQLAlchemy does not cache the compiled form of its
# upsert constructs, and compiling one per send cost more CPU than the rest of the send path.
_BUMP_VALUES = """INSERT INTO contacts (user_id, peer_id, last_message_id, unread_count, updated_at)
VALUES (:sender, :recipient, :message_id, 0, :sent_at), (:recipient, :sender, :message_id, 1, :sent_at)
"""
_BUMP_SQL = {
    "mysql": _BUMP_VALUES + "ON DUPLICATE KEY UPDATE last_message_id = VALUES(last_message_id), "
    "updated_at = VALUES(updated_at), unread_count = unread_count + VALUES(unread_count)",
    "sqlite": _BUMP_VALUES + "ON CONFLICT (user_id, peer_id) DO UPDATE SET "
    "last_message_id = excluded.last_message_id, updated_at = excluded.updated_at, "
    "unread_count = contacts.unread_count + excluded.unread_count",
}
_BUMP_STATEMENTS = {
    dialect: RawStatement(text(sql).bindparams(bindparam("sent_at", type_=DateTime())))
    for dialect, sql in _BUMP_SQL.items()
}
_BUMP_STATEMENTS["mariadb"] = _BUMP_STATEMENTS["mysql"]


def bump_contacts(sender_id: int, recipient_id: int, message_id: int, sent_at: datetime) -> None:
    """Record message ``message_id`` as the last of the conversation on both sides, in one
    statement: the sender's side keeps its unread count, the recipient's grows by one.

    An upsert on the primary key ``(user_id, peer_id)`` (``ON DUPLICATE KEY UPDATE`` /
    ``ON CONFLICT``): it locks only the two rows themselves, never a gap, so first
    messages of unrelated pairs cannot deadlock each other (the former "UPDATE, and
    INSERT if no row" took gap locks that did). Runs in the send transaction, which
    holds both users' row locks.
    """
    params = {"sender": sender_id, "recipient": recipient_id, "message_id": message_id, "sent_at": sent_at}
    _BUMP_STATEMENTS[db.session.get_bind().dialect.name].run(params)


def receipts_on(user_a: int, user_b: int) -> bool:
    """Read receipts flow between two people only while both have them on (a person who turns
    them off neither sends nor sees them)."""
    flags = (
        db.session.execute(db.select(User.read_receipts).where(User.id.in_([user_a, user_b]))).scalars().all()
    )
    return len(flags) == len({user_a, user_b}) and all(flags)


def mark_read(user_id: int, peer_id: int, up_to_id: int | None) -> dict[str, int]:
    """Mark ``peer_id``'s messages to ``user_id`` read (all, or up to ``up_to_id``); commits.
    While both have read receipts on, ``peer_id`` gets a ``read`` event in the same transaction."""
    condition = (Message.recipient_id == user_id) & (Message.sender_id == peer_id) & Message.read_at.is_(None)
    marking = condition if up_to_id is None else condition & (Message.id <= up_to_id)

    def work() -> tuple[int, int]:
        now = utcnow().replace(microsecond=0)
        newest_marked = db.session.execute(db.select(func.max(Message.id)).where(marking)).scalar()
        marked = cast(  # an UPDATE's result is a CursorResult
            CursorResult[Any],
            db.session.execute(
                update(Message)
                .where(marking)
                .values(read_at=now)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        if marked and newest_marked is not None and receipts_on(user_id, peer_id):
            payload = {
                "peer_id": user_id,
                "up_to_msg_id": int(newest_marked),
                "read_at": format_wire_datetime(now),
            }
            event_producer.append(peer_id, "read", payload)
        unread = db.session.execute(
            db.select(func.count()).select_from(Message).where(condition)
        ).scalar_one()
        db.session.execute(
            update(Contact)
            .where(Contact.user_id == user_id, Contact.peer_id == peer_id)
            .values(unread_count=unread)
            .execution_options(synchronize_session=False)
        )
        return int(marked or 0), int(unread)

    marked, unread = transactions.write(work, what="chat mark read")
    return {"peer_id": peer_id, "marked_count": marked, "unread_count": unread}


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
