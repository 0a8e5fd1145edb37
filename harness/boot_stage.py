"""The boot stage of the pipeline, for combinations that ask to be booted.

A booted combination's requested config includes the boot fragment (so config truth checks it
too), its build adds the architecture's kernel image, and after the link check this stage builds
the guest (once per run), probes KVM (once per run, bounded), boots the kernel in QEMU and judges
the console log. The pipeline decides when it runs (``Job.boots``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
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


def ensure_guest(run_dir: Path, runner: Runner, log: IO[str], arch: Arch,
                 cache: Path | None = None) -> Path:
    """Compile /init and pack the initramfs, once per run and architecture (shared by every
    booted combination of that architecture). With `cache` (the kmatrix cache), /init and
    busybox built once are kept there by what they are made of (guest_key) and copied into
    the run instead of built again."""
    guest = run_dir / "guest" / arch.name
    with FileLock(str(run_dir / "guest.lock")):
        initramfs = guest / "initramfs.cpio"
        if initramfs.exists():
            return initramfs
        kept = cache / "guest" / guest_key(runner, arch) if cache is not None else None
        if kept is not None and whole_guest(kept):
            guest.mkdir(parents=True, exist_ok=True)
            for name in GUEST_FILES:
                shutil.copy2(kept / name, guest / name)
            log.write(f"kmatrix: guest /init and busybox for {arch.name} from {kept} (built "
                      "with this image and init.c before)\n")
            return bootmod.write_initramfs(guest)
        made = bootmod.prepare_guest(runner, guest, log, arch)
        if kept is not None:
            with contextlib.suppress(OSError):  # a cache that cannot be written only costs a build
                keep_guest(guest, kept)
        return made


GUEST_FILES = ("init", "busybox")


def whole_guest(kept: Path) -> bool:
    return all((kept / name).is_file() for name in GUEST_FILES)


def guest_key(runner: Runner, arch: Arch) -> str:
    """What the guest's /init and busybox are made of: the builder image (its compiler, libc
    and busybox), the architecture, and init.c."""
    made_of = [runner.image_id(), arch.name, arch.gcc, arch.busybox,
               hashlib.sha256((bootmod.GUEST_SRC / "init.c").read_bytes()).hexdigest()]
    return hashlib.sha256(json.dumps(made_of).encode()).hexdigest()[:24]


def keep_guest(guest: Path, kept: Path) -> None:
    """Copy the guest's files into the cache whole or not at all (a directory renamed in)."""
    kept.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=kept.parent, prefix=f".{kept.name}."))
    try:
        for name in GUEST_FILES:
            shutil.copy2(guest / name, tmp / name)
        if kept.is_dir() and not whole_guest(kept):
            shutil.rmtree(kept, ignore_errors=True)  # damaged: replaced by this run's files
        tmp.rename(kept)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not kept.is_dir():  # another run kept the same files first: theirs stand
            raise


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
    initramfs = ensure_guest(run_dir, runner, log, arch, Path(job.settings.cache))
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
