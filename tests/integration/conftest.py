"""Fixtures of the integration suite: own MariaDB and Redis processes, the stack from the repo's configs.

One stack per session (``deploy.Stack`` with free ports and a temporary run
directory): nginx in front of ``INTEGRATION_PROCESSES`` supervised Tornado
processes, on a MariaDB and a Redis that only this suite uses, so a test may
stop them. Every figure a scenario measures goes to ``FIGURES`` and is written
to ``<run dir>/figures.json`` at the end (docs/operations.md quotes them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import Stack, StackSettings
from tests.conftest import REPO_ROOT
from tests.integration.figures import FIGURES
from tests.integration.services import MariaDBServer, RedisServer, free_port_range
from wsgi_app.services.auth.applications import AppCredentials

INTEGRATION_PROCESSES = 3

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Data, configs and logs of this run; kept (and named) when a test failed."""
    path = Path(tempfile.mkdtemp(prefix="dt-integration-"))
    path.chmod(0o755)
    yield path
    if request.session.testsfailed:
        print(f"\nintegration run directory kept for its logs: {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb_server(workdir: Path) -> Iterator[MariaDBServer]:
    server = MariaDBServer(workdir)
    server.install()
    FIGURES["mariadb_install_secs"] = round(server.install_secs, 2)
    FIGURES["mariadb_start_secs"] = round(server.start(), 2)
    server.create_database()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack_env(workdir: Path, redis_server: RedisServer, mariadb_server: MariaDBServer) -> dict[str, str]:
    return {
        "DATABASE_URL": mariadb_server.url,
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": "integration-secret-key-not-for-production",
        "PAYMENT_PROVIDER_SECRET": "integration-payment-secret-not-for-production",
        "SMS_ECHO_CODE": "1",
        "SMS_IP_PER_HOUR": "100000",
        "SMS_IP_PER_DAY": "100000",
        "LONGPOLL_TIMEOUT_SECS": "5",
        "WSGI_THREADS": "4",
        "NATIVE_THREADS": "2",
        "UPLOAD_FOLDER": str(workdir / "uploads"),
        "INSTANCE_PATH": str(workdir / "instance"),
        "PYTHONPATH": str(REPO_ROOT),
        "LOG_LEVEL": "WARNING",
    }


def _flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi_app", *args],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def stack_creds(stack_env: dict[str, str]) -> AppCredentials:
    _flask(stack_env, "db", "upgrade")
    _flask(stack_env, "products", "seed")
    made = json.loads(
        _flask(stack_env, "apps", "create", "--name", "integration", "--sign-method", "hmac-sha256")
    )
    return AppCredentials(
        id=0, appkey=made["appkey"], secret=made["appsecret"], sign_method=made["sign_method"]
    )


@pytest.fixture(scope="session")
def stack(workdir: Path, stack_env: dict[str, str], stack_creds: AppCredentials) -> Iterator[Stack]:
    if not shutil.which(StackSettings().nginx_bin) and not Path(StackSettings().nginx_bin).exists():
        pytest.fail(
            "nginx is not installed (scripts/integration.sh installs it: apt-get install nginx-light)"
        )
    settings = StackSettings.from_env(
        processes=INTEGRATION_PROCESSES,
        first_port=free_port_range(INTEGRATION_PROCESSES),
        nginx_port=free_port_range(1),
        bind_address="127.0.0.1",
        run_dir=workdir / "run",
        upload_dir=workdir / "uploads",
        python=sys.executable,
        env=stack_env,
    )
    stack = Stack(settings)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        (settings.run_dir / "figures.json").write_text(json.dumps(FIGURES, indent=2))
        print("\nintegration figures:", json.dumps(FIGURES, indent=2))
        print(f"logs: {settings.log_dir} and {settings.nginx_prefix}/logs")
