"""Sign-in tokens: 256 random bits handed out once, stored only as their SHA-256.

Lookups go through a short Redis cache (``auth:tok:<hash>``) so a busy client
costs one Redis GET per request -- pipelined with the nonce by the request check
(:mod:`wsgi_app.services.auth.core`); :func:`lookup_in_database` is the miss
path. Cache fills use ``SET NX`` and revocation overwrites the entry with a
"revoked" marker that outlives any fill, so a lookup racing a logout can never
re-validate the token. Keys are fixed-size hashes and every entry expires
(negative ones after ``NEGATIVE_CACHE_SECS``), so made-up tokens cannot grow
Redis beyond (request rate x 30 s) entries of ~100 bytes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from wsgi_app.extensions import db, redis_client
from wsgi_app.models.user import AuthToken
from wsgi_app.timeutil import utcnow

TOKEN_CACHE_MAX_SECS = 300
NEGATIVE_CACHE_SECS = 30
MAX_TOKEN_LENGTH = 128
REVOKED_MARKER = "-"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    user_id: int
    expires_at: datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def cache_key(token_hash: str) -> str:
    return f"auth:tok:{token_hash}"


def issue_token(user_id: int) -> IssuedToken:
    """Create a token for ``user_id``; the caller commits the session."""
    token = secrets.token_hex(32)
    expires_at = utcnow() + timedelta(seconds=current_app.config["TOKEN_TTL_SECS"])
    db.session.add(AuthToken(user_id=user_id, token_hash=hash_token(token), expires_at=expires_at))
    return IssuedToken(token, user_id, expires_at)


def lookup_in_database(token_hash: str) -> int | None:
    """The user owning a live token, from the database; fills the cache (``SET NX``).

    Called only when the cache had no entry (the revoked marker counts as one).
    """
    client = redis_client()
    row = db.session.execute(
        db.select(AuthToken.user_id, AuthToken.expires_at, AuthToken.revoked_at).where(
            AuthToken.token_hash == token_hash
        )
    ).one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        client.set(cache_key(token_hash), REVOKED_MARKER, ex=NEGATIVE_CACHE_SECS, nx=True)
        return None
    ttl = min(TOKEN_CACHE_MAX_SECS, int((row.expires_at - now).total_seconds()))
    if ttl > 0:
        client.set(cache_key(token_hash), str(row.user_id), ex=ttl, nx=True)
    return int(row.user_id)


def revoke(token_hash: str) -> None:
    """Revoke one token; the caller commits."""
    db.session.execute(
        db.update(AuthToken)
        .where(AuthToken.token_hash == token_hash, AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    _mark_revoked([token_hash])


def _mark_revoked(token_hashes: list[str]) -> None:
    pipe = redis_client().pipeline(transaction=False)
    for token_hash in token_hashes:
        pipe.set(cache_key(token_hash), REVOKED_MARKER, ex=TOKEN_CACHE_MAX_SECS + 5)
    pipe.execute()


def forget_all_for_user(user_id: int) -> None:
    """Delete every token of a user (account deletion); the caller commits."""
    hashes = (
        db.session.execute(db.select(AuthToken.token_hash).where(AuthToken.user_id == user_id))
        .scalars()
        .all()
    )
    if hashes:
        _mark_revoked(list(hashes))
    db.session.execute(db.delete(AuthToken).where(AuthToken.user_id == user_id))
