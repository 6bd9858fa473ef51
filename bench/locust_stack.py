"""Locust entry for case ``stack``: the user classes of ``locustfile.py``, plus a sample recorder.

Every request's latency (ms) and outcome is kept per ``METHOD name`` and written
as JSON to ``$BENCH_LOCUST_SAMPLES`` when locust quits, with the wall-clock
start and stop of the test, so the bench computes requests/s over the time the
users really ran and percentiles with the same code as every other case
(``bench.common``) instead of reading locust's rounded CSV. The user classes are
re-exported unchanged, whatever their names, so this file follows ``locustfile.py``.

gevent's loop caches its clock; importing the app here can take seconds on a
busy machine, after which locust's ``--run-time`` timer would be armed from a
stale clock and fire at once. The clock is refreshed when the import is done
and again at ``init``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from locust import User, events

import locustfile

for _name, _value in vars(locustfile).items():
    if isinstance(_value, type) and issubclass(_value, User) and _value.__module__ == locustfile.__name__:
        globals()[_name] = _value
del _name, _value  # locust collects every User class bound here: each must appear once

_samples: dict[str, list[float]] = {}
_failures: dict[str, int] = {}
_reasons: dict[str, int] = {}  # "METHOD name: error" -> count
_clock: dict[str, float] = {}


def _refresh_gevent_clock(**_: Any) -> None:
    gevent.get_hub().loop.update_now()


_refresh_gevent_clock()
events.init.add_listener(_refresh_gevent_clock)


@events.test_start.add_listener
def _started(**_: Any) -> None:
    _clock["started"] = time.time()


@events.test_stop.add_listener
def _stopped(**_: Any) -> None:
    _clock["stopped"] = time.time()


@events.request.add_listener
def _record(
    request_type: str, name: str, response_time: float, exception: Any, response: Any = None, **_: Any
) -> None:
    key = f"{request_type} {name}"
    _samples.setdefault(key, []).append(response_time)
    if exception is not None:
        _failures[key] = _failures.get(key, 0) + 1
        body = getattr(response, "text", "") or ""
        reason = f"{key}: {str(exception)[:120]} {body[:160]}".strip()
        _reasons[reason] = _reasons.get(reason, 0) + 1


@events.quitting.add_listener
def _dump(environment: Any, **_: Any) -> None:
    with open(os.environ["BENCH_LOCUST_SAMPLES"], "w") as out:
        _clock.setdefault("stopped", time.time())
        json.dump({"samples": _samples, "failures": _failures, "reasons": _reasons, **_clock}, out)
