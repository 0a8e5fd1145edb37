"""The boot tier: build the guest and the kernel image, boot in QEMU, judge the console log.

Everything that runs a process is a ``Step`` run by a ``Runner`` (harness/container.py), so the
logic here is tested with a fake runner. Order for one booted combination (the guest is built
once per run and shared):

  1. ``prepare_guest(runner, guest_dir, log, arch)``: runs ``guest_steps`` (the architecture's
     gcc -static /init, copy its static busybox from the builder image) and
     ``write_initramfs`` (the newc cpio, pure Python)
  2. ``bzimage_step(src, out, jobs)``     after the core's config steps (boot fragment included)
  3. ``probe_accel(runner, kernel, ...)`` once per run: KVM only if a bounded boot shows it works
  4. ``boot(runner, BootSpec(...), resolved_config, log)`` -> ``BootResult``
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import arch as archmod
from . import cpio
from .arch import Arch
from .container import Mount, Progress, Runner, Step
from .cores import LONG_SHARES
from .judge import Judgement, PhaseCounts, judge, open_console, tail_reason
from .matrix import DEFAULT_BOOT_TIMEOUT_S
from .stepwatch import file_size
from .verdict import InfraError, InputError, Outcome, Verdict

HARNESS_DIR = Path(__file__).resolve().parent
GUEST_SRC = HARNESS_DIR / "guest"
BOOT_FRAGMENT = HARNESS_DIR / "fragments" / "boot.config"
TRACE_PARAM = "module.enable_dups_trace=1"
DEFAULT_BOOT_LIMIT_S = DEFAULT_BOOT_TIMEOUT_S  # build.boot_timeout's; a pass takes 15-30 s (TCG)
KVM_PROBE_LIMIT_S = 20.0  # a working KVM boots to the no-root panic in about a second
KILL_GRACE_S = 5  # `timeout --kill-after` inside the container
CONTAINER_SLACK_S = 30.0  # the Step's own limit: QEMU's limit plus container start and teardown
HARD_LIMIT_FACTOR = 3.0  # a console still advancing at the limit may go on to 3x the limit
STALL_S = 60.0  # a console silent this long at the limit (a third of a short limit): stuck
# a console past this is a flood, and the boot is stopped there: a kmatrix boot prints under
# 100 KiB (the largest golden log, an LKDTM soft lockup, is 88 KiB), the judge reads 64 MiB
FLOOD_BYTES = 16 << 20


@dataclass(frozen=True)
class BootSpec:
    """One boot: a kernel image, the kmatrix initramfs, where the console log goes."""

    kernel: Path  # the output tree's arch.image_path
    initramfs: Path
    work_dir: Path  # console log and QEMU output land here (mounted read-write)
    cmdline: str
    limit_s: float = DEFAULT_BOOT_LIMIT_S
    accel: str = "tcg"  # "tcg" or "kvm" (from probe_accel)
    mem_mb: int = 256
    arch: Arch = field(default_factory=archmod.default)
    cpu: str = ""  # QEMU -cpu model; "" is the architecture's default for the accelerator
    console_cap: int = FLOOD_BYTES  # the boot is stopped once its console passes this

    @property
    def console_log(self) -> Path:
        return self.work_dir / "console.log"


@dataclass
class BootResult:
    """What the core stores for a booted combination."""

    verdict: Verdict
    reasons: list[str]
    phases: dict[str, PhaseCounts]
    console_log: Path
    cmdline: str
    accel: str
    duration_s: float
    qemu_exit_code: int | None
    timed_out: bool

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.verdict, list(self.reasons))

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict.value, "reasons": self.reasons,
                "phases": {name: p.to_json() for name, p in self.phases.items()},
                "console_log": str(self.console_log), "cmdline": self.cmdline,
                "accel": self.accel, "duration_s": round(self.duration_s, 1),
                "qemu_exit_code": self.qemu_exit_code, "timed_out": self.timed_out}


# -- guest ---------------------------------------------------------------------------------

def guest_steps(guest_out: Path, guest_src: Path = GUEST_SRC, arch: Arch | None = None
                ) -> list[Step]:
    """Compile the static /init for the architecture (its cross gcc and libc in the builder
    image) and copy the image's static busybox of that architecture into guest_out."""
    arch = arch or archmod.default()
    mounts = (Mount(guest_src, read_only=True), Mount(guest_out, read_only=False))
    return [
        Step("guest-init", (arch.gcc, "-static", "-Os", "-Wall", "-Wextra", "-Werror",
                            "-o", str(guest_out / "init"), str(guest_src / "init.c")),
             mounts, workdir=str(guest_out), timeout_s=300),
        Step("guest-busybox", ("cp", arch.busybox, str(guest_out / "busybox")),
             mounts, workdir=str(guest_out), timeout_s=60),
    ]


