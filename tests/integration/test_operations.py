"""Operating the stack under load, through nginx: restarts, a crash, Redis and database outages.

Each scenario runs the bounded mixed load of :mod:`tests.integration.load`
(signed-in people browsing, updating, chatting, each with a long-poll loop),
applies one fault, and checks what issue 9 asks: no failed request (except
where the scenario says), no message lost or duplicated. Waits are on
conditions with deadlines; the measured figures go to ``FIGURES``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from deploy import Stack
from tests.integration.figures import FIGURES
from tests.integration.load import Call, MixedLoad
from tests.integration.services import MariaDBServer, RedisServer
from wsgi_app.errors import DATABASE_UNAVAILABLE, REDIS_UNAVAILABLE, TIMESTAMP_OUT_OF_WINDOW
from wsgi_app.services.auth.applications import AppCredentials

pytestmark = pytest.mark.integration

CALLS_BEFORE_FAULT = 40
CALLS_AFTER_RECOVERY = 60
WAIT_SECS = 90.0
RECOVERED_AFTER_SECS = 1.0  # issue 9: no failure from 1 s after a dependency is back
OUTAGE_FAILURES = 15  # keep a dependency down until this many requests have failed


def wait_for(condition: Callable[[], bool], what: str, timeout_secs: float = WAIT_SECS) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def calls_since(load: MixedLoad, since: float) -> int:
    return len([c for c in load.calls_between(since, float("inf")) if c.started >= since])


def started_load(stack: Stack, creds: AppCredentials) -> MixedLoad:
    load = MixedLoad(stack.base_url, creds)
    load.sign_in()
    load.start()
    wait_for(lambda: calls_since(load, 0) >= CALLS_BEFORE_FAULT, "load warming up")
    return load


def finish_load(load: MixedLoad, since: float) -> None:
    wait_for(lambda: calls_since(load, since) >= CALLS_AFTER_RECOVERY, "load after recovery")
    load.stop()


def summary(load: MixedLoad) -> dict[str, int]:
    return {
        "requests": len(load.calls),
        "failed": len(load.failures()),
        "messages_accepted": len(load.accepted),
        "lost": len(load.lost()),
        "duplicated": len(load.duplicated()),
    }


def names(calls: list[Call]) -> list[str]:
    return sorted({c.describe() for c in calls})


def assert_no_loss(load: MixedLoad) -> None:
    assert load.accepted, "no message was accepted: the scenario proved nothing"
    assert load.lost() == [], f"lost: {load.lost()}"
    assert load.duplicated() == [], f"duplicated: {load.duplicated()}"


def test_rolling_restart_of_every_process_fails_nothing(stack: Stack, stack_creds: AppCredentials) -> None:
    pids_before = {p["port"]: p["pid"] for p in stack.status()["processes"]}
    load = started_load(stack, stack_creds)
    began = time.monotonic()
    records = stack.rolling_restart()
    restarted = time.monotonic()
    finish_load(load, restarted)
    pids_after = {p["port"]: p["pid"] for p in stack.status()["processes"]}
    FIGURES["rolling_restart"] = {
        **summary(load),
        "total_secs": round(restarted - began, 1),
        "per_process": [
            {"name": r.name, "drain_secs": round(r.stop_secs, 2), "ready_secs": round(r.ready_secs, 2)}
            for r in records
        ],
    }
    assert all(pids_after[port] != pid for port, pid in pids_before.items()), (pids_before, pids_after)
    assert names(load.failures()) == []
    assert_no_loss(load)


def test_sigkill_of_one_process_fails_only_non_idempotent_calls_in_flight(
    stack: Stack, stack_creds: AppCredentials
) -> None:
    victim = stack.status()["processes"][0]
    load = started_load(stack, stack_creds)
    killed_at = time.monotonic()
    os.kill(victim["pid"], signal.SIGKILL)

    wait_for(lambda: replaced(stack, victim), "supervisord restarting the killed process")
    recovered = time.monotonic()
    finish_load(load, recovered)
    failures = load.failures()
    excused = [
        c
        for c in failures
        if c.method == "POST" and c.path != "/api/chat/send" and c.started <= killed_at <= c.ended
    ]
    FIGURES["sigkill"] = {
        **summary(load),
        "restart_secs": round(recovered - killed_at, 2),
        "failed_non_idempotent_in_flight": names(excused),
    }
    assert names([c for c in failures if c not in excused]) == []
    assert_no_loss(load)


def replaced(stack: Stack, victim: dict) -> bool:
    """Whether the process on ``victim``'s port has a new pid and answers its health check."""
    now = next(p for p in stack.status()["processes"] if p["port"] == victim["port"])
    return now["pid"] not in (0, victim["pid"]) and bool(now["healthy"])


