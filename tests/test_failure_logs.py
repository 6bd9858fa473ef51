"""A handled dependency failure logs one line naming the dependency, never a traceback.

A server process on a Redis of the test's own: once that Redis is stopped, chat sends
(native handler), profile reads (Flask) and polls are answered 503 ``redis_unavailable``
(521), and the log has one ``redis_unavailable: Redis ...`` line per failed request: no
``Uncaught exception`` traceback, no line blaming MySQL.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import ServerProcess
from tests.helpers import ApiClient, HttpTransport
from tests.integration.services import RedisServer
from wsgi_app.services.auth.applications import AppCredentials


def test_redis_down_logs_one_line_per_failure_naming_redis(
    spawn_server: Callable[..., ServerProcess], own_redis: RedisServer, creds: AppCredentials
) -> None:
    server = spawn_server(REDIS_URL=own_redis.url)
    api = ApiClient(HttpTransport(server.base_url), creds)
    alice, bob = (api.sign_in(phone, lambda _phone: None) for phone in ("13900000011", "13900000012"))
    own_redis.stop()
    answers = []
    for i in range(3):
        send = {"peerId": bob.user_id, "type": "text", "content": "hi", "clientMsgId": f"down-{i}"}
        answers.append(api.post("/api/chat/send", send, user=alice))
        answers.append(api.get("/api/user/show", user=alice))
    assert {(a.status, a.code) for a in answers} == {(503, 521)}, [a.body for a in answers]
    server.stop()
    output = server.output()
    assert "Traceback" not in output and "Uncaught exception" not in output, output
    assert "MySQL error" not in " ".join(line for line in output.splitlines() if "redis_unavailable" in line)
    failures = [line for line in output.splitlines() if "redis_unavailable: Redis " in line]
    assert len(failures) == len(answers), output