def initramfs_entries(init: bytes, busybox: bytes, modprobe: bytes, arrived: bytes
                      ) -> list[cpio.Entry]:
    return [
        cpio.directory("dev"),
        cpio.char_device("dev/console", 5, 1),
        cpio.char_device("dev/kmsg", 1, 11, 0o644),
        cpio.char_device("dev/null", 1, 3, 0o666),
        cpio.directory("bin"),
        cpio.regular_file("bin/busybox", busybox, 0o755),
        cpio.directory("sbin"),
        cpio.regular_file("sbin/modprobe", modprobe, 0o755),
        cpio.regular_file("init", init, 0o755),
        cpio.directory("proc"),
        cpio.directory("sys"),
        cpio.directory("mnt"),
        cpio.directory("kmatrix"),
        cpio.regular_file("kmatrix/arrived.awk", arrived, 0o644),
    ]


def write_initramfs(guest_out: Path, dest: Path | None = None,
                    guest_src: Path = GUEST_SRC) -> Path:
    """Pack init + busybox (built by guest_steps), the modprobe script and the awk program it
    asks whether its phase's requests are all in, as an uncompressed cpio."""
    dest = dest or guest_out / "initramfs.cpio"
    try:
        blob = cpio.newc_bytes(initramfs_entries((guest_out / "init").read_bytes(),
                                                 (guest_out / "busybox").read_bytes(),
                                                 (guest_src / "modprobe").read_bytes(),
                                                 (guest_src / "arrived.awk").read_bytes()))
    except FileNotFoundError as exc:
        raise InputError(f"guest file missing ({exc.filename}): run the guest steps first") from exc
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(dest)
    return dest


def prepare_guest(runner: Runner, guest_out: Path, log: IO[str], arch: Arch | None = None
                  ) -> Path:
    """Run the guest steps and pack the initramfs; returns its path. Once per run and
    architecture."""
    guest_out.mkdir(parents=True, exist_ok=True)
    for step in guest_steps(guest_out, arch=arch):
        result = runner.run(step, log)
        if not result.ok:
            raise InfraError(f"building the boot guest failed at step {step.name} "
                             f"(exit {result.exit_code}): " + " | ".join(result.tail[-3:]))
    return write_initramfs(guest_out)


# -- kernel --------------------------------------------------------------------------------

def bzimage_step(src: Path, out: Path, jobs: int, timeout_s: float = 3600.0,
                 arch: Arch | None = None) -> Step:
    """`make O=out <image target>` on a configured output tree (source mounted read-only), the
    way every other build step is made (harness.kbuild.Kbuild)."""
    from .kbuild import Kbuild

    arch = arch or archmod.default()
    return Kbuild(src, arch, jobs, float(jobs)).make_step("bzimage", out, arch.image_target,
                                                             timeout_s=timeout_s)


def kernel_image(out: Path, arch: Arch | None = None) -> Path:
    return out / (arch or archmod.default()).image_path


# -- QEMU ----------------------------------------------------------------------------------

def kernel_cmdline(trace: bool = False, extra: Sequence[str] = (), arch: Arch | None = None
                   ) -> str:
    """The guest command line; `trace` adds module.enable_dups_trace=1 (no rebuild needed)."""
    base = (arch or archmod.default()).base_cmdline
    return " ".join([*base, *([TRACE_PARAM] if trace else []), *extra])


