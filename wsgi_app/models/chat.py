"""Chat messages and the per-user contact list they maintain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import Model
from wsgi_app.models.types import BigId, Identifier
from wsgi_app.timeutil import utcnow


class Message(Model):
    """A chat message. Its id is the long-poll cursor: ids only grow."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_id"),
        Index("ix_messages_recipient_id", "recipient_id", "id"),
        Index("ix_messages_pair_id", "sender_id", "recipient_id", "id"),
        Index("ix_messages_media_filename", "media_filename"),  # who may read a chat file
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    client_msg_id: Mapped[str] = mapped_column(Identifier(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False, default="text")
    body: Mapped[str | None] = mapped_column(Text)
    media_filename: Mapped[str | None] = mapped_column(Identifier(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)


class Contact(Model):
    """``user_id`` has talked with ``peer_id``: last message and unread count, per side."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_user_updated", "user_id", "updated_at"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_message_id: Mapped[int | None] = mapped_column(BigId)
    unread_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
