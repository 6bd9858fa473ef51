"""Sampling a server under load with py-spy, and summarising where its CPU went.

:func:`record` runs ``py-spy record --nonblocking`` (the target is never paused)
against a live pid for the duration of a load window, in raw "collapsed stack"
form: one line per distinct stack, ``frame;frame;... count``, each frame
``function (file:line)``. :func:`summarise` folds line numbers away and counts,
per function, the samples it was on the stack (inclusive) and at the top of it
(self). Only threads running Python code are sampled (py-spy leaves idle
threads out), so shares are of the process's busy time, not of wall time.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
SAMPLE_RATE_HZ = 200
_LINE_NUMBER = re.compile(r":\d+\)$")
_SITE_PACKAGES = re.compile(r"\(.*?site-packages/")
_REPO_PATH = re.compile(r"\(/.*?/(wsgi_app|async_handlers|tornado_server)")


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    inclusive: list[tuple[str, int]]
    self_time: list[tuple[str, int]]


def short_frame(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    frame = _LINE_NUMBER.sub(")", frame)
    frame = _SITE_PACKAGES.sub("(", frame)
    frame = _REPO_PATH.sub(r"(\1", frame)
    return re.sub(r"\(/.*?/lib/python3\.\d+/", "(", frame)


def summarise(collapsed: str, top: int = 15) -> ProfileSummary:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short_frame(frame) for frame in stack.split(";")]
        samples += count
        for frame in set(frames):
            inclusive[frame] += count
        self_time[frames[-1]] += count
    return ProfileSummary(samples, inclusive.most_common(top), self_time.most_common(top))


def record(pid: int, duration_s: int, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``duration_s``; the caller drives load, then waits on the result."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(PY_SPY),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(duration_s),
        "--rate",
        str(SAMPLE_RATE_HZ),
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def markdown(summary: ProfileSummary) -> str:
    if summary.samples == 0:
        return "(no samples)"

    def rows(items: list[tuple[str, int]]) -> list[str]:
        return [f"| {100 * n / summary.samples:.0f}% | `{frame}` |" for frame, n in items]

    return "\n".join(
        [
            f"{summary.samples} samples of busy threads. On the stack (inclusive):",
            "",
            "| share | function |",
            "|---:|---|",
            *rows(summary.inclusive),
            "",
            "At the top of the stack (self):",
            "",
            "| share | function |",
            "|---:|---|",
            *rows(summary.self_time),
        ]
    )