def qemu_argv(kernel: Path, console_log: Path, cmdline: str, accel: str,
              initramfs: Path | None = None, mem_mb: int = 256, limit_s: float = 180.0,
              arch: Arch | None = None, cpu: str = "") -> tuple[str, ...]:
    """QEMU under coreutils `timeout`: serial console to a file, no network, no reboot."""
    if accel not in ("tcg", "kvm"):
        raise ValueError(f"accel must be tcg or kvm, not {accel!r}")
    arch = arch or archmod.default()
    argv = ["timeout", f"--kill-after={KILL_GRACE_S}", f"{limit_s:g}",
            arch.qemu, "-M", arch.machine, "-accel", accel,
            "-cpu", cpu or (arch.cpu_tcg if accel == "tcg" else arch.cpu_kvm),
            "-m", str(mem_mb), "-smp", "1", "-nodefaults", "-display", "none",
            "-no-reboot", "-nic", "none", "-serial", f"file:{console_log}",
            "-kernel", str(kernel), "-append", cmdline]
    if initramfs is not None:
        argv += ["-initrd", str(initramfs)]
    return tuple(argv)


def hard_limit(limit_s: float) -> float:
    """How long a boot whose console still advances may go past its limit, in all."""
    return limit_s * HARD_LIMIT_FACTOR


def boot_step(req: BootSpec) -> Step:
    """QEMU in its container. The boot's limit is soft: a guest still printing at the limit
    (a slow host) goes on, up to hard_limit(); one whose console has been silent for
    STALL_S is stopped at the limit. QEMU's own `timeout` is the backstop at the hard limit."""
    mounts = [Mount(req.kernel.parent), Mount(req.initramfs.parent),
              Mount(req.work_dir, read_only=False)]
    unique = tuple({m.path: m for m in mounts}.values())
    hard = hard_limit(req.limit_s)
    return Step(f"boot-{req.accel}",
                qemu_argv(req.kernel, req.console_log, req.cmdline, req.accel, req.initramfs,
                          req.mem_mb, hard + CONTAINER_SLACK_S, req.arch, req.cpu),
                unique, workdir=str(req.work_dir), timeout_s=req.limit_s,
                cpus=1.0, mem_bytes=(req.mem_mb + 512) << 20, cpu_shares=LONG_SHARES,
                devices=("/dev/kvm",) if req.accel == "kvm" else (),
                progress=Progress(req.console_log, hard, min(STALL_S, req.limit_s / 3),
                                  req.console_cap))


def kvm_probe_step(kernel: Path, probe_dir: Path, kvm_device: str = "/dev/kvm",
                   arch: Arch | None = None) -> Step:
    """Boot the kernel under KVM with no initramfs: a working KVM reaches the no-root panic,
    reboots (panic=-1) and QEMU exits within seconds; a broken one aborts or hangs, bounded."""
    arch = arch or archmod.default()
    console = probe_dir / "kvm-probe-console.log"
    return Step("kvm-probe",
                qemu_argv(kernel, console, f"console={arch.console} panic=-1", "kvm", None,
                          128, KVM_PROBE_LIMIT_S, arch),
                (Mount(kernel.parent), Mount(probe_dir, read_only=False)),
                workdir=str(probe_dir), timeout_s=KVM_PROBE_LIMIT_S + CONTAINER_SLACK_S,
                devices=(kvm_device,))


def probe_accel(runner: Runner, kernel: Path, probe_dir: Path, log: IO[str],
                kvm_device: Path = Path("/dev/kvm"), wanted: str = "auto",
                arch: Arch | None = None) -> str:
    """"kvm" only when a bounded probe boot under KVM really ran the kernel; else "tcg".
    Call once per run and pass the answer to every BootSpec."""
    if wanted in ("tcg", "kvm"):
        return wanted
    arch = arch or archmod.default()
    if platform.machine() != arch.host_machine:
        log.write(f"kmatrix: KVM on a {platform.machine()} host cannot run {arch.name} guests, "
                  "booting with TCG\n")
        return "tcg"
    if not os.access(kvm_device, os.R_OK | os.W_OK):
        log.write(f"kmatrix: {kvm_device} is not usable, booting with TCG\n")
        return "tcg"
    probe_dir.mkdir(parents=True, exist_ok=True)
    step = kvm_probe_step(kernel, probe_dir, str(kvm_device), arch)
    console = probe_dir / "kvm-probe-console.log"
    console.unlink(missing_ok=True)
    result = runner.run(step, log)
    text = console.read_text(errors="replace") if console.exists() else ""
    if result.ok and "Linux version" in text:
        log.write("kmatrix: KVM probe booted the kernel, booting with KVM\n")
        return "kvm"
    why = "timed out" if result.timed_out or result.exit_code in (124, 137) else \
        f"exit status {result.exit_code}"
    log.write(f"kmatrix: KVM probe failed ({why}), booting with TCG\n")
    return "tcg"


