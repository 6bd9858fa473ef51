"""Locust entry for case ``stack``: the user classes of ``locustfile.py``, plus a sample recorder.

Every request's latency (ms) and outcome is kept per ``METHOD name`` and written
as JSON to ``$BENCH_LOCUST_SAMPLES`` when locust quits, so the bench computes
its percentiles with the same code as every other case (``bench.common``)
instead of reading locust's rounded CSV. The user classes are re-exported
unchanged, whatever their names, so this file follows ``locustfile.py``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import User, events

import locustfile

for _name, _value in vars(locustfile).items():
    if isinstance(_value, type) and issubclass(_value, User) and _value.__module__ == locustfile.__name__:
        globals()[_name] = _value

_samples: dict[str, list[float]] = {}
_failures: dict[str, int] = {}


@events.request.add_listener
def _record(request_type: str, name: str, response_time: float, exception: Any, **_: Any) -> None:
    key = f"{request_type} {name}"
    _samples.setdefault(key, []).append(response_time)
    if exception is not None:
        _failures[key] = _failures.get(key, 0) + 1


@events.quitting.add_listener
def _dump(environment: Any, **_: Any) -> None:
    with open(os.environ["BENCH_LOCUST_SAMPLES"], "w") as out:
        json.dump({"samples": _samples, "failures": _failures}, out)
