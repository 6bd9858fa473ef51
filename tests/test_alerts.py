"""The shipped Prometheus configuration (``deploy/prometheus/``): valid, tested, and about real metrics.

``promtool`` (Debian's ``prometheus`` package; ``.ci/run`` installs it) checks the scrape
config and runs the rule unit tests (``alerts_test.yml``: each alert fires on its failure and
stays quiet on a healthy host). The rules may name only metrics ``wsgi_app/metrics.py``
exports; the restart alerts rest on ``dt_process_starts_total``, which real server processes
are shown to raise on a restart of the same port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from tests.conftest import REPO_ROOT, ServerProcess, free_port
from wsgi_app import metrics

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("REQUIRE_REAL_SERVICES"):
        pytest.fail("promtool is not installed: apt-get install prometheus (.ci/run does it)")
    pytest.skip("promtool is not installed (apt-get install prometheus)")


def exported_samples() -> set[str]:
    """The sample names of every metric defined in wsgi_app.metrics."""
    found: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                found.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
    return found


def test_the_rules_name_only_metrics_and_labels_the_app_exports() -> None:
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text()
    expressions = " ".join(re.findall(r"expr: (.+)", rules))
    used = set(re.findall(r"(?<![\w:])(dt_[a-z0-9_]+)", expressions))
    assert used, "no dt_ metric in the rules?"
    assert used - exported_samples() == set(), "the rules name metrics the app does not export"
    # Labels the alerts name: target labels, or declared by a metric (quoted in its definition).
    declared = set(re.findall(r'"(\w+)"', Path(metrics.__file__).read_text()))
    by_labels = set(re.findall(r"\$labels\.(\w+)", rules)) - {"host", "instance"}
    assert by_labels <= declared, by_labels - declared
    for alert in ("5xx", "503", "Dependency", "WaitingPolls", "ThreadPool", "GcPauses", "Restart", "Down"):
        assert re.search(rf"alert: DatingTodays?\w*{alert}", rules, re.I), alert


def test_promtool_checks_the_config_and_runs_the_rule_tests() -> None:
    tool = promtool()
    for args in (["check", "config", "prometheus.yml"], ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run(
            [tool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


def test_a_restart_of_a_process_raises_its_ports_start_count(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**server_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    port = free_port()

    def starts_of(server: ServerProcess) -> float:
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=30) as response:
            text = response.read().decode()
        found = re.search(rf'^dt_process_starts_total{{port="{port}"}} (\S+)$', text, re.M)
        return float(found.group(1)) if found else 0.0

    first = ServerProcess(env, port=port)
    try:
        assert starts_of(first) == 1
    finally:
        first.stop()
    second = ServerProcess(env, port=port)  # supervisord restarting the same slot
    try:
        assert starts_of(second) == 2
    finally:
        second.stop()
