"""boot.py with a fake runner: steps as data, the QEMU command line, the bounded KVM probe,
and how a boot's outcome (console log + QEMU status) becomes a BootResult."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from testhelpers import CONSOLE_DATA, RecordingRunner

from harness import boot, cpio
from harness.container import Step, StepResult
from harness.kconfig import parse_config
from harness.verdict import InfraError, InputError, Verdict

DATA = CONSOLE_DATA
ON = parse_config((DATA / "dups-on.config").read_text())

Action = Callable[[Step], StepResult]


class FakeRunner(RecordingRunner):
    """Records steps; `action` decides what each one does (writes a console log, times out)."""

    def __init__(self, action: Action) -> None:
        super().__init__()
        self.action = action

    def act(self, step: Step, log: IO[str]) -> StepResult:
        log.write(f"$ {' '.join(step.argv)}\n")
        return self.action(step)


def serial_path(step: Step) -> Path:
    return Path(step.argv[step.argv.index("-serial") + 1].removeprefix("file:"))


def writes_console(text: str, exit_code: int | None = 0, timed_out: bool = False) -> Action:
    def action(step: Step) -> StepResult:
        serial_path(step).write_text(text)
        return StepResult(step.name, step.argv, exit_code, 1.0, timed_out, ["qemu tail"])
    return action


def spec(tmp_path: Path, cmdline: str = boot.kernel_cmdline(), **kw: object) -> boot.BootSpec:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "guest").mkdir(exist_ok=True)
    return boot.BootSpec(kernel=tmp_path / "out" / "bzImage",
                         initramfs=tmp_path / "guest" / "initramfs.cpio",
                         work_dir=tmp_path / "boot", cmdline=cmdline, **kw)  # type: ignore[arg-type]


# -- steps and command lines --------------------------------------------------------------

def test_qemu_argv_tcg(tmp_path: Path) -> None:
    argv = boot.qemu_argv(Path("/k/bzImage"), Path("/w/console.log"), "console=ttyS0",
                          "tcg", Path("/g/initramfs.cpio"), limit_s=90)
    assert argv[:4] == ("timeout", "--kill-after=5", "90", "qemu-system-x86_64")
    for flag in ("-no-reboot", "-nodefaults"):
        assert flag in argv
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-nic") + 1] == "none"
    assert argv[argv.index("-serial") + 1] == "file:/w/console.log"
    assert argv[argv.index("-append") + 1] == "console=ttyS0"
    assert argv[argv.index("-initrd") + 1] == "/g/initramfs.cpio"
    with pytest.raises(ValueError):
        boot.qemu_argv(Path("/k"), Path("/c"), "", "hvf")


def test_kernel_cmdline() -> None:
    assert boot.kernel_cmdline() == "console=ttyS0 panic=-1 printk.devkmsg=on loglevel=7"
    assert boot.kernel_cmdline(trace=True, extra=("KMATRIX_N=4",)).endswith(
        " module.enable_dups_trace=1 KMATRIX_N=4")
    assert [p.cmdline.endswith("module.enable_dups_trace=1") for p in boot.DEFAULT_BOOTS] == \
        [False, True, False]


def test_boot_step_limits_mounts_and_devices(tmp_path: Path) -> None:
    step = boot.boot_step(spec(tmp_path, limit_s=100))
    assert step.timeout_s == 100  # soft: a console still advancing may stretch it
    assert step.progress is not None and step.progress.hard_s == 100 * boot.HARD_LIMIT_FACTOR
    assert step.progress.path == tmp_path / "boot" / "console.log"
    qemu_limit = float(step.argv[step.argv.index("timeout") + 2])
    assert qemu_limit > step.progress.hard_s  # the runner decides; QEMU's timeout is a backstop
    assert step.devices == ()
    rw = {m.path for m in step.mounts if not m.read_only}
    assert rw == {tmp_path / "boot"}
    assert boot.boot_step(spec(tmp_path, accel="kvm")).devices == ("/dev/kvm",)


def test_bzimage_step(tmp_path: Path) -> None:
    step = boot.bzimage_step(Path("/src"), Path("/out"), 2)
    assert step.argv == ("make", "-C", "/src", "O=/out", "ARCH=x86_64", "-j2", "bzImage")
    assert step.workdir == "/out" and step.cpus == 2.0
    assert [(m.path, m.read_only) for m in step.mounts] == [(Path("/src"), True), (Path("/out"), False)]
    assert ("KBUILD_BUILD_USER", "kmatrix") in step.env


def test_guest_steps_and_initramfs(tmp_path: Path) -> None:
    steps = boot.guest_steps(tmp_path)
    assert steps[0].argv[:2] == ("gcc", "-static")
    assert steps[0].argv[-1] == str(boot.GUEST_SRC / "init.c")
    assert steps[1].argv == ("cp", "/bin/busybox", str(tmp_path / "busybox"))
    with pytest.raises(InputError):
        boot.write_initramfs(tmp_path)
    (tmp_path / "init").write_bytes(b"\x7fELF init")
    (tmp_path / "busybox").write_bytes(b"\x7fELF busybox")
    archive = boot.write_initramfs(tmp_path)
    entries = {e.path: e for e in cpio.read_newc(archive.read_bytes())}
    assert entries["dev/console"].rdev == (5, 1)
    assert entries["dev/kmsg"].rdev == (1, 11)
    assert entries["sbin/modprobe"].data.startswith(b"#!/bin/busybox sh")
    assert entries["sbin/modprobe"].mode & 0o111
    # the helper asks the kernel log with the awk program at the path it names
    assert b"-f /kmatrix/arrived.awk" in entries["sbin/modprobe"].data
    assert entries["kmatrix/arrived.awk"].data == (boot.GUEST_SRC / "arrived.awk").read_bytes()
    assert entries["init"].data == b"\x7fELF init"


def test_fragment_lines() -> None:
    lines = boot.fragment_lines()
    for needed in ("CONFIG_BUG=y", "CONFIG_KALLSYMS=y", "CONFIG_SERIAL_8250_CONSOLE=y",
                   "CONFIG_BLK_DEV_INITRD=y", "CONFIG_PRINTK=y"):
        assert needed in lines
    assert all(line.startswith(("CONFIG_", "# CONFIG_")) for line in lines)
    # a real kernel was built with this fragment (tests/data/console/README.md): every line
    # survived olddefconfig in it
    built = parse_config((DATA / "dups-on-small.config").read_text())
    for name, value in parse_config("\n".join(lines)).items():
        assert built.get(name, "n") == value, (name, value)
    # and what it leaves out for speed (docs/speed.md) is out of the kernel
    for name in ("CONFIG_VT", "CONFIG_INPUT", "CONFIG_RD_ZSTD", "CONFIG_RD_XZ"):
        assert built.get(name, "n") == "n" and ON.get(name) == "y", name


def test_a_kernel_built_with_the_fragment_boots_and_is_judged_a_pass() -> None:
    """The golden console of a real boot of that kernel (no virtual terminal, no initramfs
    decompressors, a gzip bzImage): the dups phases all there, judged pass."""
    from harness.judge import verdict_json

    record, status = verdict_json(DATA / "dups-on-small.log", DATA / "dups-on-small.config")
    assert (record["verdict"], status) == ("pass", 0), record["reasons"]
    assert record["phases"]["repeat-fs"]["duplicates"] == {"fs-kmatrixfs": 1}


# -- the KVM probe --------------------------------------------------------------------------

def test_probe_skipped_without_kvm_device(tmp_path: Path) -> None:
    runner = FakeRunner(lambda s: pytest.fail("must not run"))  # type: ignore[arg-type,return-value]
    log = io.StringIO()
    assert boot.probe_accel(runner, tmp_path / "bzImage", tmp_path, log,
                            kvm_device=tmp_path / "no-kvm") == "tcg"
    assert "not usable" in log.getvalue()


def test_probe_hang_falls_back_to_tcg(tmp_path: Path) -> None:
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    runner = FakeRunner(lambda s: StepResult(s.name, s.argv, 124, boot.KVM_PROBE_LIMIT_S, False))
    log = io.StringIO()
    assert boot.probe_accel(runner, tmp_path / "bzImage", tmp_path, log, kvm_device=kvm) == "tcg"
    [step] = runner.steps
    assert step.argv[:3] == ("timeout", "--kill-after=5", f"{boot.KVM_PROBE_LIMIT_S:g}")
    assert step.devices == (str(kvm),) and "-initrd" not in step.argv
    assert step.timeout_s <= boot.KVM_PROBE_LIMIT_S + boot.CONTAINER_SLACK_S
    assert "KVM probe failed (timed out)" in log.getvalue()


def test_probe_abort_falls_back_to_tcg(tmp_path: Path) -> None:
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    runner = FakeRunner(writes_console("", exit_code=1))
    assert boot.probe_accel(runner, tmp_path / "bzImage", tmp_path, io.StringIO(),
                            kvm_device=kvm) == "tcg"


def test_probe_success_uses_kvm(tmp_path: Path) -> None:
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    runner = FakeRunner(writes_console("[0.0] Linux version 6.12\nKernel panic - not syncing: VFS\n"))
    assert boot.probe_accel(runner, tmp_path / "bzImage", tmp_path, io.StringIO(),
                            kvm_device=kvm) == "kvm"


def test_probe_forced(tmp_path: Path) -> None:
    runner = FakeRunner(lambda s: pytest.fail("must not run"))  # type: ignore[arg-type,return-value]
    assert boot.probe_accel(runner, tmp_path, tmp_path, io.StringIO(), wanted="tcg") == "tcg"


# -- boot outcomes ------------------------------------------------------------------------

def test_boot_pass(tmp_path: Path) -> None:
    text = (DATA / "dups-on-trace.log").read_text()
    runner = FakeRunner(writes_console(text))
    log = io.StringIO()
    result = boot.boot(runner, spec(tmp_path, boot.kernel_cmdline(trace=True)), ON, log)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.phases["concurrent-fs"].duplicates == {"fs-kmatrixfs": 7}
    assert result.console_log.read_text() == text
    assert "qemu-system-x86_64" in log.getvalue() and ": pass" in log.getvalue()
    record = result.to_json()
    assert record["verdict"] == "pass" and record["accel"] == "tcg"
    assert result.outcome.verdict is Verdict.PASS


def test_boot_timeout_with_partial_console(tmp_path: Path) -> None:
    text = (DATA / "broken-hang.log").read_text()
    result = boot.boot(FakeRunner(writes_console(text, exit_code=124)), spec(tmp_path, limit_s=30),
                       ON, io.StringIO())
    assert result.verdict is Verdict.BOOT_TIMEOUT
    assert result.reasons[0] == "killed at the 30 s limit"
    assert result.timed_out


def test_boot_killed_by_runner_with_no_output(tmp_path: Path) -> None:
    runner = FakeRunner(writes_console("", exit_code=None, timed_out=True))
    result = boot.boot(runner, spec(tmp_path), ON, io.StringIO())
    assert result.verdict is Verdict.BOOT_TIMEOUT


def test_qemu_failure_is_infra(tmp_path: Path) -> None:
    def action(step: Step) -> StepResult:
        return StepResult(step.name, step.argv, 1, 0.1, False,
                          ["qemu: could not load kernel '/x/bzImage'"])
    result = boot.boot(FakeRunner(action), spec(tmp_path), ON, io.StringIO())
    assert result.verdict is Verdict.INFRA_ERROR
    assert "could not load kernel" in " ".join(result.reasons)


def test_silent_reset_is_boot_fail(tmp_path: Path) -> None:
    result = boot.boot(FakeRunner(writes_console("")), spec(tmp_path), ON, io.StringIO())
    assert result.verdict is Verdict.BOOT_FAIL


def test_panic_with_exit_zero_is_boot_fail(tmp_path: Path) -> None:
    text = (DATA / "broken-init-exit.log").read_text()
    result = boot.boot(FakeRunner(writes_console(text)), spec(tmp_path), ON, io.StringIO())
    assert result.verdict is Verdict.BOOT_FAIL
    assert "Attempted to kill init" in result.reasons[0]


def test_end_marker_but_no_reboot_is_boot_fail(tmp_path: Path) -> None:
    text = (DATA / "dups-on.log").read_text()
    result = boot.boot(FakeRunner(writes_console(text, exit_code=124)), spec(tmp_path), ON,
                       io.StringIO())
    assert result.verdict is Verdict.BOOT_FAIL
    assert "did not reboot" in result.reasons[0]


def test_stale_console_log_is_removed(tmp_path: Path) -> None:
    req = spec(tmp_path)
    req.work_dir.mkdir()
    shutil.copy(DATA / "dups-on.log", req.console_log)
    runner = FakeRunner(lambda s: StepResult(s.name, s.argv, 1, 0.1, False, []))
    assert boot.boot(runner, req, ON, io.StringIO()).verdict is Verdict.INFRA_ERROR


def test_prepare_guest(tmp_path: Path) -> None:
    def action(step: Step) -> StepResult:
        Path(step.argv[step.argv.index("-o") + 1] if "-o" in step.argv else step.argv[-1]) \
            .write_bytes(b"\x7fELF " + step.name.encode())
        return StepResult(step.name, step.argv, 0, 0.1)
    runner = FakeRunner(action)
    archive = boot.prepare_guest(runner, tmp_path / "guest", io.StringIO())
    assert [s.name for s in runner.steps] == ["guest-init", "guest-busybox"]
    names = {e.path for e in cpio.read_newc(archive.read_bytes())}
    assert {"init", "bin/busybox", "sbin/modprobe", "dev/console"} <= names


def test_prepare_guest_failure_is_infra(tmp_path: Path) -> None:
    runner = FakeRunner(lambda s: StepResult(s.name, s.argv, 1, 0.1, False, ["gcc: error"]))
    with pytest.raises(InfraError, match="guest-init"):
        boot.prepare_guest(runner, tmp_path / "guest", io.StringIO())


def test_the_guest_is_built_once_and_kept_in_the_cache_by_what_it_is_made_of(
        tmp_path: Path) -> None:
    """A run copies /init and busybox an earlier run built with the same image, architecture
    and init.c from the cache; another image builds them again; a run keeps its own copy."""
    from harness import arch as archmod
    from harness import boot_stage

    def action(step: Step) -> StepResult:
        Path(step.argv[step.argv.index("-o") + 1] if "-o" in step.argv else step.argv[-1]) \
            .write_bytes(b"\x7fELF " + step.name.encode())
        return StepResult(step.name, step.argv, 0, 0.1)

    x86, cache = archmod.default(), tmp_path / "cache"
    first = FakeRunner(action)
    made = boot_stage.ensure_guest(tmp_path / "run1", first, io.StringIO(), x86, cache)
    assert [s.name for s in first.steps] == ["guest-init", "guest-busybox"]
    again = FakeRunner(action)
    log = io.StringIO()
    copied = boot_stage.ensure_guest(tmp_path / "run2", again, log, x86, cache)
    assert again.steps == [] and "from " + str(cache / "guest") in log.getvalue()
    assert copied.read_bytes() == made.read_bytes() and copied.parent.parent.parent.name == "run2"
    assert boot_stage.ensure_guest(tmp_path / "run2", again, log, x86, cache) == copied

    class OtherImage(FakeRunner):
        def image_id(self) -> str:
            return "sha256:other"

    other = OtherImage(action)
    boot_stage.ensure_guest(tmp_path / "run3", other, io.StringIO(), x86, cache)
    assert [s.name for s in other.steps] == ["guest-init", "guest-busybox"]
    assert len(list((cache / "guest").iterdir())) == 2
    # a kept directory missing a file is not used: the guest is built again
    for kept in (cache / "guest").iterdir():
        (kept / "busybox").unlink()
    rebuilt = FakeRunner(action)
    boot_stage.ensure_guest(tmp_path / "run4", rebuilt, io.StringIO(), x86, cache)
    assert [s.name for s in rebuilt.steps] == ["guest-init", "guest-busybox"]
    fixed = FakeRunner(action)
    boot_stage.ensure_guest(tmp_path / "run5", fixed, io.StringIO(), x86, cache)
    assert fixed.steps == []  # run4 replaced the damaged directory with whole files
