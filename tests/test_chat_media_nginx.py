"""The shipped nginx location for chat files, with a real nginx in front of a live server:
bytes only after the app's check (X-Accel-Redirect), never by asking nginx directly."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask

from tests.chat_support import png_bytes
from tests.conftest import REPO_ROOT, LiveServer, free_port
from tests.helpers import ApiClient

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")


def _shipped_location() -> str:
    text = (REPO_ROOT / "nginx.conf").read_text()
    match = re.search(r"\n( *)(location /_chat_media/ \{.*?\n\1\})\n", text, re.S)
    assert match, "nginx.conf has no /_chat_media/ location"
    return match.group(2)


@pytest.fixture
def nginx_front(app: Flask, tmp_path: Path) -> Iterator[str]:
    app.config["CHAT_MEDIA_ACCEL_PATH"] = "/_chat_media/"
    live = LiveServer(app)
    port = free_port()
    folder = app.config["CHAT_MEDIA_FOLDER"].rstrip("/") + "/"
    location = re.sub(r"alias [^;]+;", f"alias {folder};", _shipped_location())
    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""{user}
daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off; default_type application/json;
    client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /api/ {{ proxy_pass http://127.0.0.1:{live.port}; }}
{location}
    }}
}}
"""
    )
    proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(conf)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                live.stop()
                raise RuntimeError(
                    "nginx did not start: " + ((proc.stderr.read() if proc.stderr else b"") or b"").decode()
                ) from None
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        live.stop()


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_nginx_serves_a_chat_file_only_after_the_apps_check(
    nginx_front: str, api: ApiClient, alice, bob, carol
) -> None:
    params = {"peerId": bob.user_id, "clientMsgId": "n1", "kind": "image"}
    sent = api.post("/api/chat/send", params, user=alice, files={"file": (io.BytesIO(png_bytes()), "a.png")})
    path, _, name = sent.data["message"]["media_url"].partition("?name=")

    def read(viewer) -> tuple[int, bytes, dict[str, str]]:
        signed = api.signed("GET", path, {**viewer.params(), "name": name})
        return _get(nginx_front + path + "?" + urlencode(signed))

    status, body, headers = read(bob)
    assert (status, body) == (200, png_bytes())
    assert headers["Content-Type"] == "image/png" and headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in headers["Cache-Control"] and "X-Accel-Redirect" not in headers
    assert read(carol)[0] == 404
    assert _get(nginx_front + "/_chat_media/" + name)[0] == 404  # internal: not reachable directly
