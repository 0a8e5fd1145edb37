"""Issue 10, item 12: every step's container is bounded. Before the fix there was no pids
limit (a fork bomb in an untrusted tree reached the host), no swap limit, a writable root
filesystem and no init; and a commit bisect wrote into the ccache every run reads."""

from __future__ import annotations

import io
from pathlib import Path

from test_container_faults import FakeClient, FakeContainer

from harness import container
from harness.container import DockerRunner, Mount, Step
from harness.settings import RunSettings

STEP = Step("build", ("make", "kernel/module/"),
            (Mount(Path("/nonexistent/kmatrix-src")),
             Mount(Path("/nonexistent/kmatrix-out"), read_only=False, target=Path("/kmatrix/out"))),
            workdir="/kmatrix/out", env=(("KBUILD_BUILD_USER", "kmatrix"),), timeout_s=5,
            mem_bytes=2 << 30)


def test_the_engine_gets_every_limit() -> None:
    client = FakeClient(FakeContainer(0))
    DockerRunner("kmatrix-builder:x", client, run_id="r1").run(STEP, io.StringIO())
    kw = client.kwargs
    assert kw["init"] is True and kw["read_only"] is True
    assert kw["pids_limit"] == container.PIDS_LIMIT
    assert kw["mem_limit"] == kw["memswap_limit"] == 2 << 30  # no swap beyond memory
    assert set(kw["tmpfs"]) == {"/tmp"} and "nosuid" in kw["tmpfs"]["/tmp"]
    assert kw["environment"] == {"HOME": "/tmp", "KBUILD_BUILD_USER": "kmatrix"}
    assert kw["network_mode"] == "none" and kw["cap_drop"] == ["ALL"]
    assert kw["volumes"]["/nonexistent/kmatrix-src"]["mode"] == "ro"
    assert kw["labels"][container.RUN_LABEL] == "r1"


def test_the_logged_docker_run_line_has_the_same_limits() -> None:
    line = container.docker_run_line("kmatrix-builder:x", STEP)
    for flag in ("--init", "--read-only", f"--pids-limit {container.PIDS_LIMIT}",
                 "--memory-swap 2147483648", "--tmpfs /tmp:rw,nosuid,nodev", "-e HOME=/tmp",
                 "--network none", "--cap-drop ALL"):
        assert flag in line, flag


def test_a_commit_bisect_has_its_own_compiler_cache(tmp_path: Path) -> None:
    def ccache_of(domain: str) -> Path | None:
        settings = RunSettings(run_id="r", matrix_path="m", run_dir=str(tmp_path / "run"),
                               cache=str(tmp_path / "cache"), tree="/src", kernel={},
                               image="img", ccache_domain=domain)
        from harness import arch
        from harness.matrix import Matrix
        matrix = Matrix(tmp_path / "m.yaml", "debian", arch.get("x86_64"), "tinyconfig", (),
                        (), [])
        return settings.kbuild(matrix).ccache_dir

    assert ccache_of("") == tmp_path / "cache" / "ccache" / "x86_64-gcc-12"
    assert ccache_of("bisect") == tmp_path / "cache" / "ccache-bisect" / "x86_64-gcc-12"


def test_the_cpu_limit_is_at_most_the_cores_here(monkeypatch) -> None:
    """`--workers 4 --oversubscribe` on 2 cores gave a long build `--cpus 4`, which the engine
    refuses ("Range of CPUs is from 0.01 to 2.00"): three boot combinations infra-error."""
    from dataclasses import replace

    monkeypatch.setattr(container.os, "cpu_count", lambda: 2)
    wide = replace(STEP, cpus=4.0)
    client = FakeClient(FakeContainer(0))
    DockerRunner("kmatrix-builder:x", client, run_id="r1").run(wide, io.StringIO())
    assert client.kwargs["nano_cpus"] == 2 * 10**9
    assert "--cpus 2 " in container.docker_run_line("kmatrix-builder:x", wide)
    client = FakeClient(FakeContainer(0))
    DockerRunner("kmatrix-builder:x", client, run_id="r1").run(replace(STEP, cpus=1.5),
                                                                io.StringIO())
    assert client.kwargs["nano_cpus"] == 15 * 10**8
