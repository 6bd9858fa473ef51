"""Who may see whose profile: blocks, then the owner's ``authority`` setting.

``authority`` 2 ("only people I chat with") admits the people the owner has
written to. A stranger's message alone admits nobody: otherwise anyone could
unlock a contacts-only profile by sending one message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Exists, exists

from wsgi_app.extensions import db
from wsgi_app.models.chat import Message
from wsgi_app.models.user import AUTHORITY_CONTACTS, AUTHORITY_EVERYONE, User
from wsgi_app.services.social.blocks import blocked_either_way_clause, is_blocked_between


def wrote_to_clause(owner_id: Any, viewer_id: Any) -> Exists:
    """SQL: the owner (an id or a column) has sent at least one message to the viewer."""
    return exists().where(Message.sender_id == owner_id, Message.recipient_id == viewer_id)


def is_contact(owner_id: int, viewer_id: int) -> bool:
    """True when ``owner_id`` chats with ``viewer_id`` (has written to them)."""
    return bool(db.session.execute(db.select(wrote_to_clause(owner_id, viewer_id))).scalar())


def visible_by_authority(authority: int, blocked: bool, owner_wrote_to_viewer: bool) -> bool:
    """The rule itself, for a viewer other than the owner."""
    if blocked:
        return False
    if authority == AUTHORITY_EVERYONE:
        return True
    if authority == AUTHORITY_CONTACTS:
        return owner_wrote_to_viewer
    return False  # hidden


def can_view_profile(viewer_id: int, owner: User) -> bool:
    if viewer_id == owner.id:
        return True
    if is_blocked_between(viewer_id, owner.id):
        return False
    contact = owner.authority == AUTHORITY_CONTACTS and is_contact(owner.id, viewer_id)
    return visible_by_authority(owner.authority, False, contact)


def profile_visible_clause(viewer_id: int) -> ColumnElement[bool]:
    """SQL on ``User`` rows: profiles ``viewer_id`` may see by their owners' ``authority``
    (blocks are a separate clause, since lists block on different columns)."""
    return (User.authority == AUTHORITY_EVERYONE) | (
        (User.authority == AUTHORITY_CONTACTS) & wrote_to_clause(User.id, viewer_id)
    )


def listable_clause(viewer_id: int | ColumnElement[Any]) -> Any:
    """SQL condition on ``User`` for lists (hot, nearby, ...): only people visible to everyone,
    never the viewer, never anyone blocked either way."""
    return (
        (User.authority == AUTHORITY_EVERYONE)
        & (User.id != viewer_id)
        & blocked_either_way_clause(viewer_id, User.id)
    )
