"""The load generator: ``wrk`` sending requests signed before the timed window.

Every signed request needs a nonce the server has never seen, so a window's
requests are signed up front (:func:`signed_pool`, each nonce unique by
construction: a random run prefix plus a counter), written as raw HTTP/1.1
requests to one pool file per wrk thread (:func:`write_pool`), and sent by
``bench/wrk_pool.lua``, which never sends one twice (a thread whose pool runs
out stops and is reported as exhausted, which invalidates the window). Signing
therefore costs nothing inside the window, and wrk (C, epoll) is far faster than
the Python servers it drives: ``crud`` measures its ceiling on the native
``GET /api/time`` and records wrk's own CPU share for every window.

A window's result (:class:`WrkResult`) keeps the full latency histogram in
microseconds, so rounds merge exactly.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import BENCH_DIR, merge_histograms
from wsgi_app.services.auth.signing import sign_params

WRK_SCRIPT = BENCH_DIR / "wrk_pool.lua"
RECORD_SEPARATOR = b"\0"
WRK_TIMEOUT_SECS = 10


@dataclass(frozen=True)
class Signer:
    """One calling application's credentials."""

    appkey: str
    secret: str
    sign_method: str


def raw_request(method: str, path: str, params: Mapping[str, str], host: str) -> bytes:
    """One HTTP/1.1 request: parameters in the query string for GET, else a form body."""
    method = method.upper()
    encoded = urlencode(params)
    body = b""
    target = path
    headers = [f"Host: {host}"]
    if method == "GET":
        target = f"{path}?{encoded}" if encoded else path
    else:
        body = encoded.encode("ascii")
        headers += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    head = f"{method} {target} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode("ascii") + body


def signed_pool(
    signer: Signer,
    method: str,
    path: str,
    params_for: Callable[[int], Mapping[str, str]],
    count: int,
    host: str,
) -> list[bytes]:
    """``count`` signed requests, request ``i`` carrying ``params_for(i)`` and a nonce never used before."""
    prefix = f"b{secrets.token_hex(6)}"
    timestamp = f"{time.time():.3f}"
    pool = []
    for i in range(count):
        signed = sign_params(
            params_for(i),
            appkey=signer.appkey,
            secret=signer.secret,
            sign_method=signer.sign_method,
            http_method=method,
            path=path,
            timestamp=timestamp,
            nonce=f"{prefix}{i:x}",
        )
        pool.append(raw_request(method, path, signed, host))
    return pool


def write_pool(prefix: Path, pool: Sequence[bytes], threads: int) -> list[Path]:
    """Split ``pool`` into ``threads`` contiguous parts, ``<prefix>.1`` .. ``<prefix>.N``."""
    per_thread = -(-len(pool) // threads)
    paths = []
    for i in range(threads):
        path = Path(f"{prefix}.{i + 1}")
        path.write_bytes(RECORD_SEPARATOR.join(pool[i * per_thread : (i + 1) * per_thread]))
        paths.append(path)
    return paths


@dataclass
class WrkResult:
    duration_s: float = 0.0
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    exhausted_threads: int = 0
    histogram_us: dict[int, int] = field(default_factory=dict)
    wrk_cpu_s: float = 0.0
    server_cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failures(self) -> int:
        return sum(self.errors.values())

    @property
    def wrk_cpu_share(self) -> float:
        """wrk's CPU seconds per wall second (1.0 = one core busy)."""
        return self.wrk_cpu_s / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def server_cpu_share(self) -> float:
        return self.server_cpu_s / self.duration_s if self.duration_s > 0 else 0.0

    @classmethod
    def from_json(cls, payload: Mapping[str, Any], wrk_cpu_s: float = 0.0) -> WrkResult:
        latency = payload.get("latency_us") or {}
        assert isinstance(latency, dict)
        errors = payload.get("errors") or {}
        assert isinstance(errors, dict)
        return cls(
            duration_s=int(payload["duration_us"]) / 1e6,
            requests=int(payload["requests"]),
            errors={str(k): int(v) for k, v in errors.items()},
            exhausted_threads=int(payload.get("exhausted_threads", 0)),
            histogram_us={int(k): int(v) for k, v in latency.items()},
            wrk_cpu_s=wrk_cpu_s,
        )


def merge_results(results: Sequence[WrkResult]) -> WrkResult:
    """Several windows as one: durations, counts, errors and histograms added up."""
    errors: dict[str, int] = {}
    for result in results:
        for name, count in result.errors.items():
            errors[name] = errors.get(name, 0) + count
    return WrkResult(
        duration_s=sum(r.duration_s for r in results),
        requests=sum(r.requests for r in results),
        errors=errors,
        exhausted_threads=sum(r.exhausted_threads for r in results),
        histogram_us=merge_histograms(r.histogram_us for r in results),
        wrk_cpu_s=sum(r.wrk_cpu_s for r in results),
        server_cpu_s=sum(r.server_cpu_s for r in results),
    )


def _children_cpu_secs() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str,
    pool: Sequence[bytes],
    *,
    duration_s: float,
    connections: int,
    threads: int = 1,
    cycle: bool = False,
    cpu_of: Callable[[], float] | None = None,
) -> WrkResult:
    """One timed window: wrk sends ``pool`` to ``url`` (``cycle`` only for unsigned requests).

    ``cpu_of`` returns the server's CPU seconds so far; its difference over the
    window becomes ``server_cpu_s``. wrk's own CPU comes from ``RUSAGE_CHILDREN``.
    """
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        prefix = Path(tmp) / "pool"
        write_pool(prefix, pool, threads)
        out = Path(tmp) / "result.json"
        env = dict(os.environ, WRK_POOL=str(prefix), WRK_OUT=str(out), WRK_MODE="cycle" if cycle else "once")
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={WRK_TIMEOUT_SECS}s",
            "-s",
            str(WRK_SCRIPT),
            url,
        ]
        cpu_before, server_before = _children_cpu_secs(), cpu_of() if cpu_of else 0.0
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration_s + 60)
        wrk_cpu, server_cpu = _children_cpu_secs() - cpu_before, (cpu_of() if cpu_of else 0.0) - server_before
        if completed.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()[-500:]}")
        result = WrkResult.from_json(json.loads(out.read_text()), wrk_cpu_s=wrk_cpu)
        result.server_cpu_s = server_cpu
        return result
