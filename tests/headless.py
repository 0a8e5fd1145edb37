"""Debian's chromium in headless mode, as the report tests use it: the rendered DOM of a page,
a screenshot, and a trap that sees every request the browser would send to the network.

The trap is an HTTP proxy on 127.0.0.1 that answers nothing and counts connections; chromium
is told to send everything through it (loopback included), so a page that fetches a font, a
script or an image from anywhere makes the count go up.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TIMEOUT_S = 120.0


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise AssertionError("chromium is not installed: apt-get install chromium (setup.sh "
                             "installs it)")
    return found


class NetworkTrap:
    """A proxy that accepts connections, records their first line and closes them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
                except OSError:
                    first = "(connection without a request)"
                self.requests.append(first)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@contextmanager
def network_trap() -> Iterator[NetworkTrap]:
    trap = NetworkTrap()
    try:
        yield trap
    finally:
        trap.close()


def _argv(trap: NetworkTrap, profile: str, *extra: str) -> list[str]:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{trap.port}", "--proxy-bypass-list=<-loopback>",
            *extra]


def dump_dom(page: Path, trap: NetworkTrap) -> str:
    """The DOM after the page's scripts ran."""
    with tempfile.TemporaryDirectory(prefix="kmatrix-chromium-") as profile:
        out = subprocess.run(_argv(trap, profile, "--dump-dom", page.resolve().as_uri()),
                             capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, f"chromium failed ({out.returncode}): {out.stderr[-500:]}"
    return out.stdout


def screenshot(page: Path, png: Path, trap: NetworkTrap, width: int = 1280,
               height: int = 2000) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kmatrix-chromium-") as profile:
        out = subprocess.run(_argv(trap, profile, f"--window-size={width},{height}",
                                   "--hide-scrollbars", f"--screenshot={png}",
                                   page.resolve().as_uri()),
                             capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0 and png.is_file(), f"no screenshot: {out.stderr[-500:]}"


def png_size(png: Path) -> tuple[int, int]:
    """(width, height) of a PNG file (its IHDR chunk)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{png} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# Appended to a copy of a page before --dump-dom: what the browser computed for each heatmap
# cell and detail row (colour, size, shown or not), written into the DOM for the test to read.
PROBE = """<script>
document.querySelectorAll("td.cell, tr[data-combination]").forEach(function (el) {
  var style = getComputedStyle(el);
  el.setAttribute("data-probe-bg", style.backgroundColor);
  el.setAttribute("data-probe-shown", el.getClientRects().length > 0 ? "1" : "0");
});
</script>"""


def probed_copy(page: Path) -> Path:
    """A copy of `page` beside it (relative links keep working) with PROBE before </body>."""
    copy = page.with_name(f".probe-{page.name}")
    copy.write_text(page.read_text().replace("</body>", PROBE + "\n</body>"))
    return copy
