"""The typed joints between stages: a run's settings, and the job one combination's stages get.

``RunSettings`` is everything a worker needs to run combinations (saved as run.json in the run
directory and read back by every worker); ``Job`` is one combination's work: settings, matrix,
combination, symbol table and runner, plus the last check it asks for (bisects stop early).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import results, variants
from .container import Runner, make_runner
from .cores import CoreBudget
from .kbuild import Kbuild
from .kconfig import Config, SymbolTable
from .matrix import Combination, Matrix, requested_config
from .runtime import runtime as runtime_named
from .verdict import Stage


@dataclass
class RunSettings:
    """Everything a worker needs to run combinations; saved as run.json in the run directory."""

    run_id: str
    matrix_path: str
    run_dir: str
    cache: str
    tree: str
    kernel: dict[str, str | None]
    image: str
    image_id: str = ""
    jobs: int = 1
    workers: int = 1
    cpus_per_build: float = 1.0
    mem_bytes: int = 4 << 30
    pristine: bool = False
    ccache: bool = True
    boot: bool = True
    only: list[str] = field(default_factory=list)
    trees: str = "nearest"  # nearest | lanes | own (harness/schedule.py); --pristine: own
    seed: str = ""  # a prepared output tree that combinations start from (empty: fresh)
    # the seed of every architecture and toolchain the run builds with (harness/variants.py);
    # `seed` is the matrix's own one's
    seeds: dict[str, str] = field(default_factory=dict)
    image_packages: dict[str, str] = field(default_factory=dict)
    # whose compiler cache: "" the shared one; another name its own (a commit bisect builds
    # commits nobody vetted, which must never write into the cache every run reads)
    ccache_domain: str = ""
    matrix_info: dict[str, Any] = field(default_factory=dict)  # harness/runinfo.py: for reports
    # what makes two runs (or two shards) the same run: matrix, kernel, image, selection
    # (harness/shard.py), and the shard this run is (`--shard K/N`) or was merged from
    fingerprint: dict[str, str] = field(default_factory=dict)
    shard: dict[str, Any] = field(default_factory=dict)
    runtime: str = "docker"  # docker | podman (harness/runtime.py): the engine every step ran in
    runtime_version: str = ""  # as the engine reported it, e.g. "Podman 4.3.1"
    # make -j of each build follows the run's core budget (harness/cores.py) unless --jobs said
    adaptive_jobs: bool = False
    # finished output trees are pruned, least recently used first, to fit in this many bytes
    # (KMATRIX_DISK_BUDGET, in GiB; 0: no budget)
    disk_budget: int = 0

    def core_budget(self) -> CoreBudget | None:
        """The run's core budget, shared by its workers (None: every build at make -j`jobs`)."""
        if not self.adaptive_jobs:
            return None
        return CoreBudget(Path(self.run_dir), self.workers * self.jobs, self.workers)

    def save(self) -> None:
        results.atomic_write(Path(self.run_dir) / "run.json", json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> RunSettings:
        data = json.loads((run_dir / "run.json").read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def kbuild(self, matrix: Matrix, jobs: int | None = None) -> Kbuild:
        """How make runs for `matrix` (a combination's view: its arch and toolchain)."""
        ccache = self.ccache_dir(matrix.variant) if self.ccache and not self.pristine else None
        if ccache is not None:
            ccache.mkdir(parents=True, exist_ok=True)
        return Kbuild(Path(self.tree), matrix.arch, jobs or self.jobs,
                      float(jobs or self.cpus_per_build), self.mem_bytes, ccache,
                      fixed_out=True, toolchain=matrix.toolchain)

    def ccache_dir(self, variant: str = variants.DEFAULT) -> Path:
        """The compiler cache of one architecture and toolchain: ccache/<arch>-<toolchain>
        (ccache-<domain>/... for another trust domain), each its own, handed to the uid steps
        run as apart from every other."""
        name = f"ccache-{self.ccache_domain}" if self.ccache_domain else "ccache"
        return Path(self.cache) / name / variant

    def work_dir(self, variant: str = variants.DEFAULT) -> Path:
        """Where the output trees of one architecture and toolchain live."""
        own = "" if variant == variants.DEFAULT else f"|{variant}"
        key = hashlib.sha256(f"{self.tree}|{self.image}{own}".encode()).hexdigest()[:12]
        return Path(self.cache) / "work" / key

    def seed_for(self, variant: str) -> str:
        """The seed tree of one architecture and toolchain ("" none: builds start empty)."""
        return self.seeds.get(variant, "") if self.seeds else self.seed

    def runner(self) -> Runner:
        """The runner of this run's builder image (the one place a worker makes one)."""
        return make_runner(self.image, run_id=self.run_id, runtime=runtime_named(self.runtime))


@dataclass(frozen=True)
class Job:
    """One combination's work, as every stage receives it."""

    settings: RunSettings
    matrix: Matrix
    combo: Combination
    symbols: SymbolTable
    runner: Runner
    last_stage: Stage = Stage.BOOT  # the checks after this one are not run (bisects)

    def __post_init__(self) -> None:
        # every stage sees the matrix as this combination builds: its arch and toolchain
        object.__setattr__(self, "matrix", self.matrix.built_with(self.combo))

    @property
    def boots(self) -> bool:
        """The combination asks for a boot, the run allows boots, and the job goes that far."""
        return (self.combo.boot is not None and self.settings.boot
                and self.last_stage is Stage.BOOT)

    def requested(self) -> Config:
        """Everything the job asks of Kconfig: fragments, common values, the combination's own,
        and the boot fragment when it boots (checked by config truth like every other value)."""
        from .boot_stage import boot_fragment

        return requested_config(self.matrix, self.combo, self.symbols,
                                boot_fragment(self.matrix.arch) if self.boots else None)

    @property
    def run_dir(self) -> Path:
        return Path(self.settings.run_dir)

    @property
    def combo_dir(self) -> Path:
        return self.run_dir / self.combo.id
