"""Calling applications: each has an appkey, a secret and a signing method."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from wsgi_app.extensions import Model
from wsgi_app.models.types import Identifier
from wsgi_app.timeutil import utcnow

SIGN_METHOD_MD5_LEGACY = "md5-legacy"
SIGN_METHOD_HMAC_SHA256 = "hmac-sha256"
SIGN_METHODS = (SIGN_METHOD_MD5_LEGACY, SIGN_METHOD_HMAC_SHA256)


class Application(Model):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    appkey: Mapped[str] = mapped_column(Identifier(32), unique=True, nullable=False)
    secret: Mapped[str] = mapped_column(String(64), nullable=False)
    sign_method: Mapped[str] = mapped_column(String(16), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
