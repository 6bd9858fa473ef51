"""Load test: the realistic mix of people, signed like the real app. Loopback only.

    python -m deploy loadtest            # headless, bounded, against the supervised stack; fails
                                         # on any failure or a p95 over its threshold
    DT_APPKEY=... DT_APPSECRET=... .venv/bin/locust -f locustfile.py --headless \\
        -u 50 -r 10 --run-time 60s --host http://127.0.0.1:8080

Four kinds of people (weights 6:2:2:1): ``Browser`` (hot list, nearby, profile
views, likes and passes of the people seen, an occasional profile update),
``Chatter`` (an app of today: messages to a peer, with a ``chat/poll`` loop of
its own beside the tasks), ``StreamChatter`` (the same with the event stream:
an ``events/poll`` loop, typing before each message, read receipts, likes, the
matches list) and ``VipBuyer`` (products, an order, the provider's payment
callback when ``DT_PAYMENT_SECRET`` is set, the VIP status). A like answered
with a daily-limit code (531, 532) is the product working, not a failure.
Every one signs in by SMS first: the server must echo codes
(``SMS_ECHO_CODE=1``) and allow many sign-ins from one address (``SMS_IP_PER_*``).
A 429 is reported as "rate limited (429)", never as something else.
The host must be a loopback address: this file refuses any other. ``DT_ONE_OF_EACH=1``
(with ``-u 4``): exactly one person of each kind, for a smoke run.

The run fails (exit status 1, the reason logged) when a precondition fails (the server does
not echo SMS codes: every sign-in would stop) or when a kind of person made no request at
all: an empty run never passes. With ``DT_LOADTEST_WARMUP_SECS`` the requests after that
many seconds are also counted apart (the steady state, without the sign-in burst of the
spawn) and written as JSON to ``DT_LOADTEST_STEADY_JSON``: ``python -m deploy loadtest``
judges p95 on them.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import secrets
import time
from collections import Counter
from typing import Any, NoReturn
from urllib.parse import urlsplit

import gevent
from locust import HttpUser, between, events, task
from locust.exception import StopUser
from locust.stats import RequestStats

from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256
from wsgi_app.services.auth.signing import sign_params
from wsgi_app.services.vip.payments import CALLBACK_PATH, FakePaymentProvider

APPKEY = os.environ.get("DT_APPKEY", "")
APPSECRET = os.environ.get("DT_APPSECRET", "")
SIGN_METHOD = os.environ.get("DT_SIGN_METHOD", SIGN_METHOD_HMAC_SHA256)
PAYMENT_SECRET = os.environ.get("DT_PAYMENT_SECRET", "")
POLL_NAME = "/api/chat/poll"
EVENTS_POLL_NAME = "/api/events/poll"
LIKE_LIMIT_CODES = (531, 532)  # like_limit_reached, super_like_limit_reached
TYPING_MIN_INTERVAL_SECS = 3.0
POLL_TIMEOUT_SECS = 90
_phones = itertools.count(random.randrange(10_000_000, 90_000_000))
_chatters: list[int] = []  # user ids of signed-in Chatters: their peers
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
WARMUP_SECS = float(os.environ.get("DT_LOADTEST_WARMUP_SECS") or 0)
STEADY_JSON = os.environ.get("DT_LOADTEST_STEADY_JSON", "")
log = logging.getLogger("locustfile")


class RunRecord:
    """Requests per kind of person, the steady state's stats, and a precondition that failed."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.monotonic()
        self.requests_by_class: Counter[str] = Counter()
        self.steady = RequestStats()
        self.precondition_failed = ""

    def note(
        self, user_class: str, method: str, name: str, response_time: float, length: int, failed: Any
    ) -> None:
        self.requests_by_class[user_class] += 1
        if time.monotonic() - self.started < WARMUP_SECS:
            return
        self.steady.log_request(method, name, int(response_time), length or 0)
        if failed:
            self.steady.log_error(method, name, failed)

    def steady_summary(self) -> list[dict[str, Any]]:
        return [
            {
                "method": entry.method,
                "name": entry.name,
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                "p95_ms": entry.get_response_time_percentile(0.95) if entry.num_requests else 0,
            }
            for entry in self.steady.entries.values()
        ]


run_record = RunRecord()


@events.test_start.add_listener
def _refuse_non_loopback(environment: Any, **_: Any) -> None:
    host = urlsplit(environment.host or "").hostname or ""
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise SystemExit(f"locustfile.py only targets loopback, not {host!r}")
    if not APPKEY or not APPSECRET:
        raise SystemExit("set DT_APPKEY and DT_APPSECRET (flask --app wsgi_app apps create)")
    run_record.reset()


@events.request.add_listener
def _count_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: Any,
    context: Any,
    **_: Any,
) -> None:
    user_class = (context or {}).get("user_class", "other")
    run_record.note(user_class, request_type, name, response_time, response_length, exception)


