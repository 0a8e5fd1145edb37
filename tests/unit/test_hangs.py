"""Issue 10, item 9: nothing waits forever without a word. A lock held by another process is
named with its holder and given up after a bound; debootstrap, tar and the package listing
have time limits, and a tool past its limit is killed with its children."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests.exceptions

from harness import image, locks
from harness.verdict import InfraError

HOLD = """
import sys, time
from harness import locks
with locks.held(__import__("pathlib").Path(sys.argv[1]), "output tree t", print):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def other_holder(tmp_path: Path):
    lock = tmp_path / "t.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield lock, proc
    proc.kill()
    proc.wait()


def test_a_busy_lock_names_its_holder_and_gives_up_as_infra(other_holder) -> None:
    lock, proc = other_holder
    said: list[str] = []
    with pytest.raises(InfraError, match=rf"still held by \S+:{proc.pid} since .* \(output "
                                         r"tree t\)"), \
            locks.held(lock, "output tree t", said.append, max_wait_s=0.6, poll_s=0.2):
        pass
    assert said and all(f":{proc.pid} since" in line for line in said)
    assert said[0].startswith("kmatrix: waiting for output tree t: held by ")


def test_a_lock_is_taken_as_soon_as_its_holder_ends(other_holder) -> None:
    lock, proc = other_holder
    said: list[str] = []
    proc.kill()
    proc.wait()
    with locks.held(lock, "output tree t", said.append, max_wait_s=5, poll_s=0.1):
        assert f"{locks.owner_id()} since" in locks.holder(lock)
    assert said == []  # flock died with its holder: no wait at all


def test_a_tool_past_its_limit_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent = ("import subprocess, sys, time; "
              "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(c.pid)); time.sleep(60)")
    start = time.monotonic()
    with pytest.raises(InfraError, match="debootstrap did not finish"):
        image.run_bounded([sys.executable, "-c", parent], 2.0, "debootstrap did not finish")
    assert time.monotonic() - start < 30
    child = int(pid_file.read_text())
    time.sleep(0.5)
    state = Path(f"/proc/{child}/stat")
    assert not state.exists() or state.read_text().split(") ", 1)[1].startswith("Z")


def test_a_package_listing_that_never_answers_is_infra_and_removes_its_container() -> None:
    removed: list[bool] = []

    def wait(timeout: float) -> None:
        raise requests.exceptions.ReadTimeout("read timed out")

    box = SimpleNamespace(wait=wait, remove=lambda force: removed.append(force))
    client = SimpleNamespace(containers=SimpleNamespace(run=lambda *a, **k: box))
    with pytest.raises(InfraError, match="listing the packages .* took over 5 s"):
        image.installed_packages("kmatrix-builder:x", client, timeout_s=5)
    assert removed == [True]
