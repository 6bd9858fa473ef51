"""The load of the simulated cluster's fault runs: CRUD and chat pairs with exactly-once accounting.

Runs inside the ``client`` namespace against the edge (:mod:`deploy.cluster`).
Every request is recorded as ``(time, endpoint, status)``. Chat: each sender
sends to its peer with a fresh ``clientMsgId``; a send that fails is resent with
the SAME ``clientMsgId`` until accepted (what the app does), so an accepted
message has exactly one id. Each receiver long-polls by cursor. At the end:
lost = accepted ids never received, duplicated = ids received more than once;
delivery latency = receive time - acceptance time.

Invariants: only the edge's address is called; the run is bounded by
``stop()``; threads are daemons that end with it.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from datingtoday_client.signing import sign_params

POLL_TIMEOUT_SECS = 30.0
REQUEST_TIMEOUT_SECS = 10.0
SEND_INTERVAL_SECS = 1.5  # 40 a minute: under CHAT_SEND_LIMITS (60 a minute) with room for resends
CRUD_INTERVAL_SECS = 0.25
RETRY_PAUSE_SECS = 0.2
_phones = itertools.count(int(time.time()) % 10_000_000)


@dataclass
class Record:
    at: float
    endpoint: str
    status: int


@dataclass
class Ledger:
    requests: list[Record] = field(default_factory=list)
    accepted: dict[int, float] = field(default_factory=dict)  # msg id -> acceptance time
    received: dict[int, list[float]] = field(default_factory=dict)  # msg id -> receive times
    recipient: dict[int, int] = field(default_factory=dict)  # msg id -> the receiving user
    last_poll: dict[int, tuple[float, int, int]] = field(
        default_factory=dict
    )  # user -> (time, status, cursor)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, status: int) -> None:
        with self.lock:
            self.requests.append(Record(time.monotonic(), endpoint, status))


class Person:
    def __init__(self, base_url: str, credentials: dict[str, str], ledger: Ledger) -> None:
        self.base_url = base_url
        self.credentials = credentials
        self.ledger = ledger
        self.user_id = 0
        self.token = ""

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        timeout: float = REQUEST_TIMEOUT_SECS,
    ) -> tuple[int, dict[str, Any]]:
        plain = {k: str(v) for k, v in (params or {}).items()}
        if self.user_id:
            plain.update({"userId": str(self.user_id), "token": self.token})
        signed = sign_params(
            plain,
            appkey=self.credentials["appkey"],
            secret=self.credentials["appsecret"],
            sign_method=self.credentials["sign_method"],
            http_method=method,
            path=path,
        )
        body = urllib.parse.urlencode(signed)
        url = self.base_url + path + ("?" + body if method == "GET" else "")
        request = urllib.request.Request(url, data=None if method == "GET" else body.encode(), method=method)
        status, payload = 0, {}
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, payload = response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            status = err.code
        except (OSError, ValueError):
            status = 0  # no answer (refused, reset, timed out)
        self.ledger.record(path, status)
        return status, payload

    def sign_in(self) -> None:
        phone = f"139{next(_phones):08d}"
        for _ in range(20):
            status, sent = self.call("POST", "/api/auth/sendsms", {"phone": phone})
            if status == 200:
                break
            time.sleep(1)
        code = sent.get("data", {}).get("code")
        status, login = self.call(
            "POST", "/api/auth/login", {"phone": phone, "code": code, "latlng": "39.9,116.4"}
        )
        if status != 200:
            raise RuntimeError(f"sign-in failed: {status} {login}")
        self.user_id, self.token = login["data"]["user_id"], login["data"]["token"]


class Load:
    def __init__(self, base_url: str, credentials: dict[str, str], pairs: int = 3, crud: int = 3) -> None:
        self.ledger = Ledger()
        self.stopping = threading.Event()
        self.base_url = base_url
        self.credentials = credentials
        self.pairs = pairs
        self.crud = crud
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        people = [
            Person(self.base_url, self.credentials, self.ledger) for _ in range(2 * self.pairs + self.crud)
        ]
        for person in people:
            person.sign_in()
        for index in range(self.pairs):
            sender, receiver = people[2 * index], people[2 * index + 1]
            self._thread(self._poll_loop, receiver)
            self._thread(self._send_loop, sender, receiver.user_id)
        for person in people[2 * self.pairs :]:
            self._thread(self._crud_loop, person)

    def _thread(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _poll_loop(self, person: Person) -> None:
        status, first = person.call("GET", "/api/chat/poll")
        cursor = first.get("data", {}).get("cursor", 0) if status == 200 else 0
        while not self.stopping.is_set() or time.monotonic() < self._settle_until:
            status, reply = person.call(
                "GET", "/api/chat/poll", {"cursor": cursor}, timeout=POLL_TIMEOUT_SECS
            )
            if status != 200:
                time.sleep(RETRY_PAUSE_SECS)
                continue
            now = time.monotonic()
            with self.ledger.lock:
                for message in reply["data"].get("list", []):
                    self.ledger.received.setdefault(int(message["msg_id"]), []).append(now)
            cursor = reply["data"].get("cursor", cursor)

    _settle_until = 0.0

    def _send_loop(self, person: Person, peer_id: int) -> None:
        serial = 0
        while not self.stopping.is_set():
            serial += 1
            client_msg_id = f"{person.user_id}-{serial}-{random.randrange(1 << 30)}"
            while not self.stopping.is_set():  # the same clientMsgId until accepted
                status, reply = person.call(
                    "POST", "/api/chat/send",
                    {"peerId": peer_id, "clientMsgId": client_msg_id, "kind": "text", "content": "hi"},
                )  # fmt: skip
                if status == 200:
                    with self.ledger.lock:
                        self.ledger.accepted.setdefault(
                            int(reply["data"]["message"]["msg_id"]), time.monotonic()
                        )
                    break
                time.sleep(RETRY_PAUSE_SECS)
            time.sleep(SEND_INTERVAL_SECS)

    def _crud_loop(self, person: Person) -> None:
        while not self.stopping.is_set():
            choice = random.random()
            if choice < 0.55:
                person.call("GET", "/api/user/show", {"peerId": person.user_id})
            elif choice < 0.65:  # nearby pages are limited to 30 a minute per person
                person.call("GET", "/api/user/nearby/list")
            elif choice < 0.85:
                person.call("POST", "/api/user/update", {"height": random.randint(150, 200)})
            else:
                person.call("GET", "/api/contacts/list")
            time.sleep(CRUD_INTERVAL_SECS)

    def stop(self, settle_secs: float = POLL_TIMEOUT_SECS + 5) -> None:
        """Stop sending; polls go on for ``settle_secs`` so every accepted message can arrive."""
        self._settle_until = time.monotonic() + settle_secs
        self.stopping.set()
        deadline = self._settle_until + REQUEST_TIMEOUT_SECS
        while time.monotonic() < deadline:
            with self.ledger.lock:
                if set(self.ledger.accepted) <= set(self.ledger.received):
                    break
            time.sleep(0.2)
        self._settle_until = 0.0  # daemon threads: a poll still waiting ends with the process
