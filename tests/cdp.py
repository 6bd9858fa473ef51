"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

Standard library only: Chromium reads commands from its fd 3 and writes answers to its fd 4,
each a JSON object ended by a NUL byte. Enough for a test to open a page, run JavaScript in it
(awaiting promises) and read the result; one page per browser.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
]
HIGH_FD = 10  # the child's pipe ends are parked above 4 until they become its fds 3 and 4


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, chromium: str, profile_dir: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, HIGH_FD)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, HIGH_FD)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)

        def as_fds_3_and_4() -> None:
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        argv = [chromium, *CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile_dir}"]
        self.proc = subprocess.Popen(
            [*argv, "about:blank"],
            pass_fds=(3, 4, child_r, child_w),  # 3 and 4 are made by as_fds_3_and_4, before the others close
            preexec_fn=as_fds_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_r)
        os.close(child_w)
        self._buffer = b""
        self.events: list[dict[str, Any]] = []  # every event the page sent (method, params)
        self._next_id = 0
        self.session = ""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.call("Network.enable")

    def call(self, method: str, timeout_secs: float = 30, **params: Any) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_secs
        while True:
            answer = self._read(deadline)
            if "method" in answer and "id" not in answer:
                self.events.append(answer)
            elif answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError("no answer from the browser in time")
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                raise BrowserError("the browser closed its pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    def requests_sent(self) -> list[dict[str, Any]]:
        """Every request the page made so far (``Network.requestWillBeSent``): url, method, postData."""
        with contextlib.suppress(BrowserError):
            self.evaluate("0")  # collect the events that arrived meanwhile
        return [e["params"]["request"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str, timeout_secs: float = 30) -> Any:
        """The value of ``expression`` in the page (a promise is awaited); a thrown error raises."""
        result = self.call(
            "Runtime.evaluate",
            timeout_secs=timeout_secs + 5,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            timeout=int(timeout_secs * 1000),
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_secs: float = 60) -> Any:
        deadline = time.monotonic() + timeout_secs
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise BrowserError(f"timed out waiting for {expression}")

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close", timeout_secs=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)
