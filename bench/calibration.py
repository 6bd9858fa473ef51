"""The same-run calibration every figure is also given in: the server CPU of ``GET /api/time``.

The machine's speed varies about 2.6x between days and with the other sessions on it, so a
figure means something only beside the cost of a fixed request measured in the same run on
the same server process. ``GET /api/time`` is the native ceiling: no signature, no Redis, no
database, the least a request to this server can cost. A figure ``x`` ms of CPU per request
is also written as ``x / calibration`` "time-request units" (:func:`units`).

Invariant: the calibration runs against the process being measured, on a quiet server (no
other load sent at the same time), with the same load generator as the figures beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import nearby_setup as setup

CALIBRATION_PATH = "/api/time"
CALIBRATION_CONCURRENCY = 16


@dataclass(frozen=True)
class Calibration:
    cpu_ms: float  # server CPU per /api/time request
    rate: float  # /api/time requests per second at concurrency 16
    load: str  # load average when it was taken

    def units(self, cpu_ms: float) -> float:
        """``cpu_ms`` (server CPU per request) in /api/time requests."""
        return cpu_ms / self.cpu_ms if self.cpu_ms else float("nan")

    def text(self) -> str:
        return (
            f"`GET /api/time` {self.cpu_ms * 1000:.0f} µs server CPU per request, {self.rate:,.0f} req/s "
            f"at c{CALIBRATION_CONCURRENCY} (load average {self.load})"
        )


def calibrate(port: int, pid: int, requests: int) -> Calibration:
    """``requests`` of ``GET /api/time`` at concurrency 16 against the server ``pid`` on ``port``."""
    from bench.common import load_average

    setup.load(port, CALIBRATION_CONCURRENCY, [CALIBRATION_PATH] * min(200, requests))  # connections open
    cpu0 = setup.server_cpu_s(pid)
    result = setup.load(port, CALIBRATION_CONCURRENCY, [CALIBRATION_PATH] * requests)
    cpu = setup.server_cpu_s(pid) - cpu0
    return Calibration(1000 * cpu / requests, requests / result["wall_s"], load_average())


def combined(calibrations: list[Calibration]) -> Calibration:
    """The mean of calibrations taken around a case (before and after it)."""
    count = max(1, len(calibrations))
    return Calibration(
        sum(c.cpu_ms for c in calibrations) / count,
        sum(c.rate for c in calibrations) / count,
        " / ".join(c.load for c in calibrations),
    )