@events.quitting.add_listener
def _fail_an_empty_run(environment: Any, **_: Any) -> None:
    """Exit status 1 when a precondition failed or a kind of person made no request."""
    problems = [run_record.precondition_failed] if run_record.precondition_failed else []
    for user_class in environment.user_classes:
        if not run_record.requests_by_class[user_class.__name__]:
            problems.append(f"{user_class.__name__} made no request")
    for problem in problems:
        log.error("run failed: %s", problem)
    if problems:
        environment.process_exit_code = 1
    if STEADY_JSON:
        with open(STEADY_JSON, "w") as f:
            json.dump(
                {
                    "warmup_secs": WARMUP_SECS,
                    "requests_by_class": dict(run_record.requests_by_class),
                    "problems": problems,
                    "steady": run_record.steady_summary(),
                },
                f,
            )


class SignedInPerson(HttpUser):
    """Signs every call like the app; signs in on start."""

    abstract = True
    wait_time = between(0.5, 2.0)

    def context(self) -> dict[str, Any]:
        return {"user_class": type(self).__name__}  # every request event names its kind of person

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        plain = {k: str(v) for k, v in (params or {}).items()}
        if getattr(self, "user_id", None):
            plain.update({"userId": str(self.user_id), "token": self.token})
        signed = sign_params(
            plain, appkey=APPKEY, secret=APPSECRET, sign_method=SIGN_METHOD, http_method=method, path=path
        )
        kw.setdefault("name", path)  # group stats by endpoint, not by signed query string
        user_catch = kw.pop("catch_response", False)
        send: dict[str, Any] = {"params": signed} if method == "GET" else {"data": signed}
        with self.client.request(method, path, catch_response=True, **send, **kw) as response:
            if user_catch:
                pass  # the caller judges it
            elif response.status_code == 429:
                response.failure("rate limited (429)")
            else:
                _judge(response)
        return response

    def on_start(self) -> None:
        self.user_id = 0
        self.token = ""
        self.cursor = 0
        self.phone = f"139{next(_phones):08d}"
        sent = self.call("POST", "/api/auth/sendsms", {"phone": self.phone})
        if sent.status_code == 429:
            raise StopUser()  # reported as "rate limited (429)": raise SMS_IP_PER_* on the server
        answer = _json(sent)
        code = answer.get("data", {}).get("code")
        if sent.status_code in (401, 403):
            self.stop_the_run(f"the server refuses the application (DT_APPKEY/DT_APPSECRET): {answer}")
        if sent.status_code != 200:
            raise StopUser()  # counted as a failure of /api/auth/sendsms
        if not code:
            self.stop_the_run(f"sign-in needs SMS_ECHO_CODE=1 on the server: {answer}")
        latlng = f"{39.9 + random.uniform(-0.2, 0.2):.5f},{116.4 + random.uniform(-0.2, 0.2):.5f}"
        login = self.call("POST", "/api/auth/login", {"phone": self.phone, "code": code, "latlng": latlng})
        data = _json(login).get("data") or {}
        if "token" not in data:
            raise StopUser()
        self.user_id, self.token = data["user_id"], data["token"]
        self.call("POST", "/api/user/update", {"nickname": f"load{self.user_id}", "gender": 1})
        # A new device asks for the current chat cursor (answered at once), then opens nearby.
        self.cursor = _json(self.call("GET", POLL_NAME)).get("data", {}).get("cursor") or 0
        self.nearby()

    def stop_the_run(self, reason: str) -> NoReturn:
        """Nobody can sign in: the run stops and fails with ``reason``."""
        run_record.precondition_failed = reason
        gevent.spawn(self.environment.runner.quit)
        raise StopUser()

    def nearby(self) -> None:
        reply = _json(self.call("GET", "/api/user/nearby/list"))
        for person in reply.get("data", {}).get("list", [])[:1]:
            self.call("GET", "/api/user/show", {"peerId": person["user_id"]}, name="/api/user/show?peerId")

    def like_someone(self, people: list[dict[str, Any]]) -> None:
        """Like (most), pass or super-like one of the people a list showed."""
        if not people:
            return
        kind = random.choices(["like", "pass", "super"], weights=[70, 25, 5])[0]
        params = {"peerId": random.choice(people)["user_id"], "kind": kind}
        with self.call("POST", "/api/like/send", params, catch_response=True) as reply:
            if _json(reply).get("code") in LIKE_LIMIT_CODES:
                reply.success()  # the daily limit: expected, with its own code
            else:
                _judge(reply)


class Browser(SignedInPerson):
    """Hot and nearby people, profile views, likes, now and then an update of one's own profile."""

    weight = 6

    @task(2)
    def like_from_hot_list(self) -> None:
        reply = _json(self.call("GET", "/api/user/hot/list", {"page": 1, "pageCount": 10}))
        self.like_someone(reply.get("data", {}).get("list") or [])

    @task(5)
    def hot_list(self) -> None:
        self.call("GET", "/api/user/hot/list", {"page": random.randint(1, 3), "pageCount": 10})

    @task(3)
    def browse_nearby(self) -> None:
        self.nearby()

    @task(3)
    def show_myself(self) -> None:
        self.call("GET", "/api/user/show")

    @task(1)
    def update_profile(self) -> None:
        self.call("POST", "/api/user/update", {"height": random.randint(150, 200)})


