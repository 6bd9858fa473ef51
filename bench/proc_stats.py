"""CPU and memory of processes and of the host, read from Linux ``/proc`` (bench only)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS_PER_SEC = os.sysconf("SC_CLK_TCK")


def proc_cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SEC  # utime + stime, in clock ticks


def machine_busy_secs() -> float:
    """CPU seconds all CPUs spent on anything but idle and I/O wait since boot (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS_PER_SEC


def proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
