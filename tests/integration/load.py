"""A bounded mixed load through nginx, recording every call and every chat message.

Each simulated person (signed in like a real app) runs two threads: a long-poll
loop that collects the messages addressed to them, and an action loop (profile
reads and updates, hot list, nearby, chat sends to their peer). A send that
fails is retried with the same ``clientMsgId``, as the app does, until it is
accepted. Invariants: every call is recorded with its start/end time and
outcome; a message counts as accepted when one attempt answered code 0, as
received when a poll returned it; lost = accepted but never received,
duplicated = received twice.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from wsgi_app.services.auth.applications import AppCredentials
from wsgi_app.services.auth.signing import sign_params

CALL_TIMEOUT_SECS = 60.0
POLL_HTTP_TIMEOUT_SECS = 90.0
RETRY_PAUSE_SECS = 0.2
_phones = itertools.count(random.randrange(10_000_000, 90_000_000))


@dataclass
class Call:
    method: str
    path: str
    started: float
    ended: float
    status: int  # 0: no HTTP answer
    code: int  # envelope code; -1: no envelope
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status != 200 or self.code != 0

    def describe(self) -> str:
        return f"{self.method} {self.path} -> {self.status}/{self.code} {self.error}".strip()


@dataclass
class Person:
    user_id: int
    token: str
    peer_id: int = 0
    cursor: int = 0
    received: list[int] = field(default_factory=list)


class Client:
    """Signs and sends one call; never raises, always returns a :class:`Call` and the body."""

    def __init__(self, base_url: str, creds: AppCredentials) -> None:
        self.base_url = base_url
        self.creds = creds

    def call(
        self, method: str, path: str, params: dict[str, Any], person: Person | None = None, timeout: float = 0
    ) -> tuple[Call, dict[str, Any]]:
        plain = {k: str(v) for k, v in params.items()}
        if person is not None:
            plain.update(userId=str(person.user_id), token=person.token)
        signed = sign_params(
            plain,
            appkey=self.creds.appkey,
            secret=self.creds.secret,
            sign_method=self.creds.sign_method,
            http_method=method,
            path=path,
        )
        url, data = self.base_url + path, None
        if method == "GET":
            url += "?" + urlencode(signed)
        else:
            data = urlencode(signed).encode()
        request = urllib.request.Request(url, data=data, method=method)
        started = time.monotonic()
        status, payload, error = 0, b"", ""
        try:
            with urllib.request.urlopen(request, timeout=timeout or CALL_TIMEOUT_SECS) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, payload = err.code, err.read()
        except Exception as exc:  # connection refused/reset, timeout: a failed call
            error = exc.__class__.__name__
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            body, error = {}, error or "not JSON"
        code = body.get("code", -1) if isinstance(body, dict) else -1
        return Call(method, path, started, time.monotonic(), status, code, error), body


class MixedLoad:
    def __init__(self, base_url: str, creds: AppCredentials, people: int = 6, pace_secs: float = 0.4) -> None:
        self.client = Client(base_url, creds)
        self.people_count = people
        self.pace_secs = pace_secs
        self.people: list[Person] = []
        self.calls: list[Call] = []
        self.accepted: dict[str, tuple[int, int]] = {}  # clientMsgId -> (msg_id, recipient)
        self.lock = threading.Lock()
        self.acting = threading.Event()
        self.polling = threading.Event()
        self.threads: list[threading.Thread] = []
        self._msg_seq = itertools.count(1)
        self.run_tag = f"{random.randrange(16**6):06x}"

    # -- set-up -------------------------------------------------------------------
    def sign_in(self) -> None:
        for _ in range(self.people_count):
            phone = f"137{next(_phones):08d}"
            _, sent = self.client.call("POST", "/api/auth/sendsms", {"phone": phone})
            code = sent["data"]["code"]
            latlng = f"{39.9 + random.uniform(-0.05, 0.05):.5f},{116.4 + random.uniform(-0.05, 0.05):.5f}"
            _, login = self.client.call(
                "POST", "/api/auth/login", {"phone": phone, "code": code, "latlng": latlng}
            )
            self.people.append(Person(login["data"]["user_id"], login["data"]["token"]))
        for i, person in enumerate(self.people):
            person.peer_id = (
                self.people[i ^ 1].user_id if (i ^ 1) < len(self.people) else self.people[0].user_id
            )
            _, start = self.client.call("GET", "/api/chat/poll", {}, person)
            person.cursor = start["data"]["cursor"] or 0

    def start(self) -> None:
        self.acting.set()
        self.polling.set()
        for person in self.people:
            for target in (self._poll_loop, self._act_loop):
                thread = threading.Thread(target=target, args=(person,), daemon=True)
                thread.start()
                self.threads.append(thread)

    def stop(self, settle_secs: float = 20.0) -> None:
        """Stop acting, let polls collect every accepted message (bounded), stop polling."""
        self.acting.clear()
        deadline = time.monotonic() + settle_secs
        while self.lost() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.polling.clear()
        for thread in self.threads:
            thread.join(POLL_HTTP_TIMEOUT_SECS)
        self.threads = []

    # -- loops --------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def _poll_loop(self, person: Person) -> None:
        while self.polling.is_set():
            call, body = self.client.call(
                "GET", "/api/chat/poll", {"cursor": person.cursor}, person, timeout=POLL_HTTP_TIMEOUT_SECS
            )
            self._record(call)
            if call.failed:
                time.sleep(RETRY_PAUSE_SECS)
                continue
            with self.lock:
                person.received.extend(m["msg_id"] for m in body["data"]["list"])
            person.cursor = body["data"]["cursor"] or person.cursor

    def _act_loop(self, person: Person) -> None:
        actions = (
            [self._send] * 3 + [self._show] * 2 + [self._hot, self._nearby, self._update, self._contacts]
        )
        while self.acting.is_set():
            random.choice(actions)(person)
            time.sleep(random.uniform(0.5, 1.5) * self.pace_secs)

    def _send(self, person: Person) -> None:
        client_msg_id = f"it-{self.run_tag}-{person.user_id}-{next(self._msg_seq)}"
        params = {"peerId": person.peer_id, "clientMsgId": client_msg_id, "kind": "text", "content": "hi"}
        while True:  # a real app resends with the same clientMsgId until it is stored
            call, body = self.client.call("POST", "/api/chat/send", params, person)
            self._record(call)
            if not call.failed:
                with self.lock:
                    self.accepted[client_msg_id] = (body["data"]["message"]["msg_id"], person.peer_id)
                return
            if not self.acting.is_set() and time.monotonic() - call.started > 30:
                return
            time.sleep(RETRY_PAUSE_SECS)

    def _simple(self, method: str, path: str, params: dict[str, Any], person: Person) -> None:
        call, _ = self.client.call(method, path, params, person)
        self._record(call)

    def _show(self, person: Person) -> None:
        self._simple("GET", "/api/user/show", {"peerId": person.peer_id}, person)

    def _hot(self, person: Person) -> None:
        self._simple("GET", "/api/user/hot/list", {}, person)

    def _nearby(self, person: Person) -> None:
        self._simple("GET", "/api/user/nearby/list", {}, person)

    def _update(self, person: Person) -> None:
        self._simple("POST", "/api/user/update", {"nickname": f"it{random.randrange(1000)}"}, person)

    def _contacts(self, person: Person) -> None:
        self._simple("GET", "/api/contacts/list", {}, person)

    # -- results ------------------------------------------------------------------
    def calls_between(self, start: float, end: float) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.ended >= start and c.started <= end]

    def failures(self, start: float = 0.0, end: float = float("inf")) -> list[Call]:
        return [c for c in self.calls_between(start, end) if c.failed]

    def lost(self) -> list[str]:
        with self.lock:
            got = {(pid, mid) for p in self.people for pid, mid in [(p.user_id, m) for m in p.received]}
            return [cid for cid, (mid, to) in self.accepted.items() if (to, mid) not in got]

    def duplicated(self) -> list[int]:
        with self.lock:
            dups = []
            for person in self.people:
                seen: set[int] = set()
                dups += [m for m in person.received if m in seen or seen.add(m)]  # type: ignore[func-returns-value]
            return dups
