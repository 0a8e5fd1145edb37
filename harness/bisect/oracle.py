"""Config bisect on the real tree: the oracle that runs each candidate config through the
combination's own checks, and ``kmatrix bisect-config`` (both inputs checked, then ddmin)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from filelock import FileLock

from .. import pipeline, results
from ..kconfig import Config, parse_config, render_config
from ..matrix import BootRequest, Combination, Matrix, slug
from ..results import Record
from ..verdict import InfraError, InputError, Stage, Verdict
from .ddmin import ConfigBisectResult, bisect_config, report_text
from .trial import Env, Observation, run_trial

BISECT_COMBO = "config-bisect"  # the combination id (and warm output tree) of every trial


class CombinationOracle:
    """Trials on the real tree: the good config as the base, the tested assignments as the
    combination's own values (so config truth checks that they held), one warm output tree."""

    def __init__(self, env: Env, good_config_file: Path, bisect_dir: Path, stage: Stage,
                 boot: BootRequest | None = None) -> None:
        self.env, self.bisect_dir, self.stage, self.boot = env, bisect_dir, stage, boot
        self.matrix = replace(env.matrix, base=str(good_config_file), common=(),
                              fragment_files=())

    def resolve(self, config: Config) -> Config:
        env = self.env
        out = env.settings.work_dir(self.matrix.arch) / f"{BISECT_COMBO}-resolve"
        out.mkdir(parents=True, exist_ok=True)
        tc = env.settings.toolchain(self.matrix, 1)
        # one scratch tree for every bisect of this tree: held while its .config is ours
        with (FileLock(str(out.parent / f"{out.name}.lock")),
              open(self.bisect_dir / "resolve.log", "a") as log):
            resolved, _ = pipeline.olddefconfig(tc, env.runner, out, config, log)
        if resolved is None:
            raise InfraError(f"make olddefconfig failed while grouping options: see "
                             f"{self.bisect_dir / 'resolve.log'}")
        return resolved

    def check(self, number: int, assignments: Config) -> Observation:
        combo = Combination(BISECT_COMBO, tuple(assignments.items()), 0,
                            self.boot if self.stage is Stage.BOOT else None)
        trial_dir = self.bisect_dir / "configs" / f"{number:03d}"
        # the warm tree is shared with other bisects of this tree: run_combination holds its
        # lock, and remakes the kept base config when it is not this bisect's good config
        matrix = replace(self.matrix, combinations=[combo])
        _, obs = run_trial(self.env, combo, trial_dir, self.stage, matrix)
        return obs


def config_input(spec: str, matrix: Matrix, role: str) -> Combination:
    """A combination id of the matrix, or a .config / fragment file, as a Combination."""
    for combo in matrix.combinations:
        if combo.id == spec:
            return combo
    path = Path(spec)
    if path.is_file():
        values = parse_config(path.read_text(errors="replace"))
        if not values:
            raise InputError(f"{path} holds no CONFIG_ assignment: give a .config, a fragment or "
                             "a combination id")
        return Combination(f"bisect-{role}-{slug(path.name)}", tuple(values.items()), 0)
    raise InputError(f"--{role} {spec!r} is neither a combination of {matrix.path.name} "
                     f"(`kmatrix list`) nor a file")


def run_input(env: Env, combo: Combination, run_dir: Path, stage: Stage
              ) -> tuple[Record, Observation]:
    """Run one input (good or bad) through its checks; return (record, Observation)."""
    env.say(f"kmatrix: checking {combo.id} (log: {run_dir / combo.id / 'build.log'})")
    return run_trial(env, combo, run_dir, stage)


def config_bisect_on_tree(env: Env, good_spec: str, bad_spec: str,
                          deadline: float | None = None) -> ConfigBisectResult:
    """`kmatrix bisect-config`: check both inputs, then ddmin; writes bisect-config.json/.txt."""
    start = time.monotonic()
    bisect_dir = Path(env.settings.run_dir)
    good_combo = config_input(good_spec, env.matrix, "good")
    bad_combo = config_input(bad_spec, env.matrix, "bad")
    bad_rec, target = run_input(env, bad_combo, bisect_dir / "inputs", Stage.BOOT)
    if target.passed:
        raise InputError(f"--bad {bad_spec} does not fail ({target.verdict}"
                         f"{': ' + target.reasons[0] if target.reasons else ''}): nothing to "
                         "bisect")
    if target.verdict is Verdict.INFRA_ERROR or target.stage is None:
        raise InputError(f"--bad {bad_spec}: infrastructure error: {target.reasons[:1]}")
    if target.verdict is Verdict.CONFIG_DROPPED:
        raise InputError(f"--bad {bad_spec} fails config truth ({target.reasons[0]}): its "
                         "requested values never resolve, so no config can reproduce it; fix the "
                         "request instead")
    good_rec, good_obs = run_input(env, good_combo, bisect_dir / "inputs", target.stage)
    if not good_obs.passed:
        raise InputError(f"--good {good_spec} does not pass ({good_obs.verdict}: "
                         f"{'; '.join(good_obs.reasons[:1])}): pick a passing config")
    good = parse_config((bisect_dir / "inputs" / good_combo.id / "config").read_text())
    bad = parse_config((bisect_dir / "inputs" / bad_combo.id / "config").read_text())
    good_file = bisect_dir / "good.config"
    results.atomic_write(good_file, render_config(good))
    results.atomic_write(bisect_dir / "bad.config", render_config(bad))
    candidates = list(dict.fromkeys([*good_rec.requested, *bad_rec.requested]))
    oracle = CombinationOracle(env, good_file, bisect_dir, target.stage, bad_combo.boot)
    result = bisect_config(good_spec, bad_spec, good, bad, target, oracle, candidates,
                           say=env.say, deadline=deadline)
    result.duration_s = round(time.monotonic() - start, 1)
    results.atomic_write(bisect_dir / "bisect-config.json", json.dumps(result.to_dict(), indent=2))
    results.atomic_write(bisect_dir / "bisect-config.txt", report_text(result))
    return result
