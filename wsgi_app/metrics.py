"""Prometheus metrics of both sides, one registry per host in multiprocess mode.

Invariants:

- Every metric is defined here, once. With ``PROMETHEUS_MULTIPROC_DIR`` set
  in the environment before this module is first imported (supervisord.conf
  sets it for every process of a host), each process writes its values to
  files in that directory and ``/metrics`` on ANY process sums the whole
  host (``prometheus_client.multiprocess``); without it, one process's values.
- Label values are bounded: the endpoint is the route pattern (Flask's URL
  rule, the native handler's fixed path, or ``unmatched``), never a raw path;
  a method outside :data:`HTTP_METHODS` (any token a client sends) is ``other``.
- Gauges of a process (waiting polls, thread-pool queue depth) are sampled by
  the process itself about once a second (``sample_process``) and summed over
  live processes only (``livesum``); a stopping process removes its files
  (``mark_process_dead``), and a start removes the files of processes that are
  gone (killed without clean-up).
- ``dt_process_starts_total{port}`` counts starts per process slot; with the multiprocess
  directory a dead process's count stays in the sum, so a restart shows as a rise (the
  alert rules in ``deploy/prometheus/`` use it).
- Garbage-collector pauses (``watch_gc_pauses``, the Tornado server's) are noted
  by a ``gc`` callback into a plain queue and observed at the next sample, never
  inside the callback: a collection can start while this thread holds
  prometheus_client's multiprocess lock, which is not reentrant.
"""

from __future__ import annotations

import gc
import glob
import ipaddress
import os
import re
import time
from collections import deque
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from wsgi_app.config import PROMETHEUS_MULTIPROC_ENV, prometheus_multiproc_dir

MULTIPROC_ENV = PROMETHEUS_MULTIPROC_ENV
DATABASE_ERROR_CODES = {520: "database", 521: "redis"}
LATENCY_BUCKETS_SECS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
GC_PAUSE_BUCKETS_SECS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
GC_PAUSES_KEPT = 10_000  # between two samples (one second); more are dropped, oldest first
_PID_IN_FILE_RE = re.compile(r"_(\d+)\.db$")
# Methods counted by name; any other is counted as OTHER_METHOD (a client may send any token).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

if _dir := prometheus_multiproc_dir():  # the value files are opened as the metrics below are defined
    os.makedirs(_dir, exist_ok=True)

REQUESTS = Counter(
    "dt_requests_total",
    "HTTP requests answered, by endpoint, status and envelope error code (0 = success)",
    ["endpoint", "method", "status", "error_code"],
)
LATENCY = Histogram(
    "dt_request_duration_seconds",
    "Time from request start to response, by endpoint",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS_SECS,
)
DEPENDENCY_ERRORS = Counter(
    "dt_dependency_errors_total", "Requests failed because a dependency was down", ["dependency"]
)
SHED = Counter(
    "dt_requests_shed_total",
    "Requests refused at the edge because the process could not answer them in time (526)",
    ["request_class"],
)
WAITING_POLLS = Gauge(
    "dt_waiting_polls", "Long-polls parked and waiting for a wake-up", multiprocess_mode="livesum"
)
WAKEUPS = Counter("dt_poll_wakeups_total", "Waiting long-polls woken by a chat wake-up")
POOL_QUEUE = Gauge(
    "dt_threadpool_queue_depth",
    "Jobs queued on a worker pool, not yet started",
    ["pool"],
    multiprocess_mode="livesum",
)

# (endpoint, method, status, error code) -> that label set's request counter and latency histogram
# (bounded as the label values are).
_REQUEST_CHILDREN: dict[tuple[str, str, int, int | None], tuple[Counter, Histogram]] = {}

GC_PAUSE = Histogram(
    "dt_gc_pause_seconds",
    "Garbage-collector pauses (every thread of the process waits), by generation",
    ["generation"],
    buckets=GC_PAUSE_BUCKETS_SECS,
)
PROCESS_STARTS = Counter(
    "dt_process_starts_total",
    "Server processes started, by listening port (one process slot each): a rise is a restart",
    ["port"],
)
GC_CPU = Counter(
    "dt_gc_cpu_seconds",
    "CPU the garbage collector used, by generation (a pause far longer than this CPU: the host was busy)",
    ["generation"],
)


def observe_shed(request_class: str) -> None:
    SHED.labels(request_class).inc()


def observe_request(
    endpoint: str, method: str, status: int, error_code: int | None, duration_secs: float
) -> None:
    if method not in HTTP_METHODS:
        method = OTHER_METHOD
    children = _REQUEST_CHILDREN.get((endpoint, method, status, error_code))
    if children is None:  # labels() takes a lock and builds its key each time: once per label set
        children = _REQUEST_CHILDREN[(endpoint, method, status, error_code)] = (
            REQUESTS.labels(endpoint, method, str(status), str(error_code or 0)),
            LATENCY.labels(endpoint, method),
        )
    children[0].inc()
    children[1].observe(duration_secs)
    dependency = DATABASE_ERROR_CODES.get(error_code or 0)
    if dependency:
        DEPENDENCY_ERRORS.labels(dependency).inc()


def sample_process(waiting_polls: int, pool_queues: dict[str, int]) -> None:
    WAITING_POLLS.set(waiting_polls)
    for pool, depth in pool_queues.items():
        POOL_QUEUE.labels(pool).set(depth)
    while _gc_pauses:
        generation, pause_secs, cpu_secs = _gc_pauses.popleft()
        GC_PAUSE.labels(str(generation)).observe(pause_secs)
        GC_CPU.labels(str(generation)).inc(cpu_secs)


_gc_pauses: deque[tuple[int, float, float]] = deque(maxlen=GC_PAUSES_KEPT)  # generation, wall, CPU
_gc_started: list[float] = []  # wall clock, this thread's CPU clock


def _on_collection(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` entry: notes the pause only. It may run inside any code, a metric's
    lock held (prometheus_client's multiprocess lock is not reentrant), so it observes nothing."""
    if phase == "start":
        _gc_started[:] = [time.perf_counter(), time.thread_time()]
    elif _gc_started:
        wall_secs = time.perf_counter() - _gc_started[0]
        _gc_pauses.append((info["generation"], wall_secs, time.thread_time() - _gc_started[1]))


def watch_gc_pauses() -> None:
    """Time every collection of this process; ``sample_process`` files them under
    ``dt_gc_pause_seconds`` (wall clock: what requests wait) and ``dt_gc_cpu_seconds``
    (what the collector did; the rest of a pause was the host running something else).
    Once per process (a second call changes nothing)."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


def multiprocess_dir() -> str | None:
    return prometheus_multiproc_dir()


def render() -> tuple[bytes, str]:
    """The exposition text for this host (all processes) or this process."""
    directory = multiprocess_dir()
    if directory is None:
        from prometheus_client import REGISTRY

        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_started(port: int | None = None) -> None:
    """Count this start under its port (a dead process's count stays in the host's sum, so
    the sum rises on every restart) and drop the live-gauge files of processes that are gone
    (killed without clean-up)."""
    if port is not None:
        PROCESS_STARTS.labels(str(port)).inc()
    directory = multiprocess_dir()
    if directory is None:
        return
    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        found = _PID_IN_FILE_RE.search(path)
        if found and not _pid_alive(int(found.group(1))):
            multiprocess.mark_process_dead(int(found.group(1)), directory)


def process_stopping() -> None:
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), directory)


def address_allowed(remote_addr: str | None, allowed: Iterable[str]) -> bool:
    """Whether ``remote_addr`` is inside one of the ``allowed`` addresses or networks."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
