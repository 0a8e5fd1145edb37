"""Fast fault cases on the real engine (issue 10); the whole suite is `nox -s faults`
(tests/faults/). Each case says what it injects and what kmatrix must say."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.container import Mount, Step
from harness.verdict import InfraError

pytestmark = pytest.mark.integration

# dash doubles a string until the memory limit stops it: a stand-in for an OOM-killed cc1/ld
MEMORY_HOG = ("sh", "-c", "x=xxxxxxxxxxxxxxxx; while :; do x=$x$x; done")


def test_an_oom_killed_step_is_infra_error_out_of_memory(docker_runner, tmp_path: Path) -> None:
    step = Step("build", MEMORY_HOG, (Mount(tmp_path, read_only=False),), workdir=str(tmp_path),
                timeout_s=120, mem_bytes=64 << 20)
    log = io.StringIO()
    with pytest.raises(InfraError, match="out of memory"):
        docker_runner.run(step, log)
    assert "OOMKilled" in log.getvalue()
