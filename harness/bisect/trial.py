"""What every bisect shares: one trial of a combination's own checks, and what it observed.

A trial is ``pipeline.run_combination`` on a ``Job`` whose ``last_stage`` is the stage being
bisected (config, build, link or boot): the checks after it are not run. ``Observation`` is the
trial's verdict and the stage that failed; ``Env`` is what every trial needs (settings, matrix,
symbols, runner), made by ``open_env`` with the same checks ``kmatrix run`` makes first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .. import session, source
from ..container import Runner
from ..kconfig import SymbolTable
from ..matrix import Combination, Matrix
from ..pipeline import run_combination
from ..results import Record
from ..settings import Job, RunSettings
from ..verdict import Stage, Verdict

Say = Callable[[str], None]
STAGES = tuple(s.value for s in Stage)


@dataclass(frozen=True)
class Observation:
    """What the combination's checks said about one config (or one commit)."""

    verdict: Verdict
    stage: Stage | None = None  # the check that failed (None when it passed)
    reasons: tuple[str, ...] = ()
    record_dir: str = ""  # where the step's record.json and build.log are

    def __post_init__(self) -> None:  # values read back from JSON become enums again
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "stage", Stage(self.stage) if self.stage else None)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


STAGE_OF_STEP = {"base-config": Stage.CONFIG, "olddefconfig": Stage.CONFIG,
                 "config-truth": Stage.CONFIG, "resolve": Stage.CONFIG, "repair": Stage.CONFIG,
                 "build": Stage.BUILD, "link-check": Stage.LINK, "boot": Stage.BOOT}


def observe(record: Record, record_dir: Path) -> Observation:
    """A finished record as an Observation: its verdict and the stage that failed."""
    verdict = record.final
    if verdict is Verdict.PASS:
        return Observation(Verdict.PASS, None, (), str(record_dir))
    stage = verdict.stage
    if stage is None:
        failed = [s.name for s in record.stages if s.status in ("fail", "error")]
        stage = STAGE_OF_STEP.get(failed[-1]) if failed else None
    return Observation(verdict, stage, tuple(record.reasons), str(record_dir))


@dataclass
class Env:
    """What every bisect step needs: settings (tree, cache, image, -j), matrix, symbols, runner."""

    settings: RunSettings
    matrix: Matrix
    symbols: SymbolTable
    runner: Runner
    say: Say = print


def open_env(matrix_path: Path | str, results_dir: Path | str, kernel: str | None,
             jobs: int | None, label: str, say: Say = print) -> Env:
    """Check the matrix and the tree, connect to Docker, make sure the image exists, and create
    results/<label>-<id>/: the same checks `kmatrix run` makes before it builds anything."""
    matrix, tree, symbols = session.load_checked(
        session.Options(matrix=Path(matrix_path), results=Path(results_dir), kernel=kernel))
    cache = source.cache_root()
    session.check_disk(cache)
    tag, _client, runner = session.open_engine(cache, say, matrix.build.runtime)
    run_id = f"{label}-{session.new_run_id()}"
    run_dir = (Path(results_dir) / run_id).resolve()
    run_dir.mkdir(parents=True)
    jobs = jobs or max(1, min(2, os.cpu_count() or 1))
    settings = RunSettings(
        run_id=run_id, matrix_path=str(matrix.path), run_dir=str(run_dir), cache=str(cache),
        tree=str(tree.path), kernel={"version": tree.version, "origin": tree.origin,
                                     "commit": tree.commit, "path": str(tree.path)},
        image=tag, image_id=runner.image_id(), jobs=jobs, workers=1, cpus_per_build=float(jobs),
        ccache_domain="bisect" if label == "bisect" else "",  # other commits: their own ccache
        runtime=matrix.build.runtime)
    settings.save()
    return Env(settings, matrix, symbols, runner, say)


def run_trial(env: Env, combo: Combination, run_dir: Path, stage: Stage,
              matrix: Matrix | None = None, **changes: object) -> tuple[Record, Observation]:
    """The combination's own checks up to `stage`, its record in `run_dir`; `changes` replace
    settings (another tree for a commit, say)."""
    settings = replace(env.settings, run_dir=str(run_dir), **changes)  # type: ignore[arg-type]
    job = Job(settings, matrix or env.matrix, combo, env.symbols, env.runner, last_stage=stage)
    record = run_combination(job)
    return record, observe(record, run_dir / combo.id)
