"""Which committed changes drop cached profile rows and list cards (:mod:`.cache`'s invariants).

Session listeners, registered when :mod:`wsgi_app.services.profile.cache` is
imported: they collect, per session, the users whose ``users`` or
``user_locations`` rows a flush or a Core statement changed (``ALL_USERS`` when a
statement's users cannot be told: no ``id ==`` / ``IN`` in its WHERE, a Core
``INSERT`` of positions, raw SQL naming ``users``), and the two sides of every
flushed ``Block``; after the outermost commit they invalidate those entries
(:func:`.cache.invalidate`) and make the blocked pairs' nearby state stop
counting; a rollback of the outermost transaction forgets them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, TextClause

from wsgi_app.models.location import UserLocation
from wsgi_app.models.social import Block
from wsgi_app.models.user import User
from wsgi_app.services.location import nearby_viewer
from wsgi_app.services.profile.cache import ALL_USERS, invalidate

_PENDING_KEY = "datingtoday_profile_cache_pending"
_PENDING_BLOCKS_KEY = "datingtoday_profile_cache_pending_blocks"
_USERS = User.__table__
_ID_COLUMNS = {_USERS.name: "id", UserLocation.__table__.name: "user_id"}
_RAW_USERS_WRITE = re.compile(r"^\s*(?:UPDATE|DELETE|INSERT|REPLACE)\b[^;]*\busers\b", re.IGNORECASE)


def _remember(session: Session, user_ids: Iterable[int]) -> None:
    session.info.setdefault(_PENDING_KEY, set()).update(user_ids)


def _copied_table(table: Any) -> str | None:
    """``users`` or ``user_locations`` (whose rows cached rows copy), else None.
    ORM statements carry annotated copies of the table and columns: compare by name."""
    name = getattr(table, "name", None)
    return name if name in _ID_COLUMNS else None


def _is_user_id(column: Any) -> bool:
    table = _copied_table(getattr(column, "table", None))
    return table is not None and getattr(column, "key", None) == _ID_COLUMNS[table]


def _ids_in_where(statement: Any, parameters: Mapping[str, Any]) -> set[int] | None:
    """The user ids a WHERE on ``users.id`` / ``user_locations.user_id`` names (``==`` or
    ``IN``, a value bound in the statement or given with its execution); None when it names none."""
    clause = getattr(statement, "whereclause", None)
    if not isinstance(clause, BinaryExpression) or not _is_user_id(clause.left):
        return None
    right = clause.right
    if not isinstance(right, BindParameter):
        return None
    value = right.value if right.value is not None else parameters.get(right.key)
    if clause.operator is operators.eq and value is not None:
        return {int(value)}
    if clause.operator is operators.in_op and value:
        return {int(item) for item in value}
    return None


@event.listens_for(Session, "do_orm_execute")
def _remember_statement(state: ORMExecuteState) -> None:
    statement = state.statement
    if isinstance(statement, TextClause):
        if _RAW_USERS_WRITE.match(statement.text):
            _remember(state.session, [ALL_USERS])
        return
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = _copied_table(getattr(statement, "table", None))
    if table is None:
        return
    if state.is_insert:
        if table == _USERS.name:
            return  # new users: no cached row can exist for an id not yet used
        _remember(state.session, [ALL_USERS])  # bulk positions (seeding): users unknown
        return
    parameters = state.parameters if isinstance(state.parameters, Mapping) else {}
    _remember(state.session, _ids_in_where(statement, parameters) or [ALL_USERS])


@event.listens_for(Session, "after_flush")
def _remember_flushed_users(session: Session, _flush_context: Any) -> None:
    # session.new / dirty / deleted still hold the flushed objects here.
    changed: set[int] = set()
    blocks: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, User) and obj.id is not None:
            changed.add(obj.id)
        elif isinstance(obj, UserLocation) and obj.user_id is not None:
            changed.add(obj.user_id)
        elif isinstance(obj, Block):
            blocks.update((obj.blocker_id, obj.blocked_id))
    if changed:
        _remember(session, changed)
    if blocks:
        session.info.setdefault(_PENDING_BLOCKS_KEY, set()).update(blocks)


@event.listens_for(Session, "after_commit")
def _invalidate_committed(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if pending:
        invalidate(pending)
    blocked = session.info.pop(_PENDING_BLOCKS_KEY, None)
    if blocked:
        nearby_viewer.forget(blocked)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, _previous_transaction: Any) -> None:
    if not session.in_transaction():  # the outermost rollback: nothing was committed
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_PENDING_BLOCKS_KEY, None)
