"""Load test: people signing in, browsing, chatting and long-polling. Loopback only.

    SMS_ECHO_CODE=1 SMS_IP_PER_HOUR=100000 SMS_IP_PER_DAY=100000 ./scripts/run.sh &
    DT_APPKEY=... DT_APPSECRET=... .venv/bin/locust -f locustfile.py --headless \\
        -u 50 -r 10 --run-time 60s --host http://127.0.0.1:8000

The server must echo SMS codes (``SMS_ECHO_CODE=1``) and allow many sign-ins from
one address (the ``SMS_IP_PER_*`` limits), since every simulated person signs in
from 127.0.0.1. Against nginx + supervisord use ``--host http://127.0.0.1:8080``.
The host must be a loopback address: this file refuses any other.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
from typing import Any
from urllib.parse import urlsplit

from locust import HttpUser, between, events, task

from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256
from wsgi_app.services.signing import sign_params

APPKEY = os.environ.get("DT_APPKEY", "")
APPSECRET = os.environ.get("DT_APPSECRET", "")
SIGN_METHOD = os.environ.get("DT_SIGN_METHOD", SIGN_METHOD_HMAC_SHA256)
POLL_TIMEOUT_SECS = 60
_phones = itertools.count(random.randrange(10_000_000, 90_000_000))
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@events.test_start.add_listener
def _refuse_non_loopback(environment: Any, **_: Any) -> None:
    host = urlsplit(environment.host or "").hostname or ""
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise SystemExit(f"locustfile.py only targets loopback, not {host!r}")
    if not APPKEY or not APPSECRET:
        raise SystemExit("set DT_APPKEY and DT_APPSECRET (flask --app wsgi_app apps create)")


class DatingAppUser(HttpUser):
    """One person: signs in, reports a position, then browses and chats."""

    wait_time = between(0.5, 2.0)

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        plain = {k: str(v) for k, v in (params or {}).items()}
        if getattr(self, "user_id", None):
            plain.update({"userId": str(self.user_id), "token": self.token})
        signed = sign_params(
            plain, appkey=APPKEY, secret=APPSECRET, sign_method=SIGN_METHOD, http_method=method, path=path
        )
        kw.setdefault("name", path)  # group stats by endpoint, not by signed query string
        if method == "GET":
            return self.client.request(method, path, params=signed, **kw)
        return self.client.request(method, path, data=signed, **kw)

    def on_start(self) -> None:
        self.user_id = 0
        self.token = ""
        self.cursor = 0
        self.phone = f"139{next(_phones):08d}"
        sent = self.call("POST", "/api/auth/sendsms", {"phone": self.phone}).json()
        code = sent.get("data", {}).get("code")
        if not code:
            raise SystemExit(f"sign-in needs SMS_ECHO_CODE=1 on the server: {sent}")
        latlng = f"{39.9 + random.uniform(-0.2, 0.2):.5f},{116.4 + random.uniform(-0.2, 0.2):.5f}"
        login = self.call("POST", "/api/auth/login", {"phone": self.phone, "code": code, "latlng": latlng})
        data = login.json()["data"]
        self.user_id, self.token = data["user_id"], data["token"]
        self.call("POST", "/api/user/update", {"nickname": f"load{self.user_id}", "gender": 1})
        # A new device asks for the current chat cursor (answered at once), then opens nearby.
        start = self.call("GET", "/api/chat/poll").json()
        self.cursor = start.get("data", {}).get("cursor") or 0
        self.nearby()

    @task(5)
    def show_myself(self) -> None:
        self.call("GET", "/api/user/show")

    @task(5)
    def hot_list(self) -> None:
        self.call("GET", "/api/user/hot/list", {"page": random.randint(1, 3), "pageCount": 10})

    @task(3)
    def nearby(self) -> None:
        reply = self.call("GET", "/api/user/nearby/list", name="/api/user/nearby/list").json()
        for person in reply.get("data", {}).get("list", [])[:1]:
            self.call("GET", "/api/user/show", {"peerId": person["user_id"]}, name="/api/user/show?peerId")

    @task(3)
    def send_message(self) -> None:
        peer = random.randint(max(1, self.user_id - 20), self.user_id + 20)
        if peer == self.user_id:
            return
        with self.call(
            "POST",
            "/api/chat/send",
            {"peerId": peer, "clientMsgId": secrets.token_hex(8), "content": "你好 hello"},
            catch_response=True,
        ) as response:
            if response.status_code in (404, 403, 429):  # unknown or blocked peer, or limited
                response.success()

    @task(1)
    def long_poll(self) -> None:
        reply = self.call(
            "GET", "/api/chat/poll", {"cursor": self.cursor}, timeout=POLL_TIMEOUT_SECS + 30
        ).json()
        self.cursor = reply.get("data", {}).get("cursor", self.cursor)
