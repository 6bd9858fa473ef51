"""The data a case runs on: its own MariaDB database and Redis db, reset and seeded.

``BENCH_DATABASE_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306/dt_bench``)
and ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/5``) name them; the
database is dropped and re-created and the Redis db flushed (``FLUSHDB`` of that
one db only) by :func:`prepare`, so point them at nothing you want to keep.
``.ci/run`` points them at CI's own database and db.

:func:`prepare` migrates, seeds demo users (profiles with photos, labels,
visits, chats), creates one ``hmac-sha256`` application and signs in
``callers`` of the demo users whose profiles everyone may see (tokens issued by
the token service, as a login would). Callers' peers are other such users.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import pymysql
import redis
from flask import Flask
from flask_migrate import upgrade

from bench.common import BENCH_DIR
from bench.loadgen import Signer
from wsgi_app import create_app
from wsgi_app.config import engine_options, normalise_database_url
from wsgi_app.services.auth.core import NONCE_EPOCH_KEY

DEFAULT_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/dt_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
SECRET_KEY = "bench-only-secret"
INSTANCE_DIR = BENCH_DIR / "_instance"
SEED = 20261122


@dataclass(frozen=True)
class Caller:
    user_id: int
    token: str

    def params(self) -> dict[str, str]:
        return {"userId": str(self.user_id), "token": self.token}


@dataclass(frozen=True)
class Population:
    signer: Signer
    callers: list[Caller]
    peer_ids: list[int]


def database_url() -> str:
    return normalise_database_url(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def server_env(**extra: str) -> dict[str, str]:
    """Environment of a server under test: the bench's database and Redis, warnings-only logs."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url(),
        SECRET_KEY=SECRET_KEY,
        INSTANCE_PATH=str(INSTANCE_DIR),
        LOG_LEVEL="WARNING",
        WSGI_THREADS="8",
        PYTHONPATH=str(BENCH_DIR.parent),
    )
    env.update(extra)
    return env


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"refusing to recreate database {name!r}")
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()


def flush_redis() -> None:
    client = redis.Redis.from_url(redis_url())
    try:
        client.flushdb()
        # A fresh store, not a lost one: requests signed before the first check pass
        # (the nonce store's epoch, wsgi_app/services/auth/core.py).
        client.set(NONCE_EPOCH_KEY, "0")
    finally:
        client.close()


def bench_app() -> Flask:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url(),
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url(), pool_size=4),
            "REDIS_URL": redis_url(),
            "SECRET_KEY": SECRET_KEY,
            "UPLOAD_FOLDER": str(INSTANCE_DIR / "uploads"),
        }
    )


def prepare(demo_users: int, callers: int) -> Population:
    """A fresh database and Redis db with ``demo_users`` users, ``callers`` of them signed in."""
    from wsgi_app.demo import seed as demo_seed
    from wsgi_app.extensions import db
    from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256
    from wsgi_app.models.user import AUTHORITY_EVERYONE, User
    from wsgi_app.services.auth import applications, tokens

    recreate_database(database_url())
    flush_redis()
    app = bench_app()
    with app.app_context():
        upgrade(revision="heads")
        demo_seed.seed_demo(demo_users, seed=SEED)
        creds = applications.create_application("bench", SIGN_METHOD_HMAC_SHA256)
        query = db.select(User.id).where(User.authority == AUTHORITY_EVERYONE).order_by(User.id)
        visible = db.session.execute(query.limit(2 * callers)).scalars().all()
        if len(visible) < 2 * callers:
            raise RuntimeError(f"only {len(visible)} visible demo users for {callers} callers")
        caller_ids, peer_ids = visible[:callers], visible[callers:]
        issued = [tokens.issue_token(user_id) for user_id in caller_ids]
        db.session.commit()
        db.engine.dispose()
    return Population(
        signer=Signer(creds.appkey, creds.secret, creds.sign_method),
        callers=[Caller(t.user_id, t.token) for t in issued],
        peer_ids=list(peer_ids),
    )
