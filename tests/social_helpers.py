"""Helpers for the profile and social tests: images, direct database tweaks."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from PIL import Image

from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.social import Block, Visit
from wsgi_app.models.user import User
from wsgi_app.services.profile import cache as profile_cache
from wsgi_app.timeutil import utcnow


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 6), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    mode = "RGB" if fmt in ("JPEG", "WEBP") else "RGBA"
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def upload_file(content: bytes, name: str = "face.png") -> tuple[io.BytesIO, str]:
    """A file value for ``api.post(..., files={"photo": upload_file(...)})`` over the Flask client."""
    return (io.BytesIO(content), name)


def set_user_fields(app: Flask, user_id: int, **fields: Any) -> None:
    """A change made outside the services: it says what it changed, as a service does."""
    with app.app_context():

        def change() -> None:
            db.session.execute(db.update(User).where(User.id == user_id).values(**fields))
            profile_cache.invalidate_after_commit([user_id])

        transactions.write(change)


def get_user_row(app: Flask, user_id: int) -> dict[str, Any]:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return {c.name: getattr(user, c.name) for c in User.__table__.columns}


def make_vip(app: Flask, user_id: int, days: int = 30) -> None:
    set_user_fields(app, user_id, vip_expires_at=utcnow() + timedelta(days=days))


def block(app: Flask, blocker_id: int, blocked_id: int) -> None:
    with app.app_context():
        db.session.add(Block(blocker_id=blocker_id, blocked_id=blocked_id))
        db.session.commit()


def add_visit(
    app: Flask, visitor_id: int, visited_id: int, when: datetime | None = None, count: int = 1
) -> None:
    when = when or utcnow()
    with app.app_context():
        db.session.add(
            Visit(
                visitor_id=visitor_id,
                visited_id=visited_id,
                visit_count=count,
                first_visited_at=when,
                last_visited_at=when,
            )
        )
        db.session.commit()


def visit_rows(app: Flask, visited_id: int) -> list[Visit]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Visit).where(Visit.visited_id == visited_id)).scalars())
        db.session.expunge_all()
        return rows
