"""What ``python -m deploy start`` checks before it starts anything, each failure one line.

    problems = preflight.check(settings)   # one line per reason the stack cannot start; [] when it can

Checked, in order, with the process environment the stack would run with
(``StackSettings.process_env()``):

- the programs: nginx (``DT_NGINX``, else on PATH), supervisord (the ``supervisor`` package
  of the interpreter that runs ``deploy``), the interpreter of the processes (``DT_PYTHON``);
- the ports: every process port and nginx's, free on the bind address (skipped for a stack
  that is already running: its own processes hold them);
- the settings a process would refuse to start with (``check_production_secrets`` and
  ``check_timeout_rule``: the same lines ``tornado_server.py`` logs), and the embedded Redis
  with more than one process (the in-process stand-in is per process: long-polls would not
  wake across them);
- the database and Redis, reached once each with a short timeout, named in the same one-line
  causes ``flask db upgrade`` gives (``wsgi_app.cli.database.describe_database_error``).

Invariant: nothing here starts, writes or changes anything; every problem found is reported
(not only the first), so one run tells the operator everything to fix.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deploy.settings import StackSettings

NGINX_INSTALL_HINT = "apt-get install nginx-light, or set DT_NGINX to its path"


@contextlib.contextmanager
def process_environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` as the processes will have it, for the app's own readers of it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _executable(path: str) -> bool:
    found = shutil.which(path) if os.sep not in path else path
    return bool(found) and os.access(str(found), os.X_OK) and Path(str(found)).is_file()


def check_programs(settings: StackSettings) -> list[str]:
    problems = []
    if not _executable(settings.nginx_bin):
        problems.append(f"nginx not found at {settings.nginx_bin}: {NGINX_INSTALL_HINT}")
    if importlib.util.find_spec("supervisor") is None:
        problems.append("supervisord not found (the supervisor package): run ./scripts/bootstrap.sh")
    if not _executable(settings.python):
        problems.append(f"the processes' interpreter {settings.python} is missing (DT_PYTHON)")
    return problems


def port_in_use(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the servers bind: a port in TIME_WAIT only is free for them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return True
    return False


def check_ports(settings: StackSettings) -> list[str]:
    taken = [p for p in settings.ports if port_in_use(settings.bind_address, p)]
    problems = [
        f"port {port} on {settings.bind_address} is already in use (process {i + 1} of "
        f"{settings.processes}, DT_FIRST_PORT={settings.first_port}): stop what listens there "
        "or choose other ports"
        for i, port in enumerate(settings.ports)
        if port in taken
    ]
    if port_in_use(settings.bind_address, settings.nginx_port):
        problems.append(
            f"port {settings.nginx_port} on {settings.bind_address} is already in use (nginx, "
            "DT_NGINX_PORT): stop what listens there or choose another"
        )
    return problems


def process_config(settings: StackSettings) -> dict[str, Any]:
    """The Flask configuration a process of this stack would read from its environment."""
    from wsgi_app.config import config_from_env, instance_path_from_env

    with process_environment(settings.process_env()):
        return config_from_env(instance_path_from_env())


def check_settings(settings: StackSettings, config: dict[str, Any]) -> list[str]:
    from wsgi_app.config import InsecureConfigError, check_production_secrets, check_timeout_rule
    from wsgi_app.redis_client import RedisTarget

    problems = []
    for check in (check_production_secrets, check_timeout_rule):
        try:
            check(config)
        except InsecureConfigError as err:  # TimeoutRuleError included
            problems.append(str(err))
    if RedisTarget.from_config(config).embedded and settings.processes > 1:
        problems.append(
            f"REDIS_URL is {config['REDIS_URL']} (the in-process stand-in) but the stack runs "
            f"{settings.processes} processes: they need one shared Redis (REDIS_URL=redis://...)"
        )
    return problems


def check_database(config: dict[str, Any]) -> list[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from wsgi_app.cli.database import describe_database_error

    url = config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        return []  # a file: the processes create it (flask db upgrade migrates it)
    engine = create_engine(url)  # wsgi_app.db_connect bounds the connect (a few seconds)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        return [describe_database_error(exc, url)]
    finally:
        engine.dispose()
    return []


def describe_redis_error(exc: Exception, target: Any) -> str:
    """One line, as ``describe_database_error`` gives for the database."""
    import redis

    if target.uses_sentinel:
        where = (
            "the primary "
            + repr(target.master_name)
            + " through the sentinels "
            + ",".join(f"{host}:{port}" for host, port in target.sentinels)
        )
        setting = "REDIS_SENTINELS"
    else:
        parts = urlsplit(target.url)
        where = f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
        setting = "REDIS_URL"
    if isinstance(exc, redis.AuthenticationError):
        return f"Redis at {where} refused the password: check {setting}"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"cannot connect to Redis at {where}: is redis-server running? ({setting})"
    reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return f"Redis error at {where}: {reason} ({setting})"


def check_redis(config: dict[str, Any]) -> list[str]:
    """Reached through the app's own client factory (one URL, or Sentinel's primary)."""
    import redis

    from wsgi_app.redis_client import RedisTarget, make_sync_client

    target = RedisTarget.from_config(config)
    if target.embedded:
        return []
    client = make_sync_client(target)
    try:
        client.ping()
    except redis.RedisError as exc:
        return [describe_redis_error(exc, target)]
    finally:
        client.close()
    return []


def check(settings: StackSettings, *, stack_running: bool = False) -> list[str]:
    """Every reason the stack cannot start now, one line each ([] when it can)."""
    problems = check_programs(settings)
    if not stack_running:
        problems += check_ports(settings)
    config = process_config(settings)
    problems += check_settings(settings, config)
    problems += check_database(config)
    problems += check_redis(config)
    return problems
