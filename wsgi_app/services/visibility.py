"""Who may see whose profile: blocks, then the owner's ``authority`` setting."""

from __future__ import annotations

from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact
from wsgi_app.models.user import AUTHORITY_CONTACTS, AUTHORITY_EVERYONE, User
from wsgi_app.services.blocks import blocked_either_way_clause, is_blocked_between


def is_contact(owner_id: int, viewer_id: int) -> bool:
    """True when ``owner_id`` has a conversation with ``viewer_id``."""
    return (
        db.session.execute(
            db.select(Contact.user_id).where(Contact.user_id == owner_id, Contact.peer_id == viewer_id)
        ).first()
        is not None
    )


def can_view_profile(viewer_id: int, owner: User) -> bool:
    if viewer_id == owner.id:
        return True
    if is_blocked_between(viewer_id, owner.id):
        return False
    if owner.authority == AUTHORITY_EVERYONE:
        return True
    if owner.authority == AUTHORITY_CONTACTS:
        return is_contact(owner.id, viewer_id)
    return False  # hidden


def listable_clause(viewer_id: int):  # type: ignore[no-untyped-def]
    """SQL condition on ``User`` for lists (hot, nearby, ...): only people visible to everyone,
    never the viewer, never anyone blocked either way."""
    return (
        (User.authority == AUTHORITY_EVERYONE)
        & (User.id != viewer_id)
        & blocked_either_way_clause(viewer_id, User.id)
    )
