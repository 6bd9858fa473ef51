"""Set-up of the ``chat_send`` case: a fresh schema with users and tokens, and the servers
it drives (processes on their own ports, or the supervised stack behind nginx).

Invariant: every process started here is stopped by the ``ExitStack`` it was started
on, whatever happens to the measurement.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path


def services() -> tuple[str, str, Path | None]:
    """``(database URL, Redis URL, temporary directory)``: the bench's services, else the
    configured ones, else a temporary SQLite file and the in-process Redis stand-in."""
    db_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL") or "memory://"
    if db_url:
        return db_url, redis_url, None
    tmp = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    return f"sqlite:///{tmp}/bench.sqlite3", "memory://", tmp


def prepare(db_url: str, redis_url: str, users: int) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """Fresh schema, one signing application, ``users`` users with a token each."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from wsgi_app import create_app
    from wsgi_app.config import engine_options, normalise_database_url
    from wsgi_app.extensions import db
    from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256
    from wsgi_app.models.user import User
    from wsgi_app.services.auth import applications, tokens

    url = normalise_database_url(db_url)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url, 2),
            "REDIS_URL": redis_url,
        }
    )
    with app.app_context():
        db.reflect()
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        upgrade(revision="heads")
        creds = applications.create_application("bench-chat", SIGN_METHOD_HMAC_SHA256)
        rows = [User(phone=f"1770000{i:04d}", nickname=f"b{i}") for i in range(users)]
        db.session.add_all(rows)
        db.session.flush()
        issued = [tokens.issue_token(u.id) for u in rows]
        db.session.commit()
        people = [(t.user_id, t.token) for t in issued]
        db.engine.dispose()
    return {"appkey": creds.appkey, "secret": creds.secret, "sign_method": creds.sign_method}, people


def server_env(db_url: str, redis_url: str, root: Path, workdir: Path) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        INSTANCE_PATH=str(workdir),
        UPLOAD_FOLDER=str(workdir / "uploads"),
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(root),
    )


@dataclass
class Running:
    """Where the client sends (``ports``), and whose CPU is counted."""

    ports: list[int]
    server_pids: list[int]
    nginx_pids: list[int] = field(default_factory=list)


def start_direct(
    stack: ExitStack, db_url: str, redis_url: str, root: Path, workdir: Path, count: int
) -> Running:
    """``count`` processes, each its own port; the client spreads its connections over them."""
    servers = [start_server(db_url, redis_url, root, workdir, index) for index in range(count)]
    for proc, _ in servers:
        stack.callback(_stop, proc)
    return Running([port for _, port in servers], [proc.pid for proc, _ in servers])


def start_behind_nginx(
    stack: ExitStack, db_url: str, redis_url: str, root: Path, workdir: Path, count: int
) -> Running:
    """The supervised stack from the repo's configs (``deploy.stack``): every send through nginx."""
    from bench.realtime_servers import start_stack

    env = server_env(db_url, redis_url, root, workdir)
    ports, pids, nginx_pids, _ = start_stack(stack, env, count, workdir)
    return Running(ports, pids, nginx_pids)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(15)


def start_server(
    db_url: str, redis_url: str, root: Path, workdir: Path, index: int = 0
) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = server_env(db_url, redis_url, root, workdir)
    # One CPU per process in turn, as supervisord's consecutive ports give them (the
    # ports here are random: CPU_AFFINITY=auto could put two processes on one CPU).
    env["CPU_AFFINITY"] = str(sorted(os.sched_getaffinity(0))[index % len(os.sched_getaffinity(0))])
    proc = subprocess.Popen(
        [sys.executable, str(root / "tornado_server.py"), "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "server.log").open("w"),  # noqa: SIM115 (the child keeps it)
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).read()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start; see {workdir / 'server.log'}")