def _ms_percentile(sorted_secs: list[float], fraction: float) -> int | None:
    return round(1000 * sorted_secs[int(len(sorted_secs) * fraction)]) if sorted_secs else None


def _outage(
    stack: Stack,
    creds: AppCredentials,
    server: RedisServer | MariaDBServer,
    key: str,
    outage_codes: set[int],
) -> None:
    load = started_load(stack, creds)
    down_at = time.monotonic()
    server.stop()
    stopped = time.monotonic()
    wait_for(lambda: len(load.failures(stopped)) >= OUTAGE_FAILURES, f"requests failing while {key} is down")
    restarting = time.monotonic()
    server.start()
    back_at = time.monotonic()
    finish_load(load, back_at + RECOVERED_AFTER_SECS)
    while_down = load.failures(down_at, back_at)
    down_latencies = sorted(c.ended - c.started for c in while_down if c.path != "/api/chat/poll")
    # Answered while the server was gone (not the calls it was serving when it stopped).
    gone_latencies = sorted(
        c.ended - c.started for c in while_down if c.path != "/api/chat/poll" and c.started >= stopped
    )
    late = [c for c in load.failures() if c.started >= back_at + RECOVERED_AFTER_SECS]
    last_failure = max((c.ended for c in load.failures()), default=back_at)
    FIGURES[key] = {
        **summary(load),
        "down_secs": round(back_at - down_at, 1),
        "restart_secs": round(back_at - restarting, 2),
        "failed_while_down": len(while_down),
        "down_answer_p50_ms": _ms_percentile(down_latencies, 0.50),
        "down_answer_p99_ms": _ms_percentile(down_latencies, 0.99),
        "gone_answer_p50_ms": _ms_percentile(gone_latencies, 0.50),
        "gone_answer_p99_ms": _ms_percentile(gone_latencies, 0.99),
        "last_failure_after_back_secs": round(max(last_failure - back_at, 0.0), 2),
        "failures_from_1s_after_back": len(late),
    }
    # A Redis restarted empty lost its nonces: a request signed before the loss was noticed and
    # answered after it is refused once with 401/508 ("sign again", docs/operations.md).
    allowed = {(503, code) for code in outage_codes} | {(401, TIMESTAMP_OUT_OF_WINDOW.code)}
    not_envelope = [c for c in while_down if (c.status, c.code) not in allowed]
    assert names(not_envelope) == [], "while down, every failure is a 503 envelope"
    assert names(late) == []
    assert_no_loss(load)


def test_redis_outage_answers_503_and_recovers_without_failures(
    stack: Stack, stack_creds: AppCredentials, redis_server: RedisServer
) -> None:
    _outage(stack, stack_creds, redis_server, "redis_outage", {REDIS_UNAVAILABLE.code})


def test_database_outage_answers_503_and_recovers_without_failures(
    stack: Stack, stack_creds: AppCredentials, mariadb_server: MariaDBServer
) -> None:
    _outage(stack, stack_creds, mariadb_server, "database_outage", {DATABASE_UNAVAILABLE.code})
