"""Fixtures of the fault-injection suite (issue 10): the suite's own Docker engine, the real
kernel tree, small matrices, and the pass criteria every case shares.

Cases marked `slow_fault` run only in `nox -s faults`; the others also in `nox -s tests` (CI).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faults.engine import Engine

REPO = Path(__file__).resolve().parents[2]

MATRIX = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}}
build: {{targets: {targets}, timeout: {timeout}}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    dups.o: MODULE_DEBUG_AUTOLOAD_DUPS
    tree_lookup.o: MODULES_TREE_LOOKUP
    stats.o: MODULE_STATS
include:
  - {{id: f-plain, config: {{}}}}
  - {{id: f-dups, config: {{CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}}}
  - {{id: f-stats, config: {{CONFIG_MODULE_STATS: y}}}}
"""
COMBOS = ["f-dups", "f-plain", "f-stats"]


@pytest.fixture(scope="session")
def engine(builder_image: str) -> Engine:
    """The suite's own dockerd (root: a run directory under /run, data under /var/tmp)."""
    clean_stale_engines()
    run = Path(tempfile.mkdtemp(prefix="kmf-", dir="/run"))
    root = Path(tempfile.mkdtemp(prefix="kmatrix-faults-", dir="/var/tmp"))
    (root / "owner").write_text(f"{os.getpid()} {run}\n")
    eng = Engine(root, run)
    eng.start()
    eng.load_image(builder_image)
    yield eng
    for cid in eng.docker("ps", "-aq", check=False).stdout.split():
        eng.docker("rm", "-f", cid, check=False)
    eng.stop()
    eng.unmount_all()
    subprocess.run(["rm", "-rf", "--one-file-system", str(root), str(run)], check=False)


def clean_stale_engines() -> None:
    """The engines of fault-suite sessions that were killed before their teardown: stopped,
    unmounted and removed (only the suite's own, found by their owner file)."""
    for root in Path("/var/tmp").glob("kmatrix-faults-*"):
        try:
            pid, run = (root / "owner").read_text().split()
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            continue  # a live session's engine
        stale = Engine(root, Path(run))
        stale.stop(signal.SIGKILL)
        stale.unmount_all()
        subprocess.run(["rm", "-rf", "--one-file-system", str(root), run], check=False)


@pytest.fixture
def live_engine(engine: Engine) -> Engine:
    """The engine, running (a case before may have stopped it)."""
    if not engine.answers():
        engine.start()
    return engine


def write_matrix(path: Path, tree: Path, targets: str = "[kernel/module/]",
                 timeout: float = 1800) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    m = path / "matrix.yaml"
    m.write_text(MATRIX.format(tree=tree, targets=targets, timeout=timeout))
    return m


@dataclass
class Outcome:
    code: int
    out: str
    run_dir: Path | None
    verdicts: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)


def kmatrix(*args: str, env: dict[str, str] | None = None, timeout: float = 1800
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def start_run(matrix: Path, results: Path, env: dict[str, str], *extra: str, boot: bool = False
              ) -> tuple[subprocess.Popen[bytes], Path]:
    out = results.parent / f"{results.name}.out"
    results.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(matrix),
                                 "--results", str(results), "--workers", "1", "--jobs", "2",
                                 *([] if boot else ["--no-boot"]), *extra],
                                cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env},
                                stdout=f, stderr=subprocess.STDOUT,
                                # Ctrl-C reaches it as at a terminal, even when the suite was
                                # started as a shell's background job (SIGINT ignored there)
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, out


def finish(proc: subprocess.Popen[bytes], out: Path, results: Path,
           timeout: float = 1800) -> Outcome:
    code = proc.wait(timeout=timeout)
    return outcome_of(code, out.read_text(), results)


def outcome_of(code: int, text: str, results: Path) -> Outcome:
    latest = results / "latest"
    run_dir = latest.resolve() if latest.exists() else None
    result = Outcome(code, text, run_dir)
    if run_dir is not None:
        for path in sorted(run_dir.glob("*/record.json")):
            data = json.loads(path.read_text())  # every record whole, valid JSON
            result.verdicts[data["combination"]] = data["verdict"] or data["status"]
            result.reasons[data["combination"]] = data["reasons"]
    return result


def run_to_end(matrix: Path, results: Path, env: dict[str, str], *extra: str) -> Outcome:
    proc, out = start_run(matrix, results, env, *extra)
    return finish(proc, out, results)


def wait_for(predicate, what: str, timeout: float = 900, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"never happened: {what}")


def container_of(engine: Engine, step: str, timeout: float = 900) -> str:
    """The id of the first running container of `step` (build, boot-tcg, ...)."""
    def running() -> str:
        ids = engine.docker("ps", "-q", "--filter", f"label=org.kmatrix.step={step}",
                            check=False).stdout.split()
        return ids[0] if ids else ""
    return wait_for(running, f"a running {step} container", timeout)


def assert_sound(result: Outcome, engine: Engine | None, combos: list[str]) -> None:
    """What every case must show, whatever the fault: no traceback, every combination with a
    whole record, no container left behind, the reports written."""
    assert "Traceback" not in result.out, result.out[-3000:]
    assert result.run_dir is not None, result.out[-2000:]
    assert sorted(result.verdicts) == sorted(combos), (result.verdicts, result.out[-2000:])
    assert (result.run_dir / "summary.md").is_file() and (result.run_dir / "junit.xml").is_file()
    if engine is not None and engine.answers():
        assert engine.containers() == [], "containers left behind"
