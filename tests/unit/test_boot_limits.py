"""Issue 10, item 10: a boot slowed by a loaded host is not a kernel failure. Before the fix
every boot was killed at its limit and judged boot-timeout, even one whose console was still
advancing; a frozen (docker pause) boot was boot-timeout too."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests.exceptions
from test_boot import ON as BOOT_CONFIG
from test_boot import FakeRunner, spec
from test_container_faults import FakeClient, FakeContainer

from harness import boot
from harness.container import DockerRunner, Progress, Step, StepResult, StepTimeout, wait_for
from harness.verdict import InfraError, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Console(FakeContainer):
    """A container that never exits; each wait() advances the clock by its timeout and
    appends to the console while `prints_until` has not passed."""

    def __init__(self, clock: Clock, console: Path, prints_until: float,
                 paused: bool = False) -> None:
        super().__init__(requests.exceptions.ReadTimeout("timed out"))
        self.clock, self.console, self.prints_until = clock, console, prints_until
        self.attrs = {"State": {"OOMKilled": False, "Paused": paused}}

    def wait(self, timeout: float) -> dict[str, int]:
        self.clock.now += timeout
        if self.clock.now <= self.prints_until:
            with open(self.console, "a") as f:
                f.write("[ 1.0] still booting\n")
        raise requests.exceptions.ReadTimeout("timed out")


def stretch(tmp_path: Path, prints_until: float, paused: bool = False) -> tuple[StepTimeout,
                                                                               float]:
    clock, console = Clock(), tmp_path / "console.log"
    step = Step("boot-tcg", ("qemu",), (), timeout_s=100,
                progress=Progress(console, hard_s=300, stall_s=30))
    box = Console(clock, console, prints_until, paused)
    with pytest.raises(StepTimeout) as stopped:
        wait_for(box, step, 0.0, FakeClient(box), clock)
    return stopped.value, clock.now


def test_a_silent_console_is_stopped_at_the_soft_limit(tmp_path: Path) -> None:
    stop, at = stretch(tmp_path, prints_until=20)
    assert not stop.progressing and 100 <= at < 110


def test_a_console_still_advancing_goes_on_and_is_stopped_at_the_hard_limit(tmp_path: Path
                                                                           ) -> None:
    stop, at = stretch(tmp_path, prints_until=10_000)
    assert stop.progressing and at == 300


def test_a_console_that_stops_after_the_soft_limit_is_stopped_once_it_stalls(tmp_path: Path
                                                                           ) -> None:
    stop, at = stretch(tmp_path, prints_until=150)
    assert not stop.progressing and 180 <= at < 190


def test_a_paused_container_is_reported_as_paused(tmp_path: Path) -> None:
    stop, _ = stretch(tmp_path, prints_until=0, paused=True)
    assert stop.paused


def test_a_paused_boot_is_infra_error_not_boot_timeout(tmp_path: Path) -> None:
    clock = Clock()
    box = Console(clock, tmp_path / "console.log", 0, paused=True)
    step = Step("boot-tcg", ("qemu",), (), timeout_s=1,
                progress=Progress(tmp_path / "console.log", hard_s=3, stall_s=1))
    with pytest.raises(InfraError, match="paused from outside"):
        DockerRunner("kmatrix-builder:x", FakeClient(box)).run(step, io.StringIO())
    assert box.killed and box.removed


def progressing(text: str):
    def action(step: Step) -> StepResult:
        Path(step.argv[step.argv.index("-serial") + 1].removeprefix("file:")).write_text(text)
        return StepResult(step.name, step.argv, None, 900.0, True, [], "", progressing=True)
    return action


SLOW = "Linux version 6.12.0 (gcc)\n[    0.000000] Command line: console=ttyS0\n" \
       "[  250.000000] Freeing unused kernel image memory\n[  290.0] still going\n"


def test_a_boot_still_printing_at_the_hard_limit_is_infra_error_naming_the_host(
        tmp_path: Path) -> None:
    result = boot.boot(FakeRunner(progressing(SLOW)), spec(tmp_path, limit_s=300), BOOT_CONFIG,
                       io.StringIO())
    assert result.verdict is Verdict.INFRA_ERROR
    assert "the host is too slow" in result.reasons[0] and "load average" in result.reasons[0]


def test_a_kernel_flooding_the_console_is_still_the_kernels_failure(tmp_path: Path) -> None:
    flood = SLOW + "".join(
        "------------[ cut here ]------------\n"
        f"WARNING: CPU: 0 PID: 1 at kernel/module/dups.c:{i} kmod_dup_request_exists+0x1/0x2\n"
        "---[ end trace 0000000000000000 ]---\n" for i in range(50))
    result = boot.boot(FakeRunner(progressing(flood)), spec(tmp_path, limit_s=300),
                       BOOT_CONFIG, io.StringIO())
    assert result.verdict is Verdict.BOOT_FAIL


def test_a_console_past_its_cap_is_stopped_at_once(tmp_path: Path) -> None:
    clock, console = Clock(), tmp_path / "console.log"
    step = Step("boot-tcg", ("qemu",), (), timeout_s=100,
                progress=Progress(console, hard_s=300, stall_s=30, max_bytes=100))
    box = Console(clock, console, prints_until=10_000)
    with pytest.raises(StepTimeout) as stopped:
        wait_for(box, step, 0.0, FakeClient(box), clock)
    assert not stopped.value.progressing and clock.now < 100  # long before the soft limit


def test_a_guest_flooding_the_console_is_boot_fail_never_a_slow_host(tmp_path: Path) -> None:
    """Before the fix, a guest printing without end went on to the hard limit and was
    infra-error "the host is too slow" (and its console grew without bound)."""
    flood = SLOW + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" * 100
    assert boot.boot_step(spec(tmp_path, console_cap=1000)).progress.max_bytes == 1000
    result = boot.boot(FakeRunner(progressing(flood)), spec(tmp_path, limit_s=300,
                                                            console_cap=1000),
                       BOOT_CONFIG, io.StringIO())
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.reasons[0].startswith("console flood: the boot was stopped when its console "
                                        "passed 0.000953674 MiB"), result.reasons
    assert "last console lines: aaaa" in result.reasons[1]


def test_a_flood_of_kernel_reports_names_the_reports_first(tmp_path: Path) -> None:
    flood = SLOW + "".join(
        "------------[ cut here ]------------\n"
        f"WARNING: CPU: 0 PID: 1 at kernel/module/dups.c:{i} kmod_dup_request_exists+0x1/0x2\n"
        "---[ end trace 0000000000000000 ]---\n" for i in range(50))
    result = boot.boot(FakeRunner(progressing(flood)), spec(tmp_path, limit_s=300,
                                                            console_cap=1000),
                       BOOT_CONFIG, io.StringIO())
    assert result.verdict is Verdict.BOOT_FAIL
    assert "WARNING" in result.reasons[0] and result.reasons[-1].startswith("console flood")


class StreamingTimeout(Console):
    """The engine's answer started streaming when the poll's time ran out: requests raises
    ConnectionError(ReadTimeoutError), not ReadTimeout (seen on the real engine: before the fix
    every polled boot became `lost the connection to the Docker engine`)."""

    def wait(self, timeout: float) -> dict[str, int]:
        import urllib3.exceptions

        try:
            return super().wait(timeout)
        except requests.exceptions.ReadTimeout:
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.ReadTimeoutError(None, None, "Read timed out.")) from None


def test_a_poll_that_times_out_while_the_answer_streams_is_a_poll_not_a_lost_engine(
        tmp_path: Path) -> None:
    clock, console = Clock(), tmp_path / "console.log"
    step = Step("boot-tcg", ("qemu",), (), timeout_s=100,
                progress=Progress(console, hard_s=300, stall_s=30))
    box = StreamingTimeout(clock, console, prints_until=10_000)
    with pytest.raises(StepTimeout) as stopped:
        wait_for(box, step, 0.0, FakeClient(box), clock)
    assert stopped.value.progressing


def test_a_refused_connection_is_still_a_lost_engine(tmp_path: Path) -> None:
    box = FakeContainer(requests.exceptions.ConnectionError("Connection refused"))
    step = Step("boot-tcg", ("qemu",), (), timeout_s=100,
                progress=Progress(tmp_path / "c.log", hard_s=300, stall_s=30))
    with pytest.raises(requests.exceptions.ConnectionError):
        wait_for(box, step, 0.0, FakeClient(box), Clock())


def stopped_by(line: str, exit_code: int = 0, timed_out: bool = False):
    def action(step: Step) -> StepResult:
        Path(step.argv[step.argv.index("-serial") + 1].removeprefix("file:")).write_text(
            "Linux version 6.12.0 (gcc)\n[    0.000000] Command line: console=ttyS0\n"
            "[    2.100000] Freeing initrd memory: 2700K\n")
        return StepResult(step.name, step.argv, exit_code, 3.6, timed_out, [line], "")
    return action


def test_qemu_terminated_from_outside_is_infra_error_not_boot_timeout(tmp_path: Path) -> None:
    """Found by the fault suite (engine restarted during a boot): Docker's SIGTERM reaches
    QEMU, which exits 0 after `terminating on signal 15`; the cut console was boot-timeout."""
    for sender in ("1 (docker-init)", "7 (timeout)"):  # forwarded by timeout: it exits 0
        result = boot.boot(FakeRunner(stopped_by(
            f"qemu-system-x86_64: terminating on signal 15 from pid {sender}")),
            spec(tmp_path), BOOT_CONFIG, io.StringIO())
        assert result.verdict is Verdict.INFRA_ERROR, sender
        assert "stopped from outside" in result.reasons[0]


def test_qemus_own_timeout_is_still_boot_timeout(tmp_path: Path) -> None:
    result = boot.boot(FakeRunner(stopped_by(
        "qemu-system-x86_64: terminating on signal 15 from pid 7 (timeout)", exit_code=124)),
        spec(tmp_path), BOOT_CONFIG, io.StringIO())
    assert result.verdict is Verdict.BOOT_TIMEOUT
