"""``flask apps rotate-secret`` / ``apps disable`` take effect on every server process at once
(the change is published through Redis), not after the credentials cache's 30 s."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable

from tests.conftest import REPO_ROOT, ServerProcess
from tests.helpers import ApiClient, HttpTransport
from tests.integration.services import RedisServer
from wsgi_app.services.auth.applications import APP_CACHE_TTL_SECS, AppCredentials

# Well under the cache's TTL: a process that only waited for its entry to expire would fail.
FOLLOW_DEADLINE_SECS = 5.0
assert FOLLOW_DEADLINE_SECS < APP_CACHE_TTL_SECS / 3


def _apps_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi_app", "apps", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + FOLLOW_DEADLINE_SECS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _answers(servers: list[ServerProcess], creds: AppCredentials) -> list[tuple[int, int]]:
    replies = [ApiClient(HttpTransport(s.base_url), creds).get("/api/vip/products") for s in servers]
    return [(reply.status, reply.code) for reply in replies]


def test_rotate_and_disable_reach_every_process_at_once(
    spawn_server: Callable[..., ServerProcess],
    server_env: dict[str, str],
    own_redis: RedisServer,
    creds: AppCredentials,
) -> None:
    env = {**server_env, "REDIS_URL": own_redis.url}
    servers = [spawn_server(REDIS_URL=own_redis.url) for _ in range(2)]
    assert _answers(servers, creds) == [(200, 0), (200, 0)]  # both processes cached the secret

    rotated = json.loads(_apps_cli(env, "rotate-secret", creds.appkey))
    new = dataclasses.replace(creds, secret=rotated["appsecret"])
    assert _until(lambda: _answers(servers, creds) == [(401, 506), (401, 506)]), _answers(servers, creds)
    assert _answers(servers, new) == [(200, 0), (200, 0)]

    _apps_cli(env, "disable", creds.appkey)
    assert _until(lambda: _answers(servers, new) == [(401, 507), (401, 507)]), _answers(servers, new)

    _apps_cli(env, "enable", creds.appkey)
    assert _until(lambda: _answers(servers, new) == [(200, 0), (200, 0)]), _answers(servers, new)
