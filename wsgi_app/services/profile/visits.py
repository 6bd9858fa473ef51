"""Profile visits ("who viewed me"): one folded row per (visitor, visited).

A visit bumps ``visit_count``, moves ``last_visited_at`` to now and marks the
row unread again. Everyone may read the summary counts; the list itself (who
and when) is for VIP members. Visitors blocked either way, and visitors whose
own profile the owner may not see, stay out of both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, bindparam, func, text, update

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.social import Visit
from wsgi_app.models.user import User
from wsgi_app.services.chat.contacts import peer_summary
from wsgi_app.services.events import producer as event_producer
from wsgi_app.services.profile.profiles import profile_data
from wsgi_app.services.profile.visibility import profile_visible_clause
from wsgi_app.services.social.blocks import blocked_either_way_clause, is_blocked_between
from wsgi_app.services.vip.status import is_vip
from wsgi_app.timeutil import format_wire_datetime, utcnow

# The visit upsert as text, built once: SQLAlchemy does not cache compiled upserts.
_VISIT_VALUES = """INSERT INTO visits
(visitor_id, visited_id, visit_count, first_visited_at, last_visited_at, is_read)
VALUES (:visitor, :visited, 1, :now, :now, 0)
"""
_VISIT_SQL = {
    "mysql": _VISIT_VALUES + "ON DUPLICATE KEY UPDATE visit_count = visit_count + 1, "
    "last_visited_at = VALUES(last_visited_at), is_read = 0",
    "sqlite": _VISIT_VALUES + "ON CONFLICT (visitor_id, visited_id) DO UPDATE SET "
    "visit_count = visits.visit_count + 1, last_visited_at = excluded.last_visited_at, is_read = 0",
}
_VISIT_STATEMENTS = {
    dialect: transactions.single_statement(text(sql).bindparams(bindparam("now", type_=DateTime())))
    for dialect, sql in _VISIT_SQL.items()
}
_VISIT_STATEMENTS["mariadb"] = _VISIT_STATEMENTS["mysql"]
_REPEAT_UNREAD = transactions.single_statement(
    text(
        "UPDATE visits SET visit_count = visit_count + 1, last_visited_at = :now "
        "WHERE visitor_id = :visitor AND visited_id = :visited AND is_read = 0"
    ).bindparams(bindparam("now", type_=DateTime()))
)


def record_visit(visitor_id: int, visited_id: int, now: datetime | None = None) -> None:
    """Fold one view into the pair's row (never for yourself), committed at once.

    One atomic upsert on SQLite and MariaDB (``ON CONFLICT`` / ``ON DUPLICATE
    KEY``), so parallel first visits of one pair neither fail nor deadlock. A
    repeat view of a visitor the owner has not read yet (the common case) is one
    autocommitted ``UPDATE ... WHERE is_read = 0`` (``transactions.write_statement``:
    its row lock lasts only as long as the statement). When it finds no such row,
    the view makes the visitor new to the owner (the first, or the first since
    the owner read the list): the upsert and the owner's ``visit`` event
    (:func:`_visit_payload`) are one transaction.
    """
    if visitor_id == visited_id:
        return
    statement = _VISIT_STATEMENTS[db.session.get_bind().dialect.name]
    params = {"visitor": visitor_id, "visited": visited_id, "now": now or utcnow()}
    if transactions.write_statement(_REPEAT_UNREAD, params, what="visit").rowcount:
        return  # already new to the owner: nothing to tell

    def work() -> None:
        db.session.execute(statement, params)
        event_producer.append(visited_id, "visit", _visit_payload(visitor_id, visited_id))

    transactions.write(work, what="visit")


def _visit_payload(visitor_id: int, owner_id: int) -> dict[str, Any]:
    """The ``visit`` event: the new-visitor count; who, for a VIP owner who may see the visitor
    (the rules of the list itself: :func:`visitor_page`)."""
    payload: dict[str, Any] = {"new_visitors": summary(owner_id)["new_visitors"]}
    owner = db.session.get(User, owner_id)
    if owner is not None and is_vip(owner):
        visitor = db.session.execute(
            db.select(User).where(User.id == visitor_id, profile_visible_clause(owner_id))
        ).scalar_one_or_none()
        if visitor is not None and not is_blocked_between(owner_id, visitor_id):
            payload["visitor"] = peer_summary(visitor)
    return payload


def _visible_visitor_clause(owner_id: int) -> ColumnElement[bool]:
    """Visitors ``owner_id`` may see: not blocked either way, and whose own profile is visible."""
    return blocked_either_way_clause(owner_id, Visit.visitor_id) & profile_visible_clause(owner_id)


def summary(owner_id: int) -> dict[str, Any]:
    row = db.session.execute(
        db.select(
            func.count(Visit.id),
            func.coalesce(func.sum(Visit.visit_count), 0),
            func.coalesce(func.sum(db.case((Visit.is_read.is_(False), 1), else_=0)), 0),
        )
        .join(User, User.id == Visit.visitor_id)
        .where(Visit.visited_id == owner_id, _visible_visitor_clause(owner_id))
    ).one()
    return {"total_visitors": int(row[0]), "total_visits": int(row[1]), "new_visitors": int(row[2])}


def visitor_page(owner_id: int, page: int, page_count: int) -> dict[str, Any]:
    """Newest visitor first (latest visit time, then row id)."""
    base = (
        db.select(Visit, User)
        .join(User, User.id == Visit.visitor_id)
        .where(Visit.visited_id == owner_id, _visible_visitor_clause(owner_id))
    )
    total = db.session.execute(db.select(func.count()).select_from(base.subquery())).scalar_one()
    rows = db.session.execute(
        base.order_by(Visit.last_visited_at.desc(), Visit.id.desc())
        .offset((page - 1) * page_count)
        .limit(page_count)
    ).all()
    items = [
        {
            "visitor": profile_data(visitor),
            "visit_count": visit.visit_count,
            "first_visited_at": format_wire_datetime(visit.first_visited_at),
            "last_visited_at": format_wire_datetime(visit.last_visited_at),
            "is_new": not visit.is_read,
        }
        for visit, visitor in rows
    ]
    return {"total": total, "list": items, "has_next": page * page_count < total}


def mark_all_read(owner_id: int) -> int:
    """Mark every visit of ``owner_id`` read; returns how many were new."""
    result = transactions.write_statement(
        update(Visit)
        .where(Visit.visited_id == owner_id, Visit.is_read.is_(False))
        .values(is_read=True)
        .execution_options(synchronize_session=False),
        what="visits read",
    )
    return result.rowcount
