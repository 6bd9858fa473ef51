"""The realtime bench's figures: GC pauses (``bench.gc_watch``), its quiet generator, host CPU."""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bench.gc_watch import PauseLog, pause_delta, render_pauses, scrape_gc_pauses
from bench.realtime_load import quiet_collector
from bench.realtime_report import _machine_row
from wsgi_app.metrics import GC_PAUSE_BUCKETS_SECS


class _Metrics:
    """A ``/metrics`` page holding a ``dt_gc_pause_seconds`` histogram the test fills."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.pauses = Histogram(
            "dt_gc_pause_seconds",
            "pauses",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS_SECS,
            registry=self.registry,
        )


@pytest.fixture
def metrics_page() -> Iterator[tuple[_Metrics, int]]:
    page = _Metrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(page.registry)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield page, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_server_pauses_between_two_scrapes_are_counted_by_generation_and_bound(
    metrics_page: tuple[_Metrics, int],
) -> None:
    page, port = metrics_page
    page.pauses.labels("0").observe(0.0005)
    before = scrape_gc_pauses("127.0.0.1", port)
    for secs in (0.0005, 0.003, 0.03):
        page.pauses.labels("0").observe(secs)
    page.pauses.labels("2").observe(0.2)
    delta = pause_delta(before, scrape_gc_pauses("127.0.0.1", port))

    assert delta["0"]["count"] == 3
    assert delta["0"]["total_ms"] == pytest.approx(33.5)
    assert delta["0"]["over_ms"]["1"] == 2  # 3 ms and 30 ms
    assert delta["0"]["over_ms"]["25"] == 1
    assert delta["0"]["over_ms"]["50"] == 0
    assert delta["2"] == {"count": 1, "total_ms": pytest.approx(200.0), "over_ms": delta["2"]["over_ms"]}
    assert delta["2"]["over_ms"]["100"] == 1 and delta["2"]["over_ms"]["250"] == 0
    cell = render_pauses("servers", delta)
    assert "gen 0: 3 (34 ms total, >5 ms: 1, >10 ms: 1, >25 ms: 1)" in cell
    assert "gen 2: 1 (200 ms total" in cell


def test_an_unreadable_metrics_page_is_no_figures_not_a_failed_run() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    assert scrape_gc_pauses("127.0.0.1", port) == {}
    assert render_pauses("servers", {}) == "servers: none recorded"


def test_the_pause_log_times_collections_only_while_started() -> None:
    log = PauseLog()
    log.start()
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        log.stop()
    gc.collect(1)
    summary = log.summary()
    assert summary["0"]["count"] >= 1 and summary["2"]["count"] == 1
    assert "1" not in summary or summary["1"]["count"] == 0
    assert summary["2"]["max_ms"] >= 0
    assert log not in gc.callbacks
    assert "max" in render_pauses("generator", summary)


def test_the_generator_collects_nothing_while_it_measures() -> None:
    frozen_before = gc.get_freeze_count()
    try:
        quiet_collector()
        assert not gc.isenabled()
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.enable()
        gc.unfreeze()


def test_the_machine_row_names_who_kept_the_cpus_busy() -> None:
    send = {"machine_busy_secs": 30.0, "server_cpu_secs": 16.0, "nginx_cpu_secs": 2.0}
    row = _machine_row(send, generator_secs=4.0, window_secs=20.0)
    assert row.startswith("1.50 of ")
    assert (
        "servers 0.80, nginx 0.10, generator 0.20, the rest (MariaDB, Redis, any other work on the host) 0.40"
        in row
    )
    assert (
        _machine_row({"server_cpu_secs": 1.0}, 0.0, 20.0) == "not measured"
    )  # a result from before 2026-12-07
