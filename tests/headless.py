"""Debian's chromium in headless mode, driven over the DevTools protocol, as the report tests
use it: open a page, let its scripts run, read what the browser rendered (the DOM with the
colour and visibility the browser *computed* for each heatmap cell), take a screenshot, and
list every request the page made.

The protocol runs over a pipe (``--remote-debugging-pipe``: chromium reads JSON messages,
each ended by a NUL byte, on its fd 3 and writes on its fd 4), so no port, no WebSocket library
and nothing but the standard library. The page's requests come from the protocol's
``Network.requestWillBeSent`` events of the page's own target: exactly what the page asked
for, not what chromium fetches for itself (it phones its update and time servers whatever the
page is). Chromium's proxy points at a closed local port, so nothing it asks reaches a network.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

TIMEOUT_S = 120.0
UNREACHABLE_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens on it here


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise AssertionError("chromium is not installed: apt-get install chromium (setup.sh "
                             "installs it)")
    return found


class ProtocolError(AssertionError):
    pass


@dataclass
class Page:
    """What the browser made of one page."""

    url: str
    html: str  # document.documentElement.outerHTML after the scripts ran (and the probe)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    errors: list[str] = field(default_factory=list)  # uncaught script exceptions

    def fetched_from_network(self) -> list[str]:
        """Requests that are not the page's own file or inline data."""
        return [url for url in self.requests
                if not (url.startswith("data:") or url == self.url or url == "about:blank")]


# Run in the page after load: writes what the browser computed for each heatmap cell and
# detail row (background colour, shown or not) into the DOM, for the test to read back.
PROBE = """(function () {
  document.querySelectorAll("td.cell, tr[data-combination]").forEach(function (el) {
    el.setAttribute("data-probe-bg", getComputedStyle(el).backgroundColor);
    el.setAttribute("data-probe-shown", el.getClientRects().length > 0 ? "1" : "0");
  });
  return document.documentElement.outerHTML;
})()"""


class Browser:
    """One headless chromium; `open` a page in a fresh tab, `screenshot` it."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        self.width, self.height = width, height
        self.profile = tempfile.TemporaryDirectory(prefix="kmatrix-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # chromium expects the pipe on its fds 3 (its input) and 4 (its output): move our ends
        # above 10 first so that putting them on 3 and 4 in the child overwrites neither
        child_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-pipe", f"--user-data-dir={self.profile.name}",
                f"--proxy-server={UNREACHABLE_PROXY}", "--proxy-bypass-list=<-loopback>",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--no-first-run",
                "--hide-scrollbars", "--mute-audio", f"--window-size={width},{height}",
                "about:blank"]

        def wire() -> None:  # in the child, before exec: dup2 only (inheritable copies)
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.log = tempfile.TemporaryFile()  # chromium's stderr (a pipe could fill and block it)
        # close_fds=False: the child keeps only inheritable fds (3, 4 and stdio; everything
        # Python opens is close-on-exec)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, close_fds=False,
                                     preexec_fn=wire)
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._target = ""
        self._session = ""

    # --- the protocol ---------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any] | None = None,
              session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"chromium did not answer within {TIMEOUT_S} s")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise ProtocolError(f"chromium exited: {self._stderr()}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise ProtocolError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            if "method" in message:
                self._events.append(message)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        for i, event in enumerate(self._events):
            if event["method"] == method and event.get("sessionId") == session:
                del self._events[i]
                return event
        while True:
            message = self._receive(deadline)
            if message.get("method") == method and message.get("sessionId") == session:
                return message
            if "method" in message:
                self._events.append(message)

    def _stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-1000:]

    # --- what the tests use ---------------------------------------------------------------

    def open(self, page: Path, probe: str = PROBE) -> Page:
        """Load `page` in a new tab until its load event, run `probe` in it and return what it
        returned (the DOM), with every request the page made and its script errors."""
        url = page.resolve().as_uri()
        if self._target:  # one tab at a time: the previous page's is closed
            self.call("Target.closeTarget", {"targetId": self._target})
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._target = target
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        self._session = session
        for method in ("Network.enable", "Page.enable", "Runtime.enable"):
            self.call(method, session=session)
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": 1,
            "mobile": False}, session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        result = self.call("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                           session=session)
        if "exceptionDetails" in result:
            raise ProtocolError(f"the probe failed: {result['exceptionDetails']}")
        requests, errors = [], []
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            if event["method"] == "Network.requestWillBeSent":
                requests.append(str(event["params"]["request"]["url"]))
            elif event["method"] == "Runtime.exceptionThrown":
                errors.append(json.dumps(event["params"]["exceptionDetails"])[:500])
        self._events = [e for e in self._events if e.get("sessionId") != session]
        return Page(url, str(result["result"].get("value", "")), requests, errors)

    def screenshot(self, png: Path, full_page: bool = False) -> None:
        """A PNG of the last page opened: the viewport, or the whole page."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics", session=self._session)
            size = metrics["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": self.width, "height": size["height"], "scale": 1})
        data = self.call("Page.captureScreenshot", params, session=self._session)["data"]
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self._send("Browser.close")
                self.proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()  # our own child only
            self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.log.close()
            self.profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def png_size(png: Path) -> tuple[int, int]:
    """(width, height) of a PNG file (its IHDR chunk)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{png} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
