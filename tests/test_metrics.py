"""``/metrics``: Prometheus text, summed over the processes of a host, for configured addresses only.

Two real ``tornado_server.py`` processes share one ``PROMETHEUS_MULTIPROC_DIR``;
requests, a refused signature, a parked long-poll and its wake-up on one
process all show in the scrape of the other.
"""

from __future__ import annotations

import dataclasses
import gc
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_support import send_text, sent_id
from tests.helpers import ApiClient, HttpTransport
from wsgi_app.metrics import address_allowed
from wsgi_app.services.auth.applications import AppCredentials

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str) -> Samples:
    with urllib.request.urlopen(base_url + "/metrics", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and labels.items() <= dict(sample_labels).items()
    )


def wait_for(condition: Callable[[], bool], timeout_secs: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.1)


def test_metrics_only_for_configured_addresses(app: Flask, client) -> None:
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    refused = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert refused.status_code == 403 and refused.get_json()["code"] == 403
    app.config["METRICS_ALLOWED_IPS"] = ["10.0.0.0/8"]
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics").status_code == 403


def test_address_allowed_parses_networks() -> None:
    assert address_allowed("::1", ["::1/128"])
    assert not address_allowed("127.0.0.2", ["127.0.0.1/32"])
    assert not address_allowed("not-an-ip", ["0.0.0.0/0"])
    assert not address_allowed(None, ["0.0.0.0/0"])


def test_flask_side_counts_by_route_status_and_error(client) -> None:
    client.get("/api/health")
    client.get("/api/user/show?appkey=x&timestamp=1&nonce=n&sign=s")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="/api/health",error_code="0",method="GET",status="200"' in text
    assert 'endpoint="/api/user/show",error_code="507",method="GET",status="401"' in text
    assert "dt_request_duration_seconds_bucket" in text


def test_processes_of_a_host_are_summed(spawn_server, tmp_path: Path, creds: AppCredentials, auth) -> None:
    shared = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "LONGPOLL_TIMEOUT_SECS": "20"}
    first, second = spawn_server(**shared), spawn_server(**shared)
    for server, count in ((first, 3), (second, 2)):
        for _ in range(count):
            urllib.request.urlopen(server.base_url + "/api/time", timeout=30).read()
    second_api = ApiClient(HttpTransport(second.base_url), creds)
    wrong_secret = ApiClient(HttpTransport(second.base_url), dataclasses.replace(creds, secret="x" * 48))
    assert wrong_secret.get("/api/chat/poll").status == 401  # a refused signature
    alice, bob = auth.login(), auth.login()
    cursor = second_api.get("/api/chat/poll", user=alice).data["cursor"]

    samples = scrape(first.base_url)
    assert total(samples, "dt_requests_total", endpoint="/api/time", status="200") == 5
    assert total(samples, "dt_requests_total", endpoint="/api/chat/poll", error_code="506") == 1
    assert total(samples, "dt_request_duration_seconds_count", endpoint="/api/time") == 5

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(second_api.get, "/api/chat/poll", {"cursor": cursor}, user=alice)
        wait_for(lambda: total(scrape(first.base_url), "dt_waiting_polls") == 1)
        msg_id = sent_id(send_text(second_api, bob, alice, "wake up"))
        assert [m["msg_id"] for m in waiting.result(15).data["list"]] == [msg_id]
    wait_for(lambda: total(scrape(first.base_url), "dt_poll_wakeups_total") >= 1)
    wait_for(lambda: total(scrape(first.base_url), "dt_waiting_polls") == 0)
    assert ("dt_threadpool_queue_depth", (("pool", "wsgi"),)) in scrape(first.base_url)
    # Every process times its collector's pauses (the youngest generation runs within seconds).
    wait_for(lambda: total(scrape(first.base_url), "dt_gc_pause_seconds_count", generation="0") >= 1)
    # A stopped process's gauges leave the sum; its counters stay.
    second.stop()
    samples = scrape(first.base_url)
    assert total(samples, "dt_requests_total", endpoint="/api/time", status="200") == 5


def test_gc_pauses_are_observed_at_the_next_sample_not_inside_the_collection() -> None:
    from prometheus_client import REGISTRY

    from wsgi_app import metrics

    def full_collections() -> float:
        return REGISTRY.get_sample_value("dt_gc_pause_seconds_count", {"generation": "2"}) or 0.0

    metrics.watch_gc_pauses()
    metrics.watch_gc_pauses()  # once per process: a second call adds no second callback
    assert gc.callbacks.count(metrics._on_collection) == 1
    before = full_collections()
    gc.collect()
    assert full_collections() == before  # only noted; the callback touches no metric (and no lock)
    cpu_before = REGISTRY.get_sample_value("dt_gc_cpu_seconds_total", {"generation": "2"}) or 0.0
    metrics.sample_process(0, {})
    assert full_collections() == before + 1
    cpu_after = REGISTRY.get_sample_value("dt_gc_cpu_seconds_total", {"generation": "2"})
    assert cpu_after is not None and cpu_after > cpu_before  # a full collection walks the test process
