"""The step container's limits on the real engine: a fork bomb stops at the pids limit (the
host never sees it), the root filesystem is read-only, /tmp is a small tmpfs, and an init
reaps what the step leaves behind."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import container, kbuild, ownership
from harness.container import DockerRunner, Mount, Step

pytestmark = pytest.mark.integration


def run(runner: DockerRunner, tmp_path: Path, script: str, timeout_s: float = 60):
    log = io.StringIO()
    step = Step("limits", ("sh", "-c", script), (Mount(tmp_path, read_only=False),),
                workdir=str(tmp_path), timeout_s=timeout_s)
    return runner.run(step, log), log.getvalue()


def test_a_fork_bomb_stops_at_the_pids_limit(docker_runner: DockerRunner, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    limit = 256  # the same mechanism as PIDS_LIMIT, small enough to be gentle to the host
    monkeypatch.setattr(container, "PIDS_LIMIT", limit)
    # the shell counts the children it started: it stops (dash exits) at the first failed fork
    script = (f"i=0; while [ $i -lt {4 * limit} ]; do sleep 600 & i=$((i+1)); "
              "echo $i > count; done 2>fork.err")
    result, log = run(docker_runner, tmp_path, script)
    assert result.exit_code not in (0, None), log  # it ended, and not by finishing the loop
    assert "cannot fork" in (tmp_path / "fork.err").read_text().lower()
    assert limit - 10 <= int((tmp_path / "count").read_text()) < limit
    assert container.PIDS_LIMIT < 10_000  # the real limit: far below the host's pid_max


def test_the_root_filesystem_is_read_only_and_tmp_is_writable(docker_runner: DockerRunner,
                                                              tmp_path: Path):
    result, log = run(docker_runner, tmp_path,
                      "touch /usr/kmatrix-x 2>err || echo ro >> out; touch /tmp/x && echo tmp >> "
                      "out; cat /proc/1/comm >> out; echo $HOME >> out")
    assert result.ok, log
    assert (tmp_path / "out").read_text().split() == ["ro", "tmp", "docker-init", "/tmp"]


def test_a_step_never_runs_as_root_and_writes_what_kmatrix_left_there(
        docker_runner: DockerRunner, tmp_path: Path):
    # kmatrix (root on CI) writes into a tree between steps; the step, never root, must still
    # be able to replace and append to what it finds there
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "from-kmatrix").write_text("kmatrix\n")
    result, log = run(docker_runner, tmp_path,
                      "id -u > uid; echo step >> sub/from-kmatrix; touch /proc/sysrq-trigger "
                      "2>/dev/null && echo root-write >> uid; true")
    assert result.ok, log
    ids = ownership.step_ids()
    assert (tmp_path / "uid").read_text().split() == [str(ids.uid)]
    assert ids.uid != 0
    assert (tmp_path / "sub" / "from-kmatrix").read_text() == "kmatrix\nstep\n"
    assert (tmp_path / "uid").stat().st_uid == ids.uid


def test_a_20_gb_write_fills_only_its_own_disk_and_is_an_infrastructure_fault(
        docker_runner: DockerRunner, tmp_path: Path):
    # a hostile tree's build step writes 20 GB into its output tree; the tree lives on a 64 MiB
    # filesystem here (a real cache: the cache's disk). The step stops at ENOSPC, and what it
    # printed is judged as the machine's fault ("disk full"), never the kernel's.
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(small)], check=True)
    try:
        log = io.StringIO()
        step = Step("build", ("dd", "if=/dev/zero", "of=big", "bs=1M", "count=20480"),
                    (Mount(small, read_only=False),), workdir=str(small), timeout_s=120)
        result = docker_runner.run(step, log)
        assert result.exit_code not in (0, None), log.getvalue()
        assert (small / "big").stat().st_size <= 64 << 20
        trouble = kbuild.infra_trouble(kbuild.step_output(log.getvalue().splitlines()))
        assert trouble is not None and trouble.startswith("disk full"), log.getvalue()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_a_step_reaches_its_mounts_under_the_cache(docker_runner: DockerRunner,
                                                   kmatrix_cache: Path):
    # kmatrix run as root keeps its cache in /root/.cache: Debian's /root (0700) would stop
    # the unprivileged step from reaching any mount below it (the image makes it 0755)
    where = Path(tempfile.mkdtemp(prefix="uid-check-", dir=kmatrix_cache))
    try:
        log = io.StringIO()
        step = Step("reach", ("sh", "-c", "id -u > out"), (Mount(where, read_only=False),),
                    workdir=str(where), timeout_s=60)
        result = docker_runner.run(step, log)
        assert result.ok, log.getvalue()
        assert (where / "out").read_text().split() == [str(ownership.step_ids().uid)]
    finally:
        shutil.rmtree(where)


def test_a_container_the_engine_cannot_start_is_removed_at_once(builder_image: str,
                                                               tmp_path: Path):
    """Docker creates a container whose device is missing and refuses to start it: the step
    is an infrastructure error naming the step and the engine's reason, and the container is
    gone right away (not left for the next run's reap)."""
    from harness.verdict import InfraError

    client = container.connect()
    run_id = f"start-fault-{tmp_path.name}"
    runner = DockerRunner(builder_image, client, run_id)
    step = Step("needs-a-device", ("true",), (Mount(tmp_path, read_only=False),),
                workdir=str(tmp_path), timeout_s=30, devices=("/dev/kmatrix-no-such-device",))
    with pytest.raises(InfraError, match="could not start step needs-a-device.*"
                       "kmatrix-no-such-device"):
        runner.run(step, io.StringIO())
    left = client.containers.list(  # type: ignore[attr-defined]
        all=True, filters={"label": f"{container.RUN_LABEL}={run_id}"})
    assert left == []
