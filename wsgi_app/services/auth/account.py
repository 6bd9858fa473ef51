"""Account deletion: everything about a person goes, in one transaction.

Removed: the user row and profile, photos (files once the commit succeeded),
labels, visits both ways, location (row and geo entry), blocks both ways,
contacts and messages with their media files, sign-in tokens. Kept, anonymised:
orders (``user_id`` set to NULL, for the books) and reports by or about the
person (for the moderators). The phone is free to register again as a new user.
"""

from __future__ import annotations

import logging

from sqlalchemy import or_

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.social import Block, Report, UserLabel, Visit
from wsgi_app.models.vip import Order
from wsgi_app.services.auth import tokens
from wsgi_app.services.chat import media as chat_media
from wsgi_app.services.location import nearby_viewer
from wsgi_app.services.location.positions import forget_location
from wsgi_app.services.profile import cache as profile_cache
from wsgi_app.services.profile import profiles
from wsgi_app.services.profile.photos import delete_all_photos_for_user
from wsgi_app.services.upload_files import remove_after_commit, upload_path

log = logging.getLogger("datingtoday.account")


def delete_account(user_id: int) -> None:
    """Delete ``user_id`` and what belongs to them; commits once, or leaves everything as it was."""
    profiles.get_user(user_id)  # 501 for an unknown user
    transactions.write(lambda: _delete_rows(user_id), what="account deletion")
    log.info("account %d deleted", user_id)


def _delete_rows(user_id: int) -> None:
    """The deletion transaction (repeatable: transactions.write retries it)."""
    user = profiles.get_user(user_id)
    profile_cache.invalidate_after_commit([user_id])
    # Database-only steps first; the steps that also touch Redis (nearby cell cache,
    # token cache) come last, so a failure before them leaves Redis untouched.
    delete_all_photos_for_user(user_id)  # files go only once the commit succeeded
    db.session.execute(db.delete(UserLabel).where(UserLabel.user_id == user_id))
    db.session.execute(db.delete(Visit).where(or_(Visit.visitor_id == user_id, Visit.visited_id == user_id)))
    their_blocks = or_(Block.blocker_id == user_id, Block.blocked_id == user_id)
    peers = db.session.execute(db.select(Block.blocker_id, Block.blocked_id).where(their_blocks)).all()
    nearby_viewer.forget_after_commit({person for pair in peers for person in pair})
    db.session.execute(db.delete(Block).where(their_blocks))
    db.session.execute(db.delete(Contact).where(or_(Contact.user_id == user_id, Contact.peer_id == user_id)))
    their_messages = or_(Message.sender_id == user_id, Message.recipient_id == user_id)
    media = [
        name
        for name in db.session.execute(
            db.select(Message.media_filename).where(their_messages, Message.media_filename.is_not(None))
        ).scalars()
        if name is not None  # the query has no NULLs; this tells the type checker
    ]
    # Chat files live in CHAT_MEDIA_FOLDER; older ones may still be in the uploads folder.
    remove_after_commit(path for name in media for path in (chat_media.media_path(name), upload_path(name)))
    db.session.execute(db.delete(Message).where(their_messages))
    db.session.execute(db.update(Order).where(Order.user_id == user_id).values(user_id=None))
    db.session.execute(db.update(Report).where(Report.reporter_id == user_id).values(reporter_id=None))
    db.session.execute(db.update(Report).where(Report.reported_id == user_id).values(reported_id=None))
    forget_location(user_id)
    tokens.forget_all_for_user(user_id)
    db.session.delete(user)
