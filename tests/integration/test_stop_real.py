"""A run stopped from outside, on the real engine: SIGTERM (what CI systems send on cancel) and
SIGKILL (what they send after that) in the middle of a real build in the builder container.

Pass criteria: no container of the run is left, every record is whole and says it did not
finish, the reports are written (SIGTERM), results/latest names the stopped run and
`kmatrix summary` says it did not finish with the infrastructure status, never exit 0.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testhelpers import run_kmatrix

from harness import source
from harness.container import RUN_LABEL
from harness.verdict import EXIT_INFRA, EXIT_INTERRUPTED

from .test_core_real import write_matrix

pytestmark = pytest.mark.integration
COMBO = f"it-stop-{secrets.token_hex(3)}"


@pytest.fixture(autouse=True)
def no_tree_left():
    """Each test's own tree, removed at the end."""
    yield
    for tree in (source.cache_root() / "work").glob(f"*/{COMBO}"):
        shutil.rmtree(tree, ignore_errors=True)


def containers(label: str, value: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={label}={value}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def start_long_build(tmp_path: Path, tree: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`kmatrix run` of one vmlinux build at -j1 (minutes long) in a new tree of its own (a warm
    one could finish before the signal), returned once make runs in its container; the run
    directory with it."""
    m = write_matrix(tmp_path, tree, f"  - {{id: {COMBO}, config: {{}}}}", targets="[vmlinux]")
    with open(tmp_path / "run.out", "w") as out:  # a file, not a pipe nobody reads yet
        proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(m), "--results",
                                 str(tmp_path / "res"), "--workers", "1", "--jobs", "1",
                                 "--trees", "own", "--no-ccache"],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600  # a loaded machine: the seed and resolve come first
    while time.monotonic() < deadline:
        time.sleep(1)
        found = list((tmp_path / "res").glob(f"*/{COMBO}/build.log"))
        if found and " vmlinux" in found[0].read_text():
            run_dir = found[0].parent.parent.resolve()  # not results/latest
            if containers(RUN_LABEL, run_dir.name):
                return proc, run_dir
    proc.kill()
    proc.wait()
    raise AssertionError("the build never started: " + (tmp_path / "run.out").read_text()[-2000:])


def test_sigterm_mid_build_removes_the_container_and_writes_every_report(tmp_path, kernel_tree,
                                                                       builder_image):
    proc, run_dir = start_long_build(tmp_path, kernel_tree)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, (tmp_path / "run.out").read_text()
    assert containers(RUN_LABEL, run_dir.name) == []
    record = json.loads((run_dir / COMBO / "record.json").read_text())
    assert record["status"] == "interrupted" and record["verdict"] in ("", "infra-error")
    # the build was killed mid-compile: its tree is marked for repair before any reuse
    assert (Path(record["output_dir"]) / ".kmatrix-dirty").is_file()
    assert COMBO in (run_dir / "summary.md").read_text()
    assert f'name="{COMBO}"' in (run_dir / "junit.xml").read_text()
    assert json.loads((run_dir / "state.json").read_text())["state"] == "interrupted"
    assert (run_dir.parent / "latest").resolve() == run_dir
    summary = run_kmatrix("summary", str(run_dir.parent / "latest"))
    assert summary.returncode == EXIT_INFRA, summary.stdout + summary.stderr
    assert "did not finish (interrupted)" in summary.stderr


def test_sigkill_mid_build_is_shown_as_killed_and_the_next_run_removes_its_container(
        tmp_path, kernel_tree, builder_image):
    proc, run_dir = start_long_build(tmp_path, kernel_tree)
    proc.kill()
    proc.wait(timeout=60)
    orphans = containers(RUN_LABEL, run_dir.name)
    assert orphans, "the killed run's build container should still be running (the fault)"
    try:
        summary = run_kmatrix("summary", str(run_dir.parent / "latest"))
        assert summary.returncode == EXIT_INFRA, summary.stdout + summary.stderr
        assert "was killed before it finished" in summary.stderr
        assert COMBO in summary.stdout  # the row is there, as infra-error
        # the next run on this machine removes the orphan before it claims any tree
        other = tmp_path / "next"
        other.mkdir()
        m = write_matrix(other, kernel_tree, "  - {id: it-next, config: {}}")
        # any kmatrix run on this machine removes it: under `pytest -n 2` another test's run
        # may come first (seen once in CI: the summary step leaves it time), and then this one
        # has nothing left to remove
        still = containers(RUN_LABEL, run_dir.name)
        rerun = run_kmatrix("run", str(m), "--results", str(other / "res"), "--workers", "1",
                            timeout=1800)
        if still:
            assert "container(s) of killed runs" in rerun.stdout, rerun.stdout + rerun.stderr
        assert containers(RUN_LABEL, run_dir.name) == []
    finally:
        for cid in orphans:  # never leave the fault behind, whatever failed above
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
