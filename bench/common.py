"""What every benchmark case shares: machine facts, load average, percentiles, plots.

A case is a module ``bench/<name>.py`` listed in ``bench.__main__.CASES`` with
``run(quick: bool) -> str``: it starts what it needs, measures, stops what it
started, writes any PNGs into ``bench/plots/`` and returns a Markdown section
(heading ``## ...``) for ``bench/results.md``. ``quick`` is the CI smoke: small
and short, proving only that the case still runs end to end: the runner points
:data:`PLOTS_DIR` at the git-ignored ``bench/_quick/plots`` then (:func:`use_quick_output`),
so a smoke run never overwrites the committed figures or plots.

Latencies travel as histograms ``{microseconds: count}`` (what ``wrk`` records),
so windows of several rounds merge exactly; :func:`histogram_percentiles` uses
the same rank rule as :func:`percentiles` on the expanded list.
"""

from __future__ import annotations

import os
import platform
import re
import secrets
import statistics
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PLOTS_DIR = BENCH_DIR / "plots"
RESULTS_PATH = BENCH_DIR / "results.md"
QUICK_DIR = BENCH_DIR / "_quick"
US_PER_MS = 1000.0
BENCH_SECRET_BYTES = 32


def ensure_bench_secrets() -> None:
    """Give this process and every server it starts production-grade secrets for the run.

    The app refuses to start without them outside ``DEV_MODE`` (``InsecureConfigError``),
    and a bench measures the production configuration, so neither is asked of whoever runs
    ``python -m bench``: random ones for this run where the environment sets none. Children
    inherit the environment, so the bench's own app and its servers share them (tokens
    signed by one are accepted by the other)."""
    for name in ("SECRET_KEY", "PAYMENT_PROVIDER_SECRET"):
        if not os.environ.get(name):
            os.environ[name] = secrets.token_urlsafe(BENCH_SECRET_BYTES)
    os.environ.pop("SMS_ECHO_CODE", None)


def use_quick_output() -> None:
    """Send plots of this process to the git-ignored ``bench/_quick/plots``."""
    global PLOTS_DIR
    PLOTS_DIR = QUICK_DIR / "plots"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, Python {platform.python_version()}"


BENCH_PACKAGES = (
    "tornado", "uvloop", "flask", "werkzeug", "sqlalchemy", "pymysql", "redis", "hiredis",
    "gunicorn", "granian", "locust",
)  # fmt: skip
# (name, command): the first line of its output (stdout or stderr) names the version
SERVICE_VERSION_COMMANDS = (
    ("MariaDB", ("mariadbd", "--version")),
    ("Redis", ("redis-server", "--version")),
    ("nginx", ("nginx", "-v")),
    ("wrk", ("wrk", "--version")),
)


def versions() -> str:
    """The versions the figures were measured with: the Python packages on the server and
    client side, and the services and tools the cases start (``-`` where one is missing)."""
    from importlib import metadata

    found = []
    for name in BENCH_PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} -")
    for label, command in SERVICE_VERSION_COMMANDS:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
            line = (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            line = "-"
        version = re.search(r"\d+\.\d+(?:\.\d+)?", line)
        found.append(f"{label} {version.group() if version else '-'}")
    return ", ".join(found)


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies in milliseconds (all 0 for an empty list)."""
    if not values_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values_ms)

    def pick(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def merge_histograms(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    total: Counter[int] = Counter()
    for histogram in histograms:
        total.update(histogram)
    return dict(total)


def histogram_percentiles(histogram_us: Mapping[int, int]) -> dict[str, float]:
    """p50/p95/p99/max in ms of a ``{microseconds: count}`` histogram (rank rule of :func:`percentiles`)."""
    count = sum(histogram_us.values())
    if count == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(histogram_us.items())
    result: dict[str, float] = {}
    for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        rank = min(count - 1, int(fraction * count))  # 0-based index into the expanded list
        seen = 0
        for value_us, n in ordered:
            seen += n
            if seen > rank:
                result[name] = value_us / US_PER_MS
                break
    result["max"] = ordered[-1][0] / US_PER_MS
    return result


def histogram_points(histogram_us: Mapping[int, int], points: int = 1000) -> list[float]:
    """``points`` evenly ranked latencies (ms) of a histogram: its CDF, small enough to plot."""
    count = sum(histogram_us.values())
    if count == 0:
        return []
    ordered = sorted(histogram_us.items())
    wanted = [min(count - 1, int(i * count / points)) for i in range(points)]
    result: list[float] = []
    seen = 0
    cursor = iter(ordered)
    value_us, n = next(cursor)
    for rank in wanted:
        while seen + n <= rank:
            seen += n
            value_us, n = next(cursor)
        result.append(value_us / US_PER_MS)
    return result


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else None


def format_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def plot_latencies(name: str, series: Mapping[str, Sequence[float]], title: str) -> str:
    """A CDF plot of latency series (ms) as ``bench/plots/<name>.png``; returns the relative path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS_DIR.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = 0
    for label, values in series.items():
        ordered = sorted(values)
        if not ordered:
            continue
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.plot(ordered, ys, label=label)
        plotted += 1
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if plotted:
        ax.legend()
    path = PLOTS_DIR / f"{name}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return str(path.relative_to(BENCH_DIR))


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def child_pids(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids.extend(int(k) for k in (task / "children").read_text().split())
        except OSError:
            continue
    return kids


def process_tree_cpu_secs(pid: int) -> float:
    """User + system CPU seconds of a live process and its descendants (Linux ``/proc``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)
        pending.extend(child_pids(current))
    return total


def per_second(times: list[float], since: float) -> list[int]:
    """How many of ``times`` (monotonic) fall in each whole second after ``since``."""
    counts: list[int] = []
    for at in times:
        second = int(at - since)
        if second >= 0:
            counts.extend([0] * (second + 1 - len(counts)))
            counts[second] += 1
    return counts
