"""The boot stage of the pipeline, for combinations that ask to be booted.

A booted combination's requested config includes the boot fragment (so config truth checks it
too), its build adds the architecture's kernel image, and after the link check this stage builds
the guest (once per run), probes KVM (once per run, bounded), boots the kernel in QEMU and judges
the console log. The pipeline decides when it runs (``Job.boots``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import IO, TYPE_CHECKING

from filelock import FileLock

from . import boot as bootmod
from . import kconfig, results
from .arch import Arch
from .container import Runner
from .kconfig import Config
from .verdict import Outcome, Verdict

if TYPE_CHECKING:
    from .settings import Job


def boot_fragment(arch: Arch | None = None) -> Config:
    """The boot fragment (harness/fragments/boot.config) plus the architecture's own lines."""
    return kconfig.parse_config("\n".join(bootmod.fragment_lines(arch)))


def ensure_guest(run_dir: Path, runner: Runner, log: IO[str], arch: Arch) -> Path:
    """Compile /init and pack the initramfs, once per run and architecture (shared by every
    booted combination of that architecture)."""
    guest = run_dir / "guest" / arch.name
    with FileLock(str(run_dir / "guest.lock")):
        initramfs = guest / "initramfs.cpio"
        return initramfs if initramfs.exists() else \
            bootmod.prepare_guest(runner, guest, log, arch)


def ensure_accel(run_dir: Path, runner: Runner, kernel: Path, log: IO[str], arch: Arch) -> str:
    """KVM only when a bounded probe boot shows it works; the answer is kept for the run."""
    saved = run_dir / "accel.json"
    with FileLock(str(run_dir / "accel.lock")):
        if saved.exists():
            return str(json.loads(saved.read_text())["accel"])
        accel = bootmod.probe_accel(runner, kernel, run_dir / "kvm-probe", log, arch=arch)
        results.atomic_write(saved, json.dumps({"accel": accel}))
        return accel


def boot(job: Job, record: results.Record, out: Path, resolved: Config, log: IO[str]) -> Outcome:
    """Boot the kernel built in `out` and judge its console; fills record.boot and the stage."""
    assert job.combo.boot is not None, "the pipeline boots only combinations that ask for it"
    arch, runner, run_dir = job.matrix.arch, job.runner, job.run_dir
    kernel = bootmod.kernel_image(out, arch)
    initramfs = ensure_guest(run_dir, runner, log, arch)
    accel = ensure_accel(run_dir, runner, kernel, log, arch)
    cmdline = bootmod.kernel_cmdline(False, tuple(job.combo.boot.cmdline.split()), arch)
    spec = bootmod.BootSpec(kernel=kernel, initramfs=initramfs, work_dir=job.combo_dir,
                            cmdline=cmdline, limit_s=job.matrix.build.boot_timeout_s,
                            accel=accel, arch=arch)
    budget = job.settings.core_budget()
    with budget.hold(1) if budget is not None else contextlib.nullcontext():
        result = bootmod.boot(runner, spec, resolved, log)  # one vCPU: it holds one core
    record.boot = result.to_json()
    record.stages.append(results.StageRecord(
        "boot", "pass" if result.verdict is Verdict.PASS else
        ("error" if result.verdict is Verdict.INFRA_ERROR else "fail"),
        round(result.duration_s, 1), runner.reproducer(bootmod.boot_step(spec))))
    return result.outcome