class Chatter(SignedInPerson):
    """Writes to other chatters while its own long-poll loop waits for their messages."""

    weight = 2

    def on_start(self) -> None:
        super().on_start()
        _chatters.append(self.user_id)
        self.poller = gevent.spawn(self.poll_loop)

    def on_stop(self) -> None:
        if getattr(self, "poller", None) is not None:
            self.poller.kill(block=False)
        if self.user_id in _chatters:
            _chatters.remove(self.user_id)

    def poll_loop(self) -> None:
        while True:
            reply = self.call("GET", POLL_NAME, {"cursor": self.cursor}, timeout=POLL_TIMEOUT_SECS)
            self.cursor = _json(reply).get("data", {}).get("cursor") or self.cursor
            if reply.status_code != 200:
                gevent.sleep(1.0)

    @task(4)
    def send_message(self) -> None:
        peers = [uid for uid in _chatters if uid != self.user_id]
        if not peers:
            return
        peer = random.choice(peers)
        self.before_sending(peer)
        params = {"peerId": peer, "clientMsgId": secrets.token_hex(8), "content": "你好"}
        self.call("POST", "/api/chat/send", params)

    def before_sending(self, peer: int) -> None:
        """What the app does before a message goes out (nothing, in an app of today)."""

    @task(1)
    def contacts(self) -> None:
        self.call("GET", "/api/contacts/list")


class StreamChatter(Chatter):
    """A chatter on the event stream: ``events/poll`` instead of ``chat/poll``, typing before it
    sends (at most once per conversation every 3 s, as the app does), receipts, likes, matches."""

    weight = 2

    def on_start(self) -> None:
        self.typed_at: dict[int, float] = {}
        super().on_start()

    def poll_loop(self) -> None:
        reply = self.call("GET", EVENTS_POLL_NAME)
        self.cursor = _json(reply).get("data", {}).get("cursor") or 0
        while True:
            reply = self.call("GET", EVENTS_POLL_NAME, {"cursor": self.cursor}, timeout=POLL_TIMEOUT_SECS)
            data = _json(reply).get("data") or {}
            self.cursor = data.get("cursor", self.cursor)
            senders = {e["payload"]["sender_id"] for e in data.get("events", []) if e["type"] == "message"}
            for sender in senders:
                self.call("POST", "/api/chat/read", {"peerId": sender})
            if reply.status_code != 200:
                gevent.sleep(1.0)

    def before_sending(self, peer: int) -> None:
        """Typing first, at most once per conversation every 3 s."""
        now = gevent.get_hub().loop.now()
        if now - self.typed_at.get(peer, -TYPING_MIN_INTERVAL_SECS) >= TYPING_MIN_INTERVAL_SECS:
            self.typed_at[peer] = now
            self.call("POST", "/api/chat/typing", {"peerId": peer, "state": "start"})

    @task(2)
    def like_nearby(self) -> None:
        reply = _json(self.call("GET", "/api/user/nearby/list"))
        self.like_someone(reply.get("data", {}).get("list") or [])

    @task(1)
    def matches(self) -> None:
        self.call("GET", "/api/match/list")


class VipBuyer(SignedInPerson):
    """Looks at the products, orders one, pays (the provider's signed callback), checks the status.

    A person buys a few times at most (the server allows 10 orders per 10 minutes)."""

    weight = 1
    wait_time = between(2.0, 5.0)
    max_orders = 3

    def on_start(self) -> None:
        super().on_start()
        self.orders = 0
        self.buy()  # came to buy

    @task(1)
    def buy(self) -> None:
        if self.orders >= self.max_orders:
            return
        self.orders += 1
        products = _json(self.call("GET", "/api/vip/products")).get("data", {}).get("list") or []
        if not products:
            return
        ordered = self.call("POST", "/api/vip/order", {"productId": products[0]["product_id"]})
        order = _json(ordered).get("data") or {}
        if PAYMENT_SECRET and order.get("order_no"):
            callback = FakePaymentProvider(PAYMENT_SECRET).signed_callback(
                order["order_no"], order["amount_cents"], order["currency"]
            )
            with self.client.post(CALLBACK_PATH, data=callback, catch_response=True) as paid:
                _judge(paid)  # the provider's call: unsigned by the app, named by its path

    @task(2)
    def vip_status(self) -> None:
        self.call("GET", "/api/vip/status")


if os.environ.get("DT_ONE_OF_EACH"):  # a smoke run: exactly one person of each kind (run with -u 4)
    for _kind in (Browser, Chatter, StreamChatter, VipBuyer):
        _kind.fixed_count = 1
    del _kind  # locust takes every User class it finds in the module


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _judge(response: Any) -> None:
    """A call fails when it is not a 200 with envelope code 0 (locust counts it per endpoint)."""
    body = _json(response)
    if response.status_code != 200 or body.get("code") != 0:
        response.failure(f"{response.status_code} code={body.get('code')} {body.get('msg', '')}".strip())
