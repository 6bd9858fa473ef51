"""Load shedding at the edge (async_handlers/admission.py): writes are refused first, reads
later, polls never; a refusal is the 526 envelope with Retry-After, made before any Redis or
database work, on a connection that stays open."""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from async_handlers import admission
from async_handlers.admission import Admission, MeteredExecutor, RequestClass, classify
from tests.helpers import ApiClient, SignedInUser


def test_classes() -> None:
    assert classify("GET", "/api/chat/poll") is RequestClass.POLL
    assert classify("GET", "/api/events/poll") is RequestClass.POLL  # a long-poll too: never shed
    assert classify("GET", "/api/user/show") is RequestClass.READ
    assert classify("HEAD", "/api/user/nearby/list") is RequestClass.READ
    assert classify("POST", "/api/chat/send") is RequestClass.WRITE
    assert classify("DELETE", "/api/photo/1") is RequestClass.WRITE


def test_the_pool_estimates_its_queueing_delay() -> None:
    pool = MeteredExecutor(2, thread_name_prefix="t")
    release = threading.Event()
    try:
        for _ in range(2):
            pool.submit(release.wait)
        time.sleep(0.05)
        assert pool.queued == 0
        for _ in range(6):
            pool.submit(time.sleep, 0)
        assert pool.queued == 6
        pool.service_secs = 0.1
        assert pool.expected_wait_secs() == pytest.approx(0.3)
    finally:
        release.set()
        pool.shutdown(wait=True)
    assert pool.queued == 0


class _Saturated:
    """The live server's WSGI pool with ``queued`` jobs waiting behind busy threads."""

    def __init__(self, pool: MeteredExecutor, expected_wait_secs: float) -> None:
        self.pool, self.release = pool, threading.Event()
        for _ in range(pool.threads):
            pool.submit(self.release.wait, 30)
        time.sleep(0.05)
        pool.service_secs = 0.05
        for _ in range(int(expected_wait_secs * pool.threads / pool.service_secs) + 1):
            pool.submit(self.release.wait, 30)

    def __enter__(self) -> _Saturated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()


def _until_drained(pool: MeteredExecutor, timeout_secs: float = 5.0) -> None:
    """The released jobs of a ``_Saturated`` pool leave its queue (the process has room again)."""
    deadline = time.monotonic() + timeout_secs
    while pool.queued or pool.expected_wait_secs() > admission.WRITE_WAIT_BUDGET_SECS:
        assert time.monotonic() < deadline, f"the pool still has {pool.queued} jobs queued"
        time.sleep(0.01)


def _raw(base_url: str, method: str, path: str) -> tuple[http.client.HTTPConnection, float, int, dict, bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    started = time.monotonic()
    conn.request(method, path, body=b"a=1" if method == "POST" else None)
    response = conn.getresponse()
    body = response.read()
    return conn, time.monotonic() - started, response.status, dict(response.getheaders()), body


def test_an_overloaded_process_refuses_writes_first_reads_later_polls_never(
    live_server, live_api: ApiClient, user: SignedInUser
) -> None:
    service = live_server.service
    between = (admission.WRITE_WAIT_BUDGET_SECS + admission.READ_WAIT_BUDGET_SECS) / 2
    with _Saturated(service.executor, between):
        conn, took, status, headers, body = _raw(live_server.base_url, "POST", "/api/chat/send")
        assert (status, headers.get("Retry-After")) == (503, "1")
        assert b'"code": 526' in body.replace(b'"code":526', b'"code": 526')
        assert took < 0.5
        conn.request("GET", "/api/time")  # the same connection still serves
        assert conn.getresponse().status == 200
        conn.close()
        refused = live_api.post("/api/user/update", {"height": 170}, user=user)
        assert (refused.status, refused.code) == (503, 526)
        assert service.admission.refusal("GET", "/api/chat/poll", True) is None  # polls: never shed
        assert service.admission.refusal("GET", "/api/user/show", False) is None  # reads still in
    with _Saturated(service.executor, 2 * admission.READ_WAIT_BUDGET_SECS):
        refused_read = live_api.get("/api/user/show", user=user)
        assert (refused_read.status, refused_read.code) == (503, 526)
        nearby_uses_its_own_pool = service.admission.refusal("GET", "/api/user/nearby/list", True)
        assert nearby_uses_its_own_pool is None
    assert service.admission.shed[RequestClass.WRITE] >= 2
    _until_drained(service.executor)
    assert live_api.post("/api/user/update", {"height": 171}, user=user).status == 200


def test_a_refused_write_did_no_redis_work(live_server, live_api: ApiClient, user: SignedInUser) -> None:
    """Its nonce was never spent: the same signed request passes once the process has room."""
    signed = live_api.signed("POST", "/api/user/update", {**user.params(), "height": 172})
    with _Saturated(live_server.service.executor, 2 * admission.WRITE_WAIT_BUDGET_SECS):
        refused = live_api.transport.send("POST", "/api/user/update", None, dict(signed), {})
        assert refused.code == 526
    _until_drained(live_server.service.executor)
    accepted = live_api.transport.send("POST", "/api/user/update", None, dict(signed), {})
    assert accepted.status == 200, accepted.body


def test_admission_is_unused_without_a_server(app) -> None:
    pool = MeteredExecutor(1)
    try:
        assert Admission(pool, pool).refusal("POST", "/api/chat/send", True) is None
    finally:
        pool.shutdown()


def test_requests_that_keep_waiting_before_they_are_read_are_refused(
    live_server, live_api: ApiClient, user: SignedInUser
) -> None:
    """One late request (a resend, a hiccup) is served; a run of them (the loop cannot keep
    up with its socket) makes the process refuse until the wait is back under target."""
    stale = {"X-Request-Start": f"t={time.time() - 5:.3f}"}
    assert live_api.get("/api/user/show", user=user, headers=stale).status == 200
    answers = [live_api.post("/api/user/update", {"height": 170}, user=user, headers=stale) for _ in range(8)]
    assert (answers[-1].status, answers[-1].code) == (503, 526)
    live_server.service.admission.sojourn_secs = 0.0  # the queue drained
    fresh = {"X-Request-Start": f"t={time.time():.3f}"}
    assert live_api.post("/api/user/update", {"height": 171}, user=user, headers=fresh).status == 200
