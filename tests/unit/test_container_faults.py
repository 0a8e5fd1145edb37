"""Infrastructure faults during a step are never kernel verdicts (issue 10, item 2): a lost
Docker connection is an InfraError naming it (not a timeout), an OOM-killed container is
"out of memory", a boot SIGKILLed long before its limit is infra-error, not boot-timeout.
A fake Docker client plays the engine; the real engine is in tests/integration/test_faults_real.py
and `nox -s faults`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions
from test_boot import ON as BOOT_CONFIG
from test_boot import FakeRunner, spec, writes_console

from harness import boot
from harness.container import DockerRunner, Mount, Step
from harness.verdict import InfraError, Verdict


class FakeContainer:
    def __init__(self, wait: Any, oom: bool = False, start: BaseException | None = None) -> None:
        self._wait, self.attrs = wait, {"State": {"OOMKilled": oom}}
        self.killed = self.removed = self.started = False
        self._start = start

    def start(self) -> None:
        if self._start is not None:
            raise self._start
        self.started = True

    def logs(self, stream: bool, follow: bool) -> list[bytes]:
        return [b"make: building\n"]

    def wait(self, timeout: float) -> dict[str, int]:
        if isinstance(self._wait, BaseException):
            raise self._wait
        return {"StatusCode": self._wait}

    def reload(self) -> None:
        pass

    def kill(self) -> None:
        self.killed = True

    def remove(self, force: bool) -> None:
        self.removed = True


class FakeClient:
    def __init__(self, container: FakeContainer, answers: bool = True) -> None:
        self.container, self.answers = container, answers
        self.containers = self

    def create(self, *args: Any, **kwargs: Any) -> FakeContainer:
        self.kwargs = kwargs
        return self.container

    def ping(self) -> bool:
        if not self.answers:
            raise requests.exceptions.ConnectionError("connection refused")
        return True


STEP = Step("build", ("make", "kernel/module/"), (Mount(Path("/nonexistent/kmatrix-out"), read_only=False),),
            timeout_s=5)


def run(container: FakeContainer, answers: bool = True) -> Any:
    return DockerRunner("kmatrix-builder:x", FakeClient(container, answers)).run(
        STEP, io.StringIO())


def test_a_lost_engine_connection_is_infra_error_not_a_timeout() -> None:
    c = FakeContainer(requests.exceptions.ConnectionError("Connection aborted."))
    with pytest.raises(InfraError, match="lost the connection to the Docker engine during step"):
        run(c)
    assert c.killed and c.removed


def test_a_read_timeout_with_the_engine_gone_is_infra_error() -> None:
    c = FakeContainer(requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(InfraError, match="stopped answering"):
        run(c, answers=False)


def test_a_read_timeout_with_the_engine_answering_is_the_step_timeout() -> None:
    result = run(FakeContainer(requests.exceptions.ReadTimeout("read timed out")))
    assert result.timed_out and not result.ok


@pytest.mark.parametrize("code", [137, 2])  # make itself, or only a compiler child, killed
def test_an_oom_killed_step_is_infra_error_out_of_memory(code: int) -> None:
    with pytest.raises(InfraError, match="out of memory"):
        run(FakeContainer(code, oom=True))


def test_a_failing_step_without_oom_is_a_plain_failure() -> None:
    result = run(FakeContainer(2))
    assert result.exit_code == 2 and not result.timed_out


def test_a_boot_sigkilled_long_before_its_limit_is_infra_error(tmp_path: Path) -> None:
    text = "Linux version 6.12\nRun /init as init process\n"
    result = boot.boot(FakeRunner(writes_console(text, exit_code=137)),
                       spec(tmp_path, limit_s=180), BOOT_CONFIG, io.StringIO())
    assert result.verdict is Verdict.INFRA_ERROR
    assert "out of memory or killed from outside" in result.reasons[0]


def test_an_engine_gone_before_the_step_starts_is_infra_error_naming_docker() -> None:
    """Before the fix the SDK's requests ConnectionError escaped as `kmatrix failed:
    ConnectionError` (found by the fault suite: engine killed between two combinations)."""
    class Gone(FakeClient):
        def create(self, *args: Any, **kwargs: Any) -> FakeContainer:
            raise requests.exceptions.ConnectionError("('Connection aborted.', "
                                                      "ConnectionRefusedError(111))")

    with pytest.raises(InfraError, match="Docker could not start step build"):
        DockerRunner("kmatrix-builder:x", Gone(FakeContainer(0))).run(STEP, io.StringIO())


@pytest.mark.parametrize("fault", [
    docker.errors.APIError("error gathering device information while adding custom device "
                           "\"/dev/kvm\": no such file or directory"),
    requests.exceptions.ConnectionError("Connection aborted."),
])
def test_a_container_made_but_not_started_is_removed_at_once(fault: Exception) -> None:
    """The engine created the container but could not start it: an InfraError naming the
    step, and the container removed now (before, it stayed until the next run's reap)."""
    box = FakeContainer(0, start=fault)
    with pytest.raises(InfraError, match="Docker could not start step build"):
        run(box)
    assert box.removed and not box.started


def test_ctrl_c_while_a_container_starts_removes_it() -> None:
    box = FakeContainer(0, start=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(box)
    assert box.removed


@pytest.mark.parametrize("line", [
    "make[1]: *** [/src/linux/Makefile:236: __sub-make] Terminated",
    "make: *** [Makefile:236: __sub-make] Terminated",
    "make[2]: *** [scripts/Makefile.build:478: kernel] Killed",
])
def test_make_stopped_by_a_signal_is_infra_not_a_build_error(line: str) -> None:
    """Found by the fault suite (engine restarted during a build): Docker stops the container
    with SIGTERM, make ends with `... Terminated`, and the combination was a build-error."""
    from harness.kbuild import infra_trouble

    found = infra_trouble(["  CC      kernel/module/main.o", line])
    assert found is not None and "stopped from outside" in found


def test_a_real_compile_error_is_still_a_build_error() -> None:
    from harness.kbuild import infra_trouble

    assert infra_trouble([
        "kernel/module/dups.c:12:1: error: expected ';' before '}' token",
        "make[4]: *** [scripts/Makefile.build:229: kernel/module/dups.o] Error 1",
        "make: *** [Makefile:236: __sub-make] Error 2"]) is None


def test_an_answer_cut_short_by_a_dying_engine_is_infra_error_naming_docker() -> None:
    """Found by the fault suite in CI (engine killed mid-step): requests raised
    ChunkedEncodingError, which escaped as `kmatrix failed: ChunkedEncodingError`."""
    c = FakeContainer(requests.exceptions.ChunkedEncodingError("Response ended prematurely"))
    with pytest.raises(InfraError, match="Docker engine"):
        run(c, answers=False)
    assert c.killed and c.removed
