"""Garbage-collector pauses during the realtime case's send phase: the generator's and the servers'.

A full collection stops every thread of its process; a pause in a server delays
the wake-ups it should deliver, a pause in the load generator delays the reading
of answers that already arrived (and so inflates the delivery it measures). Both
are reported so a tail can be put on the right side.

- The generator's own: a ``gc.callbacks`` entry (:class:`PauseLog`) times every
  collection while recording.
- The servers': the ``dt_gc_pause_seconds`` histogram (``wsgi_app.metrics``),
  scraped from ``/metrics`` of one server process before and after the phase
  (in multiprocess mode one process answers for the whole host). Buckets only:
  a pause is known to lie between two bucket bounds.
"""

from __future__ import annotations

import gc
import time
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

GC_PAUSE_METRIC = "dt_gc_pause_seconds"
SCRAPE_TIMEOUT_SECS = 5.0


class PauseLog:
    """Times this process's collections between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def start(self) -> None:
        gc.callbacks.append(self)

    def stop(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per generation: collections, total and longest pause in milliseconds."""
        out: dict[str, dict[str, float]] = {}
        for generation, secs in self.pauses:
            entry = out.setdefault(str(generation), {"count": 0, "total_ms": 0.0, "max_ms": 0.0})
            entry["count"] += 1
            entry["total_ms"] += 1000 * secs
            entry["max_ms"] = max(entry["max_ms"], 1000 * secs)
        return out


def scrape_gc_pauses(host: str, port: int) -> dict[str, dict[str, float]]:
    """``{generation: {"count", "sum_s", "le_<bound>": cumulative count}}`` of the host's servers
    ({} when the page cannot be read: the figures are an aid, never a reason to fail a run)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=SCRAPE_TIMEOUT_SECS) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != GC_PAUSE_METRIC:
            continue
        for sample in family.samples:
            entry = out.setdefault(sample.labels.get("generation", "?"), {})
            if sample.name.endswith("_count"):
                entry["count"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["sum_s"] = sample.value
            elif sample.name.endswith("_bucket"):
                entry[f"le_{sample.labels['le']}"] = sample.value
    return out


def pause_delta(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """What happened between two scrapes, per generation: count, total ms, and how many
    pauses were longer than each bucket bound (``over_ms``: {bound in ms: count})."""
    out: dict[str, Any] = {}
    for generation, now in after.items():
        was = before.get(generation, {})
        count = now.get("count", 0) - was.get("count", 0)
        over = {
            key[3:]: count - (value - was.get(key, 0))
            for key, value in now.items()
            if key.startswith("le_") and key != "le_+Inf"
        }
        out[generation] = {
            "count": int(count),
            "total_ms": 1000 * (now.get("sum_s", 0) - was.get("sum_s", 0)),
            "over_ms": {f"{1000 * float(k):g}": int(v) for k, v in over.items()},
        }
    return out


def render_pauses(label: str, summary: dict[str, Any]) -> str:
    """One table cell: ``gen 2: 12 (340 ms total, max 41 ms)`` style, generation by generation."""
    if not summary:
        return f"{label}: none recorded"
    parts = []
    for generation in sorted(summary):
        s = summary[generation]
        if "max_ms" in s:
            tail = f"max {s['max_ms']:.1f} ms"
        else:
            longer = [f">{bound} ms: {n}" for bound, n in s["over_ms"].items() if n and float(bound) >= 5]
            tail = ", ".join(longer) or "none over 5 ms"
        parts.append(f"gen {generation}: {s['count']} ({s['total_ms']:.0f} ms total, {tail})")
    return f"{label}: " + "; ".join(parts)
