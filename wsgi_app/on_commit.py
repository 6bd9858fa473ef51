"""Work that must happen after the current transaction commits: the one ``on_commit`` API.

A service that changes a user, a position, a block or a file says what it changed
where it changes it (:func:`on_commit`, :func:`collect_on_commit`), as Zulip's
``send_event_on_commit`` does; nothing reads statements afterwards to guess.

Invariants:

- a callback runs once, after the outermost commit of the session it was registered
  in, in registration order; registered outside a transaction (and outside
  ``transactions.write``) it runs at once;
- a rollback of the outermost transaction drops every pending callback (a retried
  ``transactions.write`` registers them again as it re-runs its work);
- :func:`collect_on_commit` merges the items of one name per transaction, so a
  transaction that changes many users invalidates them in one call;
- when a callback raises, the others still run and the first error is raised
  (a failed cache invalidation fails the request, after the commit);
- the session listeners that run them are registered by :func:`init_app` (called
  by ``create_app``), once per process, never as an import side effect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from wsgi_app.extensions import db
from wsgi_app.transactions import in_write

T = TypeVar("T")
_PENDING_KEY = "datingtoday_on_commit"
_COLLECTED_KEY = "datingtoday_on_commit_collected"


def on_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` after the current transaction commits (at once when none is open)."""
    session = db.session()
    if not (session.in_transaction() or in_write()):
        callback()
        return
    session.info.setdefault(_PENDING_KEY, []).append(callback)


def collect_on_commit(name: str, items: Iterable[T], apply: Callable[[set[T]], None]) -> None:
    """Add ``items`` to this transaction's set called ``name``; after the commit ``apply`` runs
    once with the whole set (at once with ``items`` when no transaction is open)."""
    session = db.session()
    if not (session.in_transaction() or in_write()):
        apply(set(items))
        return
    collected: dict[str, set[Any]] = session.info.setdefault(_COLLECTED_KEY, {})
    if name not in collected:
        collected[name] = set()
        batch = collected[name]
        on_commit(lambda: apply(batch))
    collected[name].update(items)


def _run_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    session.info.pop(_COLLECTED_KEY, None)
    first_error: BaseException | None = None
    for callback in pending or ():
        try:
            callback()
        except Exception as err:
            first_error = first_error or err
    if first_error is not None:
        raise first_error


def _drop_pending(session: Session, _previous_transaction: Any) -> None:
    if not session.in_transaction():  # the outermost rollback: nothing was committed
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_COLLECTED_KEY, None)


def init_app(app: Flask) -> None:
    """Register the session listeners that run and drop the callbacks (once per process)."""
    if not event.contains(Session, "after_commit", _run_pending):
        event.listen(Session, "after_commit", _run_pending)
        event.listen(Session, "after_soft_rollback", _drop_pending)
