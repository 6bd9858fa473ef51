"""Sampling a server under load with py-spy, and summarising where its time went.

:func:`record` runs ``py-spy record --idle --nonblocking`` (every thread
sampled, waiting ones included; the target is never paused) against a live
pid for the duration of a load window, in raw "collapsed stack" form: one line
per distinct stack, ``frame;frame;... count``, each frame ``function
(file:line)``. :func:`summarise` drops the samples of threads with nothing to
do (a pool worker waiting for a job, the event loop in ``epoll``), then, over
the remaining request-handling samples (wall time of requests in flight),
counts per function the samples it was on the stack (inclusive) and at the top
of it (self), and files each sample under the innermost known package
(:data:`PACKAGES`), as a socket wait when the top frame is socket I/O.
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


# (path fragment, category), innermost match wins.
PACKAGES = (
    ("pymysql/", "MariaDB (PyMySQL)"),
    ("redis/", "Redis (redis-py)"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("flask_sqlalchemy/", "SQLAlchemy"),
    ("(json/", "JSON"),
    ("(wsgi_app/", "app code (wsgi_app)"),
    ("(async_handlers/", "app code (async_handlers)"),
    ("flask/", "Flask + Werkzeug"),
    ("werkzeug/", "Flask + Werkzeug"),
    ("tornado", "Tornado + asyncio"),
    ("(asyncio/", "Tornado + asyncio"),
    ("(selectors.py", "Tornado + asyncio"),
    ("(concurrent/futures/", "thread pool hand-off"),
)
SOCKET_IO = ("(socket.py)", "_read_from_socket", "_read_bytes", "_write_bytes", "send_packed_command")
IDLE_LEAVES = ("wait (threading.py)", "select (selectors.py)", "EpollSelector.select (selectors.py)")


@dataclass(frozen=True)
class ProfileSummary:
    samples: int  # request-handling samples (idle threads left out)
    idle_samples: int
    inclusive: list[tuple[str, int]]
    self_time: list[tuple[str, int]]
    categories: list[tuple[str, int]]


def is_idle(frames: list[str]) -> bool:
    """A pool worker waiting for a job, or the event loop waiting in epoll with nothing running."""
    leaf = frames[-1]
    # Python 3.11's pool worker waits for a job in SimpleQueue.get, a C call: no Python frame
    # below ``_worker``, so the leaf is the worker itself (it is idle, not handing off a job).
    if leaf.startswith("_worker (") and "concurrent/futures/thread.py" in leaf:
        return True
    if not any(leaf.endswith(idle) for idle in IDLE_LEAVES):
        return False
    if "SelectorEventLoop.select" in leaf or "EpollSelector.select" in leaf:
        return True
    return not any("_WorkItem.run" in frame for frame in frames)


def category(frames: list[str]) -> str:
    leaf = frames[-1]
    for frame in reversed(frames):
        for fragment, name in PACKAGES:
            if fragment in frame:
                waiting = any(marker in leaf for marker in SOCKET_IO)
                return (
                    f"{name}: waiting on its socket"
                    if waiting and name.startswith(("MariaDB", "Redis"))
                    else name
                )
    return "other (interpreter, stdlib)"


def short_frame(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    frame = _LINE_NUMBER.sub(")", frame)
    frame = _SITE_PACKAGES.sub("(", frame)
    frame = _REPO_PATH.sub(r"(\1", frame)
    return re.sub(r"\(/.*?/lib/python3\.\d+/", "(", frame)


def summarise(collapsed: str, top: int = 15) -> ProfileSummary:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    samples = idle = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short_frame(frame) for frame in stack.split(";")]
        if is_idle(frames):
            idle += count
            continue
        samples += count
        for frame in set(frames):
            inclusive[frame] += count
        self_time[frames[-1]] += count
        categories[category(frames)] += count
    return ProfileSummary(
        samples, idle, inclusive.most_common(), self_time.most_common(top), categories.most_common()
    )


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
        "--idle",
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

    app_frames = [(f, n) for f, n in summary.inclusive if "(wsgi_app/" in f or "(async_handlers/" in f]
    return "\n".join(
        [
            f"{summary.samples} samples of threads handling a request ({summary.idle_samples} more of idle "
            "threads left out); shares are of request-handling time. By innermost package:",
            "",
            "| share | where |",
            "|---:|---|",
            *rows(summary.categories),
            "",
            "App functions on the stack (inclusive):",
            "",
            "| share | function |",
            "|---:|---|",
            *rows(app_frames[:15]),
            "",
            "At the top of the stack (self):",
            "",
            "| share | function |",
            "|---:|---|",
            *rows(summary.self_time),
        ]
    )
