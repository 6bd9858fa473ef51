"""``/api/docs``: the Swagger UI page renders in a real headless Chromium and lists every operation.

The browser loads the page and its assets from the live server only (assets
come from a Python package, never a CDN); the rendered DOM must show one
operation block per documented operation. Chromium is Debian's package
(``.ci/run`` installs it); without it the test fails under CI and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import LiveServer

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--virtual-time-budget=20000",
]
_OPERATION_RE = re.compile(r'class="opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', re.S)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") or os.environ.get("REQUIRE_REAL_SERVICES"):
        pytest.fail("chromium is not installed: apt-get install chromium (.ci/run does it)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def test_docs_page_uses_no_outside_assets(live_server: LiveServer) -> None:
    with urllib.request.urlopen(live_server.base_url + "/api/docs", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        html = response.read().decode()
    assert re.findall(r'(?:src|href)="(https?:)?//', html) == []
    assert '"validatorUrl": null' in html
    for asset in re.findall(r'(?:src|href)="(/api/docs/[^"]+)"', html):
        with urllib.request.urlopen(live_server.base_url + asset, timeout=30) as response:
            assert response.status == 200, asset


def test_docs_page_renders_every_operation_in_chromium(live_server: LiveServer, tmp_path: Path) -> None:
    browser = chromium()
    with urllib.request.urlopen(live_server.base_url + "/api/openapi.json", timeout=30) as response:
        document = json.load(response)
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    result = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom"]
        + [live_server.base_url + "/api/docs/"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "DatingToday API" in dom
    rendered = {(method.upper(), path) for method, path in _OPERATION_RE.findall(dom)}
    assert rendered == documented, (documented - rendered, rendered - documented)
