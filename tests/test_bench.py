"""The logic of ``bench/``: pre-signed pools, wrk's pool script, latency maths, results blocks.

No timings are asserted: these check that the instrument counts and signs right.
"""

from __future__ import annotations

import random
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from bench import common, profiling, report
from bench.loadgen import (
    RECORD_SEPARATOR,
    Signer,
    WrkResult,
    merge_results,
    raw_request,
    run_wrk,
    signed_pool,
    write_pool,
)
from wsgi_app.errors import ApiError
from wsgi_app.models.application import SIGN_METHOD_HMAC_SHA256, SIGN_METHOD_MD5_LEGACY
from wsgi_app.services.auth.signing import verify_sign

SIGNER = Signer("APPKEY1", "s3cret-for-tests", SIGN_METHOD_HMAC_SHA256)


def parse_raw(raw: bytes) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """(method, path, headers, params) of one raw request built by the pool."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("ascii").split("\r\n")
    method, target, version = request_line.split(" ")
    assert version == "HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in header_lines)
    url = urlsplit(target)
    params = dict(parse_qsl(url.query)) if method == "GET" else dict(parse_qsl(body.decode("ascii")))
    if method != "GET":
        assert int(headers["Content-Length"]) == len(body)
    return method, url.path, headers, params


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_signed_pool_requests_verify_and_never_share_a_nonce(method: str) -> None:
    pool = signed_pool(
        SIGNER,
        method,
        "/api/user/update",
        lambda i: {"userId": str(i % 3 + 1), "token": "t" * 64, "nickname": f"n {i}&x=1"},
        500,
        "127.0.0.1:8123",
    )
    assert len(pool) == 500
    nonces = set()
    for i, raw in enumerate(pool):
        assert RECORD_SEPARATOR not in raw
        got_method, path, headers, params = parse_raw(raw)
        assert (got_method, path, headers["Host"]) == (method, "/api/user/update", "127.0.0.1:8123")
        assert params["nickname"] == f"n {i}&x=1" and params["appkey"] == SIGNER.appkey
        verify_sign(SIGNER.sign_method, method, path, params, SIGNER.secret)  # raises when wrong
        nonces.add(params["nonce"])
    assert len(nonces) == 500
    # A second pool never reuses the first one's nonces.
    again = signed_pool(SIGNER, method, "/api/user/update", lambda i: {}, 500, "h")
    assert nonces.isdisjoint(parse_raw(raw)[3]["nonce"] for raw in again)


def test_a_tampered_pooled_request_fails_verification() -> None:
    (raw,) = signed_pool(SIGNER, "GET", "/api/user/show", lambda i: {"peerId": "5"}, 1, "h")
    _, path, _, params = parse_raw(raw)
    params["peerId"] = "6"
    with pytest.raises(ApiError):
        verify_sign(SIGNER.sign_method, "GET", path, params, SIGNER.secret)
    with pytest.raises(ApiError):  # and it cannot be replayed on another path
        verify_sign(SIGNER.sign_method, "GET", "/api/user/update", parse_raw(raw)[3], SIGNER.secret)


def test_md5_legacy_pools_verify_too() -> None:
    legacy = Signer("K", "secret", SIGN_METHOD_MD5_LEGACY)
    for raw in signed_pool(legacy, "POST", "/api/auth/login", lambda i: {"phone": "13800138000"}, 20, "h"):
        _, path, _, params = parse_raw(raw)
        verify_sign(legacy.sign_method, "POST", path, params, legacy.secret)


def test_write_pool_splits_contiguously_and_loses_nothing(tmp_path: Path) -> None:
    pool = [raw_request("GET", f"/r/{i}", {}, "h") for i in range(10)]
    paths = write_pool(tmp_path / "pool", pool, 3)
    assert [p.name for p in paths] == ["pool.1", "pool.2", "pool.3"]
    parts = [p.read_bytes().split(RECORD_SEPARATOR) for p in paths]
    assert [len(part) for part in parts] == [4, 4, 2]
    assert [raw for part in parts for raw in part] == pool


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        with self.lock:
            self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_pool_script_sends_each_request_at_most_once_and_reports_exhaustion() -> None:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        pool = [raw_request("GET", f"/once/{i}", {}, host) for i in range(40)]
        result = run_wrk(f"http://{host}", pool, duration_s=1, connections=2, threads=2)
    finally:
        server.shutdown()
        server.server_close()
    sent = [path for path in _Recorder.seen if path.startswith("/once/")]
    assert len(sent) == len(set(sent))  # never one twice
    assert len(sent) >= 36  # wrk may use one request per thread to probe the script
    assert set(_Recorder.seen) - set(sent) <= {"/api/health"}
    assert result.exhausted_threads == 2
    assert result.requests >= len(sent) and sum(result.histogram_us.values()) == result.requests


def test_histogram_percentiles_match_the_list_rule() -> None:
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 99, 100, 101, 1000):
        values_us = [rng.choice([120, 450, 451, 900, 5000, rng.randrange(100, 90_000)]) for _ in range(size)]
        histogram: dict[int, int] = {}
        for v in values_us:
            histogram[v] = histogram.get(v, 0) + 1
        expected = common.percentiles([v / 1000 for v in values_us])
        assert common.histogram_percentiles(histogram) == pytest.approx(expected)
    assert common.histogram_percentiles({}) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


def test_histogram_points_is_the_cdf() -> None:
    histogram = {1000: 50, 2000: 45, 10_000: 5}
    points = common.histogram_points(histogram, points=100)
    assert len(points) == 100 and points == sorted(points)
    assert points.count(1.0) == 50 and points.count(2.0) == 45 and points.count(10.0) == 5
    assert common.histogram_points({}) == []


def test_merging_windows_adds_everything_up() -> None:
    a = WrkResult(2.0, 100, {"status": 1}, 0, {1000: 60, 2000: 40}, wrk_cpu_s=0.1, server_cpu_s=1.5)
    b = WrkResult(2.0, 300, {"status": 0, "timeout": 2}, 1, {1000: 300}, wrk_cpu_s=0.3, server_cpu_s=1.9)
    merged = merge_results([a, b])
    assert merged.requests == 400 and merged.duration_s == 4.0 and merged.rps == 100.0
    assert merged.errors == {"status": 1, "timeout": 2} and merged.failures == 3
    assert merged.exhausted_threads == 1
    assert merged.histogram_us == {1000: 360, 2000: 40}
    assert merged.wrk_cpu_share == pytest.approx(0.1) and merged.server_cpu_share == pytest.approx(0.85)


def test_wrk_json_is_read_as_microsecond_histogram() -> None:
    payload = {
        "duration_us": 8_000_000,
        "requests": 4,
        "bytes": 10,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 1, "timeout": 0},
        "exhausted_threads": 0,
        "latency_us": {"1500": 3, "9000": 1},
    }
    result = WrkResult.from_json(payload, wrk_cpu_s=0.2)
    assert result.rps == 0.5 and result.failures == 1
    assert common.histogram_percentiles(result.histogram_us)["p50"] == 1.5


def test_ratio_guards_an_empty_denominator() -> None:
    assert common.ratio(300, 100) == 3.0
    assert common.ratio(1, 0) is None and common.format_ratio(None) == "n/a"
    assert common.format_ratio(1.004) == "1.00x"


def test_results_blocks_replace_only_their_own_case() -> None:
    text = report.update_results("", "machine A", {"crud": "## crud\nold"})
    assert text.startswith(report.TITLE)
    text += "\nNotes written by hand.\n"
    text = report.update_results(text, "machine B", {"realtime": "## realtime\nrt"})
    text = report.update_results(text, "machine C", {"crud": "## crud\nnew"})
    assert report.read_block(text, "crud") == "## crud\nnew"
    assert report.read_block(text, "realtime") == "## realtime\nrt"
    assert report.read_block(text, "header") == "machine C"
    assert "old" not in text and "Notes written by hand." in text
    assert text.index("bench:crud:begin") < text.index("bench:realtime:begin")
    assert report.update_results(text, "machine C", {"crud": "## crud\nnew"}) == text


def test_a_section_with_regex_characters_is_stored_verbatim() -> None:
    body = r"## x \1 \g<0> $ ^ .*"
    text = report.replace_block(report.replace_block("", "x", "first"), "x", body)
    assert report.read_block(text, "x") == body


def test_profile_summary_counts_inclusive_and_self_samples() -> None:
    collapsed = "\n".join(
        [
            "run (/x/lib/python3.11/threading.py:10);work (/repo/wsgi_app/services/a.py:5);"
            "work (/repo/wsgi_app/services/a.py:7) 3",
            "run (/x/lib/python3.11/threading.py:10);query (/v/site-packages/sqlalchemy/orm/q.py:9) 1",
        ]
    )
    summary = profiling.summarise(collapsed)
    assert summary.samples == 4
    inclusive = dict(summary.inclusive)
    assert inclusive["run (threading.py)"] == 4
    assert inclusive["work (wsgi_app/services/a.py)"] == 3  # counted once per sample, not per frame
    assert dict(summary.self_time) == {"work (wsgi_app/services/a.py)": 3, "query (sqlalchemy/orm/q.py)": 1}


def test_profile_leaves_idle_threads_out_and_files_socket_waits_by_package() -> None:
    pool = "/x/lib/python3.11/concurrent/futures/thread.py"
    worker = f"_bootstrap (/x/lib/python3.11/threading.py:1);_worker ({pool}:2)"
    job = f"{worker};_WorkItem.run ({pool}:3)"
    get_user = (
        "get_user (/r/wsgi_app/services/profile/profiles.py:8);"
        "execute (/v/site-packages/sqlalchemy/orm/s.py:9)"
    )
    collapsed = "\n".join(
        [
            f"{worker};get (/x/lib/python3.11/queue.py:4);wait (/x/lib/python3.11/threading.py:5) 50",
            f"{worker} 40",  # waiting in SimpleQueue.get (C): the worker is the leaf
            "run_forever (/x/lib/python3.11/asyncio/base_events.py:6);"
            "EpollSelector.select (/x/lib/python3.11/selectors.py:7) 30",
            f"{job};{get_user};Connection._read_bytes (/v/site-packages/pymysql/connections.py:10);"
            "SocketIO.readinto (/x/lib/python3.11/socket.py:11) 6",
            f"{job};{get_user} 3",
            f"{job};check (/r/wsgi_app/services/auth/request_auth.py:12);"
            "SocketBuffer._read_from_socket (/v/site-packages/redis/_parsers/socket.py:13) 1",
        ]
    )
    summary = profiling.summarise(collapsed)
    assert (summary.samples, summary.idle_samples) == (10, 120)
    assert dict(summary.categories) == {
        "MariaDB (PyMySQL): waiting on its socket": 6,
        "SQLAlchemy": 3,
        "Redis (redis-py): waiting on its socket": 1,
    }
    assert dict(summary.inclusive)["get_user (wsgi_app/services/profile/profiles.py)"] == 9
    text = profiling.markdown(summary)
    assert "| 60% | `MariaDB (PyMySQL): waiting on its socket` |" in text


def test_bench_compare_names_other_checkouts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bench import servers

    other = tmp_path / "after"
    other.mkdir()
    (other / "tornado_server.py").write_text("")
    monkeypatch.setenv("BENCH_COMPARE", f"after={other}")
    assert servers.compare_checkouts() == {"tornado@after": other.resolve()}
    assert servers.command_for("tornado@after", 9000, other)[1] == str(other / "tornado_server.py")
    monkeypatch.setenv("BENCH_COMPARE", f"bad={tmp_path / 'missing'}")
    with pytest.raises(ValueError):
        servers.compare_checkouts()
    monkeypatch.delenv("BENCH_COMPARE")
    assert servers.compare_checkouts() == {}


def test_versions_name_every_package_and_service_with_a_version_or_a_dash() -> None:
    import tornado

    text = common.versions()
    assert f"tornado {tornado.version}" in text
    for label, _ in common.SERVICE_VERSION_COMMANDS:
        found = re.search(rf"\b{label} (\S+?)(,|$)", text)
        assert found and (found.group(1) == "-" or found.group(1)[0].isdigit()), text
