"""Joins the boot tier to the pipeline, for combinations that ask to be booted.

A booted combination's requested config includes the boot fragment (so config truth checks it
too), its build adds `bzImage`, and after the link check this hook builds the guest (once per
run), probes KVM (once per run, bounded), boots the kernel in QEMU and judges the console log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from filelock import FileLock

from . import boot, kconfig, results
from .container import Runner
from .kconfig import Config
from .matrix import Combination
from .verdict import Outcome, Verdict


def wants_boot(settings, combo: Combination) -> bool:  # noqa: ANN001 - RunSettings
    return combo.boot is not None and settings.boot


def boot_fragment() -> Config:
    return kconfig.parse_config("\n".join(boot.fragment_lines()))


def ensure_guest(run_dir: Path, runner: Runner, log: IO[str]) -> Path:
    """Compile /init and pack the initramfs, once per run (shared by every booted combination)."""
    guest = run_dir / "guest"
    with FileLock(str(run_dir / "guest.lock")):
        initramfs = guest / "initramfs.cpio"
        return initramfs if initramfs.exists() else boot.prepare_guest(runner, guest, log)


def ensure_accel(run_dir: Path, runner: Runner, kernel: Path, log: IO[str]) -> str:
    """KVM only when a bounded probe boot shows it works; the answer is kept for the run."""
    saved = run_dir / "accel.json"
    with FileLock(str(run_dir / "accel.lock")):
        if saved.exists():
            return json.loads(saved.read_text())["accel"]
        accel = boot.probe_accel(runner, kernel, run_dir / "kvm-probe", log)
        results.atomic_write(saved, json.dumps({"accel": accel}))
        return accel


def boot_hook(settings, matrix, combo, symbols, runner):  # noqa: ANN001, ANN201
    """The pipeline's extra stage for a booted combination, or None."""
    if not wants_boot(settings, combo):
        return None
    run_dir = Path(settings.run_dir)
    limit = matrix.build.boot_timeout_s

    def stage(record: results.Record, out: Path, resolved: Config, log: IO[str]) -> Outcome:
        kernel = boot.kernel_image(out)
        initramfs = ensure_guest(run_dir, runner, log)
        accel = ensure_accel(run_dir, runner, kernel, log)
        cmdline = boot.kernel_cmdline(False, tuple(combo.boot.cmdline.split()))
        spec = boot.BootSpec(kernel=kernel, initramfs=initramfs, work_dir=run_dir / combo.id,
                             cmdline=cmdline, limit_s=limit, accel=accel)
        result = boot.boot(runner, spec, resolved, log)
        record.boot = result.to_json()
        record.stages.append(results.StageRecord(
            "boot", "pass" if result.verdict is Verdict.PASS else
            ("error" if result.verdict is Verdict.INFRA_ERROR else "fail"),
            round(result.duration_s, 1), runner.reproducer(boot.boot_step(spec))))
        return result.outcome

    return stage
