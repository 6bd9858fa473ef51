"""Fixtures: the app, a signing client, signed-in users, and live Tornado servers.

By default the suite runs on the embedded default (a temporary SQLite file and
the in-process Redis stand-in). With ``DATABASE_URL`` and ``REDIS_URL`` set (as
``.ci/run`` does) it runs against those servers, and fails if they are down.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

from tests.helpers import ApiClient, FlaskTransport, HttpTransport, SignedInUser
from tests.integration.services import RedisServer, SentinelGroup
from wsgi_app import create_app
from wsgi_app.config import DEFAULT_SENTINEL_MASTER, TEST_SUITE_ENV, normalise_database_url
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256, SIGN_METHOD_MD5_LEGACY
from wsgi_app.services.auth import applications
from wsgi_app.services.auth.applications import AppCredentials
from wsgi_app.services.auth.core import NONCE_EPOCH_KEY

REPO_ROOT = Path(__file__).resolve().parent.parent
# Slow tests of processes, the browser or the deploy tooling whose outcome does not depend on the
# database and Redis under test: run in the embedded run, skipped in the MariaDB+Redis run of .ci/run.
once_per_ci_run = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="independent of the database and Redis under test: the embedded run covers it",
)
# Development secrets are allowed only in development mode; every app and process of the suite is one.
os.environ["DEV_MODE"] = "1"
# The suite and every server it starts may call ..._for_testing helpers (wsgi_app.config.require_test_suite).
os.environ[TEST_SUITE_ENV] = "1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("datingtoday")
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/test.sqlite3"
    return {
        "TESTING": True,
        "DEV_MODE": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        "REDIS_URL": os.environ.get("REDIS_URL") or "memory://",
        "SMS_GATEWAY": "memory",
        "SMS_ECHO_CODE": False,
        "UPLOAD_FOLDER": str(tmp / "uploads"),
        "CHAT_MEDIA_FOLDER": str(tmp / "chat-media"),
        "INSTANCE_DIR": str(tmp),
    }


@pytest.fixture(scope="session")
def migrated_database(base_config: dict[str, Any]) -> str:
    """Drop whatever is there and apply every migration, once per run."""
    app = create_app(base_config)
    with app.app_context():
        db.session.execute(text("SELECT 1"))  # fails loudly when the database is unreachable
        redis_client().ping()  # likewise for Redis
        db.reflect()
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        upgrade(revision="heads")
        db.engine.dispose()
    return base_config["SQLALCHEMY_DATABASE_URI"]


def _wipe(app: Flask) -> None:
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        redis_client().flushdb()
        # A store that has always remembered (no loss to fail safe from): see auth.core's epoch.
        redis_client().set(NONCE_EPOCH_KEY, "0")
        applications.clear_cache()


@pytest.fixture
def app(base_config: dict[str, Any], migrated_database: str) -> Iterator[Flask]:
    app = create_app(dict(base_config))
    _wipe(app)
    yield app
    _wipe(app)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


def make_application(app: Flask, sign_method: str = SIGN_METHOD_HMAC_SHA256) -> AppCredentials:
    with app.app_context():
        return applications.create_application(f"test-{sign_method}", sign_method)


@pytest.fixture
def creds(app: Flask) -> AppCredentials:
    return make_application(app, SIGN_METHOD_HMAC_SHA256)


@pytest.fixture
def legacy_creds(app: Flask) -> AppCredentials:
    return make_application(app, SIGN_METHOD_MD5_LEGACY)


@pytest.fixture
def api(client, creds: AppCredentials) -> ApiClient:
    return ApiClient(FlaskTransport(client), creds)


@pytest.fixture
def legacy_api(client, legacy_creds: AppCredentials) -> ApiClient:
    return ApiClient(FlaskTransport(client), legacy_creds)


@pytest.fixture
def sms_inbox(app: Flask) -> Callable[[str], str | None]:
    """Reads the last code the in-memory SMS gateway 'sent' to a phone."""
    return app.extensions["sms_gateway"].last_code


class AuthActions:
    """Signs people in through the real endpoints (Flask tutorial style)."""

    def __init__(self, api: ApiClient, sms_inbox: Callable[[str], str | None]) -> None:
        self.api = api
        self.sms_inbox = sms_inbox
        self._next_phone = 13800000000

    def login(self, phone: str | None = None) -> SignedInUser:
        if phone is None:
            self._next_phone += 1
            phone = str(self._next_phone)
        return self.api.sign_in(phone, self.sms_inbox)


@pytest.fixture
def auth(api: ApiClient, sms_inbox: Callable[[str], str | None]) -> AuthActions:
    return AuthActions(api, sms_inbox)


@pytest.fixture
def user(auth: AuthActions) -> SignedInUser:
    return auth.login()


@pytest.fixture
def alice(auth: AuthActions) -> SignedInUser:
    return auth.login()


@pytest.fixture
def bob(auth: AuthActions) -> SignedInUser:
    return auth.login()


@pytest.fixture
def carol(auth: AuthActions) -> SignedInUser:
    return auth.login()


# -- live servers -------------------------------------------------------------------


class LiveServer:
    """``tornado_server.TornadoService`` on a free port in a thread of this process
    (so it shares the app's database and the in-process Redis stand-in)."""

    def __init__(self, app: Flask) -> None:
        import asyncio

        from tornado_server import TornadoService

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.service: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop

            async def start() -> None:
                self.service = TornadoService(app, threads=4)
                self.service.listen(self.port)
                ready.set()
                await self.service.stopped.wait()

            loop.run_until_complete(start())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("live server did not start")

    def stop(self) -> None:
        import asyncio

        if self._loop is not None and self.service is not None:
            future = asyncio.run_coroutine_threadsafe(self.service.shutdown(drain_secs=5), self._loop)
            future.result(15)
        self._thread.join(10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def live_api(live_server: LiveServer, creds: AppCredentials) -> ApiClient:
    return ApiClient(HttpTransport(live_server.base_url), creds)


class ServerProcess:
    """``python tornado_server.py --port N`` as its own process, like supervisord runs it."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tornado_server.py"), "--port", str(self.port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "server exited early:\n" + (self.proc.stdout.read() if self.proc.stdout else "")
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server process did not start listening")

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def output(self) -> str:
        return self.proc.stdout.read() if self.proc.stdout else ""


@pytest.fixture
def server_env(base_config: dict[str, Any], migrated_database: str) -> dict[str, str]:
    """Environment for a server process sharing this run's database (and Redis, if real)."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": base_config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": base_config["REDIS_URL"],
            "SECRET_KEY": base_config["SECRET_KEY"],
            "SMS_ECHO_CODE": "1",
            "DEV_MODE": "1",
            "UPLOAD_FOLDER": base_config["UPLOAD_FOLDER"],
            "CHAT_MEDIA_FOLDER": base_config["CHAT_MEDIA_FOLDER"],
            "INSTANCE_PATH": base_config["INSTANCE_DIR"],
            "PYTHONPATH": str(REPO_ROOT),
            "WSGI_THREADS": "4",
        }
    )
    return env


@pytest.fixture
def spawn_server(server_env: dict[str, str]) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def spawn(**extra_env: str) -> ServerProcess:
        proc = ServerProcess({**server_env, **extra_env})
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        proc.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of the test's own on a free port (tests that stop or restart Redis)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def _module_sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel"), DEFAULT_SENTINEL_MASTER)
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def sentinel_group(_module_sentinel_group: SentinelGroup) -> SentinelGroup:
    """A primary, two healthy replicas and three sentinels (failover tests; shared by a module's
    tests, the nodes a test killed restarted as replicas before the next)."""
    _module_sentinel_group.heal()
    return _module_sentinel_group
