"""The chat send's statements, built once (building them per call was most of its Python time).

``LOCK_AND_CHECK`` is the send transaction's first statement: both users' rows
``FOR UPDATE``, in id order (so sends A->B and B->A cannot deadlock on them),
each row carrying the check columns: blocked either way, and the id of a message
the sender already stored under this ``clientMsgId``. Those are scalar subqueries:
consistent, non-locking reads (MariaDB and MySQL lock only the outer query's
rows; checked: inserting a ``blocks`` row or locking the ``messages`` row of
other users is not blocked by it), so the statement takes no gap locks on
``blocks`` or ``messages``. A peer id that does not exist leaves its row out.

``SEND_CHECK`` is the same check without locks, for the paths outside the
transaction (a send with a file checks before writing it; the retry after a
duplicate-key race looks for the winner). The transaction's statements are
:class:`~wsgi_app.raw_statements.RawStatement`: a bare PyMySQL cursor on MariaDB.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_

from wsgi_app.extensions import db
from wsgi_app.models.chat import Message
from wsgi_app.models.social import Block
from wsgi_app.models.user import User
from wsgi_app.raw_statements import RawStatement

_users, _messages = User.__table__, Message.__table__


def _blocked_either_way(user_a: Any, user_b: Any) -> ColumnElement[bool]:
    """Either user blocked the other, as two primary-key probes of ``blocks``
    (``EXISTS(a->b) OR EXISTS(b->a)``): the same answer as
    :func:`~wsgi_app.services.social.blocks.is_blocked_between_clause`, whose one ``EXISTS``
    with an ``OR`` inside MariaDB runs as a range scan of an index (measured: ~40 us more of
    the server's CPU per send)."""

    def one_way(blocker: Any, blocked: Any) -> ColumnElement[bool]:
        probe = db.select(Block.blocker_id).where(Block.blocker_id == blocker, Block.blocked_id == blocked)
        return probe.exists()

    return or_(one_way(user_a, user_b), one_way(user_b, user_a))


SEND_CHECK = db.select(
    db.select(_users.c.id).where(_users.c.id == bindparam("peer")).scalar_subquery(),
    _blocked_either_way(bindparam("sender"), bindparam("peer")),
    db.select(_messages.c.id)
    .where(_messages.c.sender_id == bindparam("sender"), _messages.c.client_msg_id == bindparam("cmid"))
    .scalar_subquery(),
)
LOCK_AND_CHECK = RawStatement(
    db.select(
        _users.c.id,
        _blocked_either_way(bindparam("sender"), bindparam("peer")),
        db.select(_messages.c.id)
        .where(_messages.c.sender_id == bindparam("sender"), _messages.c.client_msg_id == bindparam("cmid"))
        .scalar_subquery(),
    )
    .where(_users.c.id.in_([bindparam("sender"), bindparam("peer")]))
    .order_by(_users.c.id)
    .with_for_update()
)
INSERT_COLUMNS = (
    "sender_id",
    "recipient_id",
    "client_msg_id",
    "kind",
    "body",
    "media_filename",
    "created_at",
)
INSERT_MESSAGE = RawStatement(_messages.insert().values({name: bindparam(name) for name in INSERT_COLUMNS}))
