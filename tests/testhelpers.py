"""What many tests share: where the test data is, running `kmatrix` as a user does (a
subprocess), and a runner that records the steps it is given instead of starting containers.

Test modules import it as ``testhelpers`` (pytest puts tests/ on sys.path for its conftest.py).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import IO

from harness.container import Step, StepResult

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
MINI_TREE = DATA / "mini-tree"  # a tiny fake kernel tree: Kconfig and kernel/module/Makefile
CONSOLE_DATA = DATA / "console"  # golden console logs of real boots
KCONFIG_DATA = DATA / "kconfig"  # Kconfig dumps of the real 6.12 tree


def run_kmatrix(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
                timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` in a subprocess, as a user runs it; output captured as text."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


class RecordingRunner:
    """A Runner that records every step and lets `act` play it (no Docker). Subclasses say what
    a step does; the reproducer is the step's argv behind `prefix`."""

    prefix = ""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def image_id(self) -> str:
        return "sha256:fake"

    def reproducer(self, step: Step) -> str:
        return self.prefix + shlex.join(step.argv)

    def run(self, step: Step, log: IO[str]) -> StepResult:
        self.steps.append(step)
        return self.act(step, log)

    def act(self, step: Step, log: IO[str]) -> StepResult:
        log.write(f"\n$ {self.reproducer(step)}\n")
        return StepResult(step.name, step.argv, 0, 0.0, False, [], self.reproducer(step))


def nightly_matrix(tree: Path, include: str) -> str:
    """The small object-tier matrix of the nightly tests: tinyconfig + MODULES on `tree`, an
    expect block where KALLSYMS=y is deliberately a link-mismatch (a regression to inject), and
    the given `include:` entries (YAML lines)."""
    return f"""
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y}}
build: {{targets: [kernel/module/], timeout: 900}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    tree_lookup.o: MODULES_TREE_LOOKUP
    tracking.o: MODULE_UNLOAD_TAINT_TRACKING
    procfs.o: PROC_FS
    sysfs.o: SYSFS
    kallsyms.o: n                    # deliberately wrong: KALLSYMS=y is a link-mismatch
include:
{include}
"""