# -- the boot ------------------------------------------------------------------------------

def boot(runner: Runner, req: BootSpec, resolved_config: dict[str, str],
         log: IO[str]) -> BootResult:
    """Boot once and judge the console log. Never raises for a kernel problem: an unusable
    log after QEMU failed to run is infra-error, anything else is the judge's verdict."""
    req.work_dir.mkdir(parents=True, exist_ok=True)
    req.console_log.unlink(missing_ok=True)
    start = time.monotonic()
    result = runner.run(boot_step(req), log)
    duration = time.monotonic() - start
    log_path = req.console_log
    printed = log_path.exists() and _prints_something(log_path)
    if killed_early(result.exit_code, duration, req.limit_s):
        # SIGKILL long before the limit: the memory limit or someone outside, never the kernel
        reason = (f"QEMU was killed (exit {result.exit_code}) after {duration:.0f} s, before "
                  f"the {req.limit_s:g} s limit: out of memory or killed from outside; rerun")
        log.write(f"kmatrix: {reason}\n")
        return BootResult(Verdict.INFRA_ERROR, [reason], {}, req.console_log, req.cmdline,
                          req.accel, duration, result.exit_code, False)
    timed_out = result.timed_out or result.exit_code in (124, 137)
    signalled = stopped_from_outside(result.tail)
    if signalled and not timed_out and not _contains(log_path, b"KMATRIX-END"):
        # QEMU exits 0 on SIGTERM: an engine stop or restart, `docker stop`, never the guest
        reason = (f"QEMU was stopped from outside ({signalled}) after {duration:.0f} s: the "
                  "Docker engine stopped or restarted, or the container was stopped; rerun")
        log.write(f"kmatrix: {reason}\n")
        return BootResult(Verdict.INFRA_ERROR, [reason], {}, req.console_log, req.cmdline,
                          req.accel, duration, result.exit_code, False)

    def make(verdict: Verdict, reasons: list[str], phases: dict[str, PhaseCounts]) -> BootResult:
        return BootResult(verdict, reasons, phases, req.console_log, req.cmdline, req.accel,
                          duration, result.exit_code, timed_out)

    if file_size(log_path) > req.console_cap:
        return make(*flooded(log_path, resolved_config, req))
    early = judged_report(log_path, resolved_config, req) if result.progressing else None
    if result.progressing and early is None:
        # still printing, no kernel report: the host was too slow to finish, not the kernel
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        reason = (f"the guest was still printing when the {result.duration_s:.0f} s hard limit "
                  f"({HARD_LIMIT_FACTOR:g}x the {req.limit_s:g} s boot limit) ran out: the host "
                  f"is too slow (load average {load}); rerun on a less loaded host or raise "
                  "build.boot_timeout")
        log.write(f"kmatrix: {reason}\n")
        return BootResult(Verdict.INFRA_ERROR, [reason], {}, req.console_log, req.cmdline,
                          req.accel, duration, result.exit_code, True)
    if not printed:
        if timed_out:
            return make(Verdict.BOOT_TIMEOUT, [f"no console output in {req.limit_s:g} s"], {})
        if result.exit_code == 0:  # -no-reboot: the guest reset the machine, silently
            return make(Verdict.BOOT_FAIL, ["the guest reset before printing anything"], {})
        return make(Verdict.INFRA_ERROR,
                    [f"QEMU exited {result.exit_code} with an empty console log"]
                    + [line for line in result.tail[-5:]], {})
    try:
        judgement: Judgement = early or judge(open_console(log_path), resolved_config,
                                              req.cmdline, known_guest=True, arch=req.arch)
    except InputError as exc:  # the console shows no kernel at all, or is past the size cap
        if result.exit_code not in (0, None) and not timed_out:
            return make(Verdict.INFRA_ERROR, [f"QEMU exited {result.exit_code}: {exc.message}"]
                        + result.tail[-5:], {})
        return make(Verdict.BOOT_FAIL, [exc.message, _tail(log_path)], {})
    verdict, reasons = judgement.verdict, list(judgement.reasons)
    if verdict is Verdict.BOOT_TIMEOUT and timed_out:
        reasons.insert(0, f"killed at the {req.limit_s:g} s limit")
    elif verdict is Verdict.PASS and timed_out:
        verdict, reasons = Verdict.BOOT_FAIL, [
            f"end marker seen, but the guest did not reboot within the {req.limit_s:g} s limit",
            _tail(log_path)]
    log.write(f"kmatrix: {req.console_log}: {verdict.value}"
              + "".join(f"\n  {r}" for r in reasons) + "\n")
    return make(verdict, reasons, judgement.phases)


