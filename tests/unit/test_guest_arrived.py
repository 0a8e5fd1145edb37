"""The guest's fake modprobe stays until every request of init's phase for its name has
reached the kernel (harness/guest/arrived.awk over the kernel log), then returns at once.
Run with the host's busybox awk (setup.sh installs busybox-static; the guest runs the same
busybox) over real consoles cut where the kernel log stood at a given moment."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AWK = ROOT / "harness" / "guest" / "arrived.awk"
CONSOLE = ROOT / "tests" / "data" / "console"


def arrived(log: str, name: str) -> bool:
    busybox = shutil.which("busybox")
    assert busybox, "busybox is not installed: run ./setup.sh (busybox-static)"
    done = subprocess.run([busybox, "awk", "-v", f"name={name}", "-f", str(AWK)], input=log,
                          text=True, capture_output=True, check=False, timeout=30)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def upto(path: str, marker: str, count: int = 1) -> str:
    """The console from its start up to and including the count-th line containing marker."""
    lines = (CONSOLE / path).read_text(errors="replace").splitlines(keepends=True)
    seen = 0
    for i, line in enumerate(lines):
        if marker in line:
            seen += 1
            if seen == count:
                return "".join(lines[:i + 1])
    raise AssertionError(f"{path}: {marker!r} appears {seen} time(s)")


def test_dups_on_first_request_waits_for_every_duplicate() -> None:
    # the 7 duplicates come before the helper's own line here: all 8 are in once it is
    assert not arrived(upto("dups-on-small.log", "duplicate request for module fs-kmatrixfs",
                            7), "fs-kmatrixfs")
    assert arrived(upto("dups-on-small.log", "KMATRIX-MODPROBE name=fs-kmatrixfs"),
                   "fs-kmatrixfs")


def test_a_phase_counts_only_its_own_requests() -> None:
    # repeat-fs asks for the same name once: the 8 of the phase before do not count
    log = upto("dups-on-small.log", "KMATRIX-PHASE begin phase=repeat-fs")
    assert not arrived(log + "[    2.7] KMATRIX-MODPROBE name=other pid=40\n", "fs-kmatrixfs")
    assert arrived(log + "[    2.7] KMATRIX-MODPROBE name=fs-kmatrixfs pid=40\n",
                   "fs-kmatrixfs")
    assert not arrived(log, "fs-kmatrixfs")


def test_names_match_whole() -> None:
    # char-major-120-1's requests are not char-major-120's (the fallback after it fails)
    log = upto("dups-on-small.log", "KMATRIX-MODPROBE name=char-major-120-1")
    assert arrived(log, "char-major-120-1")
    assert not arrived(log, "char-major-120")
    assert arrived(upto("dups-on-small.log", "KMATRIX-MODPROBE name=char-major-120 "),
                   "char-major-120")


def test_dups_off_waits_for_every_helper_run() -> None:
    assert not arrived(upto("dups-off.log", "KMATRIX-MODPROBE name=fs-kmatrixfs", 7),
                       "fs-kmatrixfs")
    assert arrived(upto("dups-off.log", "KMATRIX-MODPROBE name=fs-kmatrixfs", 8),
                   "fs-kmatrixfs")


def test_trace_reports_count_once_each() -> None:
    # with trace each duplicate is a report line and a WARNING splat: counted once
    log = upto("dups-on-trace.log", "KMATRIX-MODPROBE name=fs-kmatrixfs")
    assert log.count("WARNING:") >= 7
    assert arrived(log, "fs-kmatrixfs")
    assert not arrived(upto("dups-on-trace.log",
                            "duplicate request for module fs-kmatrixfs", 6), "fs-kmatrixfs")


def test_no_phase_or_no_count_never_arrives() -> None:
    assert not arrived("", "fs-kmatrixfs")
    assert not arrived("[ 0.1] KMATRIX-MODPROBE name=fs-kmatrixfs pid=3\n", "fs-kmatrixfs")
    assert not arrived("[ 0.1] KMATRIX-PHASE begin phase=x trigger=mount name=a n=zz\n"
                       "[ 0.2] KMATRIX-MODPROBE name=a pid=3\n", "a")
