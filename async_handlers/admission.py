"""Load shedding at the edge: a process admits a request only while it can answer it in time.

The edge (``tornado_dispatch.PathDispatch``) asks :meth:`Admission.refusal` with
the request line's method and path, before any body is parsed and before any
Redis or database work. A refused request is answered at once with the 503
envelope ``overloaded`` (526) and ``Retry-After`` (:class:`RefusedRequest`), on a
connection that stays open; nginx passes that 503 through (it is not in
``proxy_next_upstream``: every process is equally busy) and never counts it as a
failure of the process.

What decides is the expected queueing delay of the pool the request will need:
jobs queued on it and not yet started, times the recent mean run time of a job,
over its threads (:class:`MeteredExecutor`). Each request class has its own
wait budget on that estimate:

- ``poll`` (``GET /api/chat/poll``, ``GET /api/events/poll``): never shed. A parked poll costs a small
  object and no thread; refusing it would only make the client poll again.
- ``read`` (every other GET/HEAD): budget :data:`READ_WAIT_BUDGET_SECS`. Cheap,
  and what people look at: still admitted while writes are already refused.
- ``write`` (POST and every other method): budget :data:`WRITE_WAIT_BUDGET_SECS`.
  The expensive class (a transaction, a commit): shed first, so reads and polls
  survive an overload of sends.

The time a request already waited before the process read it (its *sojourn*:
nginx stamps ``X-Request-Start: t=<seconds>`` when it sends it) is the other
signal: while the recent sojourns (an average) exceed the class's target, new
requests of that class are refused, which drains the queue so the next refusals
are answered at once. One request alone decides nothing: a request nginx resent
after a process died carries the stamp of its first send.

The loop also measures its own lag (:meth:`Admission.start`: a timer every
:data:`LAG_SAMPLE_SECS`, how late it fires, averaged over ~0.1 s), for the log
line only: a freshly started process or a busy host shows lags of hundreds of
milliseconds under a normal load, so it cannot decide; the requests' own wait
measures what matters.

Both budgets are far below nginx's read timeout (``wsgi_app/timeouts.py``):
an admitted request waits at most about its budget for a thread, then its own
bounded dependency waits. Pools are also bounded in jobs (:data:`MAX_QUEUED_PER_THREAD`
per thread), whatever the estimate says.

Invariants: a refusal does no I/O but the answer; the estimate only reads
counters the pools keep (no lock on the request path beyond the pool's own).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from tornado import httputil

from async_handlers.chat_poll import PATH as POLL_PATH
from async_handlers.events_poll import PATH as EVENTS_POLL_PATH
from wsgi_app import errors, metrics
from wsgi_app.http_common import SECURITY_HEADERS

log = logging.getLogger("datingtoday.admission")
T = TypeVar("T")

WRITE_WAIT_BUDGET_SECS = 0.2
READ_WAIT_BUDGET_SECS = 0.75
# One request's wait counts at most this much in the average: a request nginx resent after a
# process died carries its first send's stamp (a resend is no sign of this process's queue).
SOJOURN_SAMPLE_CAP_SECS = 1.0
# Averages of the time requests waited before the process read them: loose enough that a
# busy shared host (tens of ms of scheduling delay) never sheds a normal load.
WRITE_SOJOURN_TARGET_SECS = 0.25
READ_SOJOURN_TARGET_SECS = 0.5
SOJOURN_EWMA_WEIGHT = 0.05
REQUEST_START_HEADER = "X-Request-Start"
LAG_SAMPLE_SECS = 0.02
# The lag is averaged over the last ~5 samples (0.1 s): one late wake-up of a busy host is
# not an overload, a loop that stays behind is.
LAG_EWMA_WEIGHT = 0.25
MAX_QUEUED_PER_THREAD = 64
RETRY_AFTER_SECS = 1
SERVICE_EWMA_WEIGHT = 0.1  # the mean run time follows the last ~10 jobs
INITIAL_SERVICE_SECS = 0.005
SHED_LOG_INTERVAL_SECS = 10.0
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


POLL_PATHS = frozenset({POLL_PATH, EVENTS_POLL_PATH})


class RequestClass(enum.Enum):
    POLL = "poll"
    READ = "read"
    WRITE = "write"


def classify(method: str, path: str) -> RequestClass:
    if path in POLL_PATHS:
        return RequestClass.POLL
    return RequestClass.READ if method in READ_METHODS else RequestClass.WRITE


class MeteredExecutor(ThreadPoolExecutor):
    """A thread pool that knows its queue: jobs submitted and not started, and the mean run
    time of a job (an exponentially weighted average), so the edge can estimate the wait."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.threads = max_workers
        self.queued = 0
        self.service_secs = INITIAL_SERVICE_SECS
        self._count_lock = threading.Lock()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._count_lock:
            self.queued += 1
        try:
            return super().submit(self._metered, fn, *args, **kwargs)
        except BaseException:
            with self._count_lock:
                self.queued -= 1
            raise

    def _metered(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._count_lock:
            self.queued -= 1
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            took = time.monotonic() - started
            self.service_secs += SERVICE_EWMA_WEIGHT * (took - self.service_secs)

    def expected_wait_secs(self) -> float:
        """How long a job submitted now would wait for a thread, from the recent past."""
        return self.queued * self.service_secs / self.threads

    def full(self) -> bool:
        return self.queued >= self.threads * MAX_QUEUED_PER_THREAD


class Admission:
    """The edge's question: may this request in? (see the module docstring)."""

    def __init__(self, wsgi_pool: MeteredExecutor, native_pool: MeteredExecutor) -> None:
        self.wsgi_pool = wsgi_pool
        self.native_pool = native_pool
        self.shed: dict[RequestClass, int] = dict.fromkeys(RequestClass, 0)
        self.loop_lag_secs = 0.0
        self.sojourn_secs = 0.0
        self._lag_timer: asyncio.TimerHandle | None = None
        self._expected = 0.0
        self._shed_logged = dict(self.shed)
        self._last_log = time.monotonic()

    def start(self) -> None:
        """Start measuring the event loop's lag (call on the loop)."""
        loop = asyncio.get_running_loop()
        self._expected = loop.time() + LAG_SAMPLE_SECS
        self._lag_timer = loop.call_at(self._expected, self._sample_lag)

    def stop(self) -> None:
        if self._lag_timer is not None:
            self._lag_timer.cancel()
            self._lag_timer = None

    def _sample_lag(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.loop_lag_secs += LAG_EWMA_WEIGHT * (now - self._expected - self.loop_lag_secs)
        self._expected = now + LAG_SAMPLE_SECS
        self._lag_timer = loop.call_at(self._expected, self._sample_lag)

    def refusal(
        self, method: str, path: str, native: bool, request_start: str | None = None
    ) -> RequestClass | None:
        """None: admitted; else the class of the refused request. ``native``: the path is
        served by a native handler (its reads use the native pool; its writes, the chat
        send, the WSGI pool). ``request_start``: nginx's ``X-Request-Start`` header."""
        request_class = classify(method, path)
        if request_class is RequestClass.POLL:
            return None
        sojourn = _sojourn_secs(request_start)
        sample = min(sojourn, SOJOURN_SAMPLE_CAP_SECS)
        self.sojourn_secs += SOJOURN_EWMA_WEIGHT * (sample - self.sojourn_secs)
        if request_class is RequestClass.WRITE:
            pool, budget = self.wsgi_pool, WRITE_WAIT_BUDGET_SECS
            target = WRITE_SOJOURN_TARGET_SECS
        else:
            pool = self.native_pool if native else self.wsgi_pool
            budget, target = READ_WAIT_BUDGET_SECS, READ_SOJOURN_TARGET_SECS
        if self.sojourn_secs <= target and pool.expected_wait_secs() <= budget and not pool.full():
            return None
        self.shed[request_class] += 1
        metrics.observe_shed(request_class.value)
        self._log_now_and_then()
        return request_class

    def _log_now_and_then(self) -> None:
        """One line per interval while shedding, not one per refusal."""
        now = time.monotonic()
        if now - self._last_log < SHED_LOG_INTERVAL_SECS:
            return
        counts = {c.value: self.shed[c] - self._shed_logged[c] for c in RequestClass}
        log.warning(
            "overloaded: refused %s in the last %.0fs (waited before read %.0f ms, loop lag %.0f ms; "
            "expected wait: wsgi %.0f ms, native %.0f ms)",
            ", ".join(f"{n} {name}" for name, n in counts.items() if n),
            now - self._last_log,
            1000 * self.sojourn_secs,
            1000 * self.loop_lag_secs,
            1000 * self.wsgi_pool.expected_wait_secs(),
            1000 * self.native_pool.expected_wait_secs(),
        )
        self._shed_logged = dict(self.shed)
        self._last_log = now


def _sojourn_secs(request_start: str | None) -> float:
    """How long ago nginx sent the request (``t=<seconds since the epoch>``); 0 if unknown."""
    if not request_start or not request_start.startswith("t="):
        return 0.0
    try:
        return max(0.0, time.time() - float(request_start[2:]))
    except ValueError:
        return 0.0


OVERLOADED_BODY = errors.dumps_envelope(errors.error_body(errors.OVERLOADED)).encode()


class RefusedRequest(httputil.HTTPMessageDelegate):
    """Reads the refused request's body (the connection stays usable), then answers 526."""

    def __init__(self, request_conn: httputil.HTTPConnection) -> None:
        self.request_conn = request_conn

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        return None

    def data_received(self, chunk: bytes) -> None:
        return None

    def finish(self) -> None:
        spec = errors.OVERLOADED
        headers = httputil.HTTPHeaders(
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(OVERLOADED_BODY)),
                "Retry-After": str(RETRY_AFTER_SECS),
                **SECURITY_HEADERS,
            }
        )
        start = httputil.ResponseStartLine("HTTP/1.1", spec.http_status, "Service Unavailable")
        self.request_conn.write_headers(start, headers, chunk=OVERLOADED_BODY)
        self.request_conn.finish()

    def on_connection_close(self) -> None:
        return None