QEMU_SIGNALLED_RE = re.compile(r"qemu-system-\w+: terminating on signal (\d+)")


def stopped_from_outside(tail: list[str]) -> str:
    """`signal N` when QEMU said a signal terminated it, else empty. The sender may be its own
    `timeout` either way (Docker's SIGTERM reaches QEMU through docker-init and `timeout`):
    the caller tells them apart by the exit status, 124 only when `timeout` expired."""
    for line in tail:
        if found := QEMU_SIGNALLED_RE.search(line):
            return f"signal {found.group(1)}"
    return ""


def judged_report(log_path: Path, resolved_config: dict[str, str], req: BootSpec
                  ) -> Judgement | None:
    """The judgement of a console that holds a kernel failure the judge names (a flood of
    splats is the kernel's, however long it prints); None when it holds none."""
    if not log_path.exists():
        return None
    try:
        found = judge(open_console(log_path), resolved_config, req.cmdline, known_guest=True,
                      arch=req.arch)
    except InputError:
        return None
    return found if found.verdict is Verdict.BOOT_FAIL else None


def flooded(log_path: Path, resolved_config: dict[str, str], req: BootSpec
            ) -> tuple[Verdict, list[str], dict[str, PhaseCounts]]:
    """A console stopped past its cap: the kernel's reports in it when the judge finds any (a
    storm of splats), else the flood itself; boot-fail either way, never a slow host."""
    flood = (f"console flood: the boot was stopped when its console passed "
             f"{req.console_cap / 2**20:g} MiB (a kmatrix boot prints under 100 KiB)")
    found = judged_report(log_path, resolved_config, req)
    if found is not None:
        return Verdict.BOOT_FAIL, [*found.reasons, flood], found.phases
    return Verdict.BOOT_FAIL, [flood, _tail(log_path)], {}


def killed_early(exit_code: int | None, duration_s: float, limit_s: float) -> bool:
    """Exit 137 (SIGKILL) well before `timeout` could have sent it: not the boot's limit."""
    return exit_code == 137 and duration_s < limit_s


def _contains(path: Path, needle: bytes) -> bool:
    """Whether a console log holds `needle` (read in chunks, not whole)."""
    if not path.exists():
        return False
    with open(path, "rb") as stream:
        carry = b""
        while chunk := stream.read(1 << 16):
            if needle in carry + chunk:
                return True
            carry = chunk[-len(needle):]
    return False


def _prints_something(path: Path) -> bool:
    """Whether a console log holds anything but white space (read in chunks, not whole)."""
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 16):
            if chunk.strip():
                return True
    return False


def _tail(path: Path) -> str:
    """The last console lines of a log of any size (its last 64 KiB)."""
    with open(path, "rb") as stream:
        stream.seek(max(0, path.stat().st_size - (1 << 16)))
        return tail_reason(stream.read().decode(errors="replace"))


def fragment_lines(arch: Arch | None = None, path: Path = BOOT_FRAGMENT) -> list[str]:
    """The boot fragment's option lines (comments dropped) and then the architecture's own
    (its serial console driver: Arch.boot_config), for the core's config steps."""
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and (not line.startswith("#") or line.endswith(" is not set"))] \
        + list((arch or archmod.default()).boot_config)


@dataclass(frozen=True)
class BootPlan:
    """The three default boot combinations share one kernel per dups setting."""

    name: str
    dups: bool
    trace: bool
    extra: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cmdline(self) -> str:
        return kernel_cmdline(self.trace, self.extra)


DEFAULT_BOOTS = (BootPlan("dups-on", True, False), BootPlan("dups-on-trace", True, True),
                 BootPlan("dups-off", False, False))
