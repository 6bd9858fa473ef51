"""The harder faults of issue 21, through nginx on the suite's stack: overload, a replay after
Redis lost its memory, a 35 s database lock, a hung process, a poll timeout nginx would cut.

Each asserts the outcome the issue asks for and writes its figures to ``FIGURES``
(docs/operations.md quotes them). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pymysql
import pytest
import redis
import uvloop

from deploy import Stack
from tests.conftest import REPO_ROOT
from tests.integration import overload
from tests.integration.figures import FIGURES
from tests.integration.load import Client, MixedLoad
from tests.integration.overload import HttpClient, Person, Sent, percentile
from tests.integration.services import MariaDBServer, RedisServer
from tests.integration.test_operations import (
    assert_no_loss,
    finish_load,
    names,
    replaced,
    started_load,
    summary,
    wait_for,
)
from wsgi_app import timeouts
from wsgi_app.errors import DATABASE_BUSY, OVERLOADED, TIMESTAMP_OUT_OF_WINDOW
from wsgi_app.services.auth.applications import AppCredentials

pytestmark = pytest.mark.integration

UPDATE = "/api/user/update"
SHOW = "/api/user/show"


def _people(stack: Stack, creds: AppCredentials, count: int) -> list[Person]:
    load = MixedLoad(stack.base_url, creds, people=count)
    load.sign_in()
    return [Person(p.user_id, p.token) for p in load.people]


# -- Redis loses its memory -----------------------------------------------------------------------


def test_a_captured_write_replayed_after_redis_was_flushed_is_refused(
    stack: Stack, stack_creds: AppCredentials, redis_server: RedisServer
) -> None:
    (person,) = _people(stack, stack_creds, 1)
    client = Client(stack.base_url, stack_creds)
    http = HttpClient(stack.base_url, stack_creds)
    captured = http.signed_request("POST", UPDATE, {"height": 170}, person)

    async def replay() -> Sent:
        try:
            return await http.send("write", captured)
        finally:
            http.close()

    first = asyncio.run(replay())
    assert first.accepted, first
    later, _ = client.call("POST", UPDATE, {"height": 180}, person)  # type: ignore[arg-type]
    assert later.status == 200
    redis.Redis.from_url(redis_server.url).flushdb()  # the suite's own Redis: loses every nonce
    again = asyncio.run(replay())
    _, shown = client.call("GET", SHOW, {}, person)  # type: ignore[arg-type]
    FIGURES["replay_after_redis_flush"] = {"status": again.status, "code": again.code}
    assert (again.status, again.code) == (401, TIMESTAMP_OUT_OF_WINDOW.code)
    assert shown["data"]["height"] == 180  # the replay changed nothing


# -- a 35 s database lock -------------------------------------------------------------------------

LOCK_SECS = 35.0


def test_a_35s_database_lock_fails_only_writes_with_an_envelope_in_bounded_time(
    stack: Stack, stack_creds: AppCredentials, mariadb_server: MariaDBServer
) -> None:
    people = _people(stack, stack_creds, 4)
    client = Client(stack.base_url, stack_creds)
    calls: list[tuple[str, float, float, int, int]] = []
    stop = threading.Event()

    def act(person: Person, method: str, path: str, params: dict) -> None:
        while not stop.is_set():
            call, _ = client.call(method, path, params, person)  # type: ignore[arg-type]
            calls.append((method, call.started, call.ended, call.status, call.code))
            time.sleep(0.05)

    threads = [threading.Thread(target=act, args=(p, "GET", SHOW, {}), daemon=True) for p in people[:2]] + [
        threading.Thread(target=act, args=(p, "POST", UPDATE, {"height": 175}), daemon=True)
        for p in people[2:]
    ]
    holder = pymysql.connect(host="127.0.0.1", port=mariadb_server.port, user="root")
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        locked_at = time.monotonic()
        holder.cursor().execute("FLUSH TABLES WITH READ LOCK")
        time.sleep(LOCK_SECS)
        holder.cursor().execute("UNLOCK TABLES")
        unlocked_at = time.monotonic()
        time.sleep(2.0 + timeouts.DB_LOCK_WAIT_SECS)
    finally:
        stop.set()
        holder.close()
        for thread in threads:
            thread.join(30)
    during = [c for c in calls if c[1] >= locked_at + 0.2 and c[2] <= unlocked_at]
    reads = [c for c in during if c[0] == "GET"]
    writes = [c for c in during if c[0] == "POST"]
    after = [c for c in calls if c[1] >= unlocked_at + timeouts.DB_LOCK_WAIT_SECS + 0.5]
    write_secs = [c[2] - c[1] for c in writes]
    FIGURES["database_lock"] = {
        "lock_secs": LOCK_SECS,
        "reads": len(reads),
        "reads_failed": len([c for c in reads if c[3] != 200]),
        "read_p99_ms": round(1000 * percentile([c[2] - c[1] for c in reads], 0.99)),
        "writes": len(writes),
        "writes_answered": sorted({(c[3], c[4]) for c in writes}),
        "write_answer_max_secs": round(max(write_secs, default=0), 2),
        "after_failed": len([c for c in after if c[3] != 200]),
    }
    assert reads and writes, "the scenario ran no requests"
    assert [c for c in reads if c[3] != 200] == [], "reads keep working"
    # 525 after the bounded lock wait; 526 when the writes already waiting for the lock fill
    # the pool past the write budget (shed at once instead of queueing behind the lock).
    answered = {(c[3], c[4]) for c in writes}
    assert (503, DATABASE_BUSY.code) in answered
    assert answered <= {(503, DATABASE_BUSY.code), (503, OVERLOADED.code)}
    assert max(write_secs) < timeouts.DB_LOCK_WAIT_SECS + 3.0  # bounded, far below nginx's cut
    assert [c for c in after if c[3] != 200] == []


# -- a hung process -------------------------------------------------------------------------------

HUNG_REQUEST_BOUND_SECS = 5.0


def _hangwatch_log(stack: Stack) -> str:
    path = stack.settings.log_dir / "hangwatch.log"
    return path.read_text() if path.exists() else ""


def test_a_stopped_process_is_replaced_and_no_request_waits_long(
    stack: Stack, stack_creds: AppCredentials
) -> None:
    victim = stack.status()["processes"][1]
    load = started_load(stack, stack_creds)
    stopped_at = time.monotonic()
    os.kill(victim["pid"], signal.SIGSTOP)
    try:
        wait_for(lambda: not _pids_alive([victim["pid"]]), "the hang watch's kill", 15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim["pid"], signal.SIGCONT)
    detected_at = time.monotonic()

    wait_for(lambda: replaced(stack, victim), "supervisord starting a new process")
    replaced_at = time.monotonic()
    finish_load(load, replaced_at)
    polls_wait = float(stack.settings.env.get("LONGPOLL_TIMEOUT_SECS", "5")) + 1.0
    waited_long = [
        c
        for c in load.calls
        if c.ended > detected_at + HUNG_REQUEST_BOUND_SECS
        and max(c.started, detected_at)
        + (polls_wait if c.path == "/api/chat/poll" else 0)
        + HUNG_REQUEST_BOUND_SECS
        < c.ended
    ]
    failures = load.failures()
    excused = [
        c for c in failures if c.method == "POST" and c.path != "/api/chat/send" and c.started <= detected_at
    ]
    FIGURES["sigstop"] = {
        **summary(load),
        "detected_secs": round(detected_at - stopped_at, 2),
        "replaced_secs": round(replaced_at - stopped_at, 2),
        "longest_wait_after_detection_secs": round(
            max(
                (c.ended - max(c.started, detected_at) for c in load.calls if c.ended > detected_at),
                default=0,
            ),
            2,
        ),
        "failed_non_idempotent_in_flight": names(excused),
    }
    assert "did not answer /api/time" in _hangwatch_log(stack)
    assert detected_at - stopped_at < 10.0
    assert names(waited_long) == []
    assert names([c for c in failures if c not in excused]) == []
    assert_no_loss(load)


def _pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


# -- a poll timeout nginx would cut -------------------------------------------------------------


def test_a_poll_timeout_above_nginxs_is_refused_at_start(stack: Stack) -> None:
    env = {
        **os.environ,
        **stack.settings.env,
        "DT_RUN_DIR": str(stack.settings.run_dir / "refused"),
        "LONGPOLL_TIMEOUT_SECS": "130",
        "DT_POLL_READ_TIMEOUT_SECS": "120",
    }
    deploy = subprocess.run(
        [sys.executable, "-m", "deploy", "render"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    process = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tornado_server.py"), "--port", "1"],
        env={**env, "UPSTREAM_POLL_READ_TIMEOUT_SECS": "120"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    FIGURES["poll_timeout_refused"] = {"deploy": deploy.stderr.strip(), "process_exit": process.returncode}
    assert deploy.returncode == 1 and len(deploy.stderr.strip().splitlines()) == 1
    assert "LONGPOLL_TIMEOUT_SECS=130" in deploy.stderr
    output = (process.stdout + process.stderr).strip().splitlines()
    assert process.returncode == 2
    assert [line for line in output if "refusing to start" in line and "LONGPOLL_TIMEOUT_SECS=130" in line]
    assert not [line for line in output if "Traceback" in line]


# -- overload -------------------------------------------------------------------------------------

CALIBRATE_SECS = 5.0
CALIBRATE_WORKERS = 8
OVERLOAD_FACTOR = 3.0
OVERLOAD_SECS = 8.0
RECOVERY_PROBE_SECS = 4.0
WINDOW_SECS = 0.5


@pytest.mark.skipif(
    os.environ.get("INTEGRATION_OVERLOAD") != "1",
    reason="opt-in (INTEGRATION_OVERLOAD=1): on a 2-core host shared with other work the generator "
    "competes with the process it overloads and the figures swing 2x between runs (docs/operations.md)",
)
def test_overload_at_three_times_the_sustainable_rate_is_shed(
    stack: Stack, stack_creds: AppCredentials
) -> None:
    """One process, sent to directly with the X-Request-Start stamp nginx adds: its own
    admission is what is tested (nginx's max_conns is a backstop for a saturated host). One
    process keeps 3x its sustainable rate within what one Python generator can offer on the
    same 2-core host without taking the CPU the process needs."""
    people = _people(stack, stack_creds, 24)
    port = stack.status()["processes"][0]["port"]
    figures = uvloop.run(_overload(stack.process_url(port), stack_creds, people))
    FIGURES["overload"] = figures
    assert figures["offered_per_sec"] >= 0.9 * figures["target_per_sec"], "the generator fell behind"
    assert figures["refused"] > 0, "3x the sustainable rate refused nothing"
    # On a host that is itself saturated (other work), the bounds scale with the calibration
    # taken in the same run: the figures on a quiet host, never less.
    assert figures["accepted_p99_ms"] <= max(1000, 3 * figures["baseline_p99_ms"])
    assert figures["refused_p99_ms"] <= max(50, figures["baseline_p50_ms"])
    assert figures["refusals_without_retry_after"] == 0
    assert figures["other_failures"] == []
    assert figures["goodput_per_sec"] >= 0.8 * figures["sustainable_per_sec"]
    assert figures["reads_failed"] == 0 and figures["polls_failed"] == 0, "reads and polls survive"
    assert figures["back_to_normal_secs"] <= 2.0


async def _overload(base_url: str, creds: AppCredentials, people: list[Person]) -> dict:
    writes = HttpClient(base_url, creds, stamp=True)
    readers = HttpClient(base_url, creds, stamp=True)
    counter = iter(range(10**9))

    def update() -> tuple[str, bytes]:
        person = people[next(counter) % len(people)]
        return "write", writes.signed_request("POST", UPDATE, {"height": random.randint(150, 200)}, person)

    def read() -> tuple[str, bytes]:
        return "read", readers.signed_request("GET", SHOW, {}, random.choice(people))

    def poll() -> tuple[str, bytes]:
        return "poll", readers.signed_request("GET", "/api/chat/poll", {}, random.choice(people))

    try:
        await overload.closed_loop(writes, update, CALIBRATE_WORKERS, 1.0)  # warm up
        calibration = await overload.closed_loop(writes, update, CALIBRATE_WORKERS, CALIBRATE_SECS)
        ok = [s for s in calibration if s.accepted]
        sustainable = len(ok) / CALIBRATE_SECS
        baseline_p99 = percentile([s.secs for s in ok], 0.99)
        target = OVERLOAD_FACTOR * sustainable
        signed = [update() for _ in range(int(target * OVERLOAD_SECS) + 100)]  # signed beforehand
        prepared = iter(signed)
        protected = asyncio.gather(
            overload.closed_loop(readers, read, 2, OVERLOAD_SECS),
            overload.closed_loop(readers, poll, 3, OVERLOAD_SECS),
        )
        (sent, offered), (reads, polls) = await asyncio.gather(
            overload.open_loop(writes, lambda: next(prepared), target, OVERLOAD_SECS), protected
        )
        ended = time.monotonic()
        after = await overload.closed_loop(writes, update, 2, RECOVERY_PROBE_SECS)
    finally:
        writes.close()
        readers.close()
    unsent = [s for s in sent if s.status == overload.NOT_SENT]
    sent = [s for s in sent if s.status != overload.NOT_SENT]
    offered -= len(unsent) / OVERLOAD_SECS
    accepted = [s for s in sent if s.accepted]
    refused = [s for s in sent if (s.status, s.code) == (503, OVERLOADED.code)]
    others = [s for s in sent if not s.accepted and s not in refused]
    normal = max(2 * baseline_p99, baseline_p99 + 0.05)
    return {
        "sustainable_per_sec": round(sustainable, 1),
        "baseline_p50_ms": round(1000 * percentile([s.secs for s in ok], 0.50)),
        "baseline_p99_ms": round(1000 * baseline_p99),
        "target_per_sec": round(target, 1),
        "offered_per_sec": round(offered, 1),
        "requests": len(sent),
        "not_sent_by_the_generator": len(unsent),
        "accepted": len(accepted),
        "goodput_per_sec": round(len(accepted) / OVERLOAD_SECS, 1),
        "accepted_p50_ms": round(1000 * percentile([s.secs for s in accepted], 0.50)),
        "accepted_p99_ms": round(1000 * percentile([s.secs for s in accepted], 0.99)),
        "refused": len(refused),
        "refused_p50_ms": round(1000 * percentile([s.secs for s in refused], 0.50)),
        "refused_p99_ms": round(1000 * percentile([s.secs for s in refused], 0.99)),
        "refused_max_ms": round(1000 * max((s.secs for s in refused), default=0)),
        "refusals_without_retry_after": len([s for s in refused if not s.retry_after]),
        "other_failures": sorted({(s.status, s.code, s.error) for s in others}),
        "reads": len(reads),
        "reads_failed": len([s for s in reads if not s.accepted]),
        "read_p99_ms": round(1000 * percentile([s.secs for s in reads], 0.99)),
        "polls": len(polls),
        "polls_failed": len([s for s in polls if not s.accepted]),
        "back_to_normal_secs": _back_to_normal_secs(after, ended, normal),
        "load_average": os.getloadavg()[0],
    }


def _back_to_normal_secs(after: list[Sent], ended: float, normal_secs: float) -> float:
    """Seconds from the end of the overload until every later window's p99 is normal again."""
    windows: dict[int, list[float]] = {}
    for s in after:
        windows.setdefault(int((s.ended - ended) / WINDOW_SECS), []).append(s.secs)
    bad = [w for w, secs in windows.items() if percentile(secs, 0.99) > normal_secs]
    return round((max(bad) + 1) * WINDOW_SECS, 1) if bad else 0.0
