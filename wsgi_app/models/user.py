"""Users (profile) and their sign-in tokens."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import Model
from wsgi_app.models.types import Identifier
from wsgi_app.timeutil import utcnow

# authority: who may see the profile.
AUTHORITY_HIDDEN = 0
AUTHORITY_EVERYONE = 1
AUTHORITY_CONTACTS = 2


class User(Model):
    __tablename__ = "users"
    # Ids are never reused, not even on SQLite after the newest account is deleted.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    nickname: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(120))
    gender: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    sexual: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    height: Mapped[int | None] = mapped_column(SmallInteger)
    education: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    salary: Mapped[int | None] = mapped_column(SmallInteger)
    emotion: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    birthday: Mapped[date | None] = mapped_column(Date)
    avatar: Mapped[str | None] = mapped_column(String(255))
    authority: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=AUTHORITY_EVERYONE)
    vip_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Privacy (``/api/user/privacy``): read receipts sent and seen; presence shown and seen.
    read_receipts: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default="1")
    presence_hidden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="0")
    # Last sign of life (a waiting poll, a request), written at most once a minute.
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The VIP expiry already announced as a ``vip`` event (the expiry job's bookmark).
    vip_expiry_announced_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class AuthToken(Model):
    """A sign-in token, stored only as the SHA-256 of the 256-bit secret handed out."""

    __tablename__ = "auth_tokens"
    __table_args__ = (Index("ix_auth_tokens_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    token_hash: Mapped[str] = mapped_column(Identifier(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
