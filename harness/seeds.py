"""Seed trees: one prepared output tree per tree, image, architecture, toolchain, base and
common config (base config, olddefconfig, `make prepare`, the build targets warmed), kept in
the cache and copied into every new output tree of its key; checked whole each time a run
takes it (harness/treeguard.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import IO

from . import kconfig, locks, results, treeguard
from . import matrix as matrixmod
from .cache import touch_seed
from .container import Runner, write_log
from .matrix import Combination, Matrix
from .parallel import side_by_side
from .pipeline import _say_to, base_config_stage, base_key, olddefconfig
from .settings import RunSettings
from .treeguard import run_guarded
from .verdict import InfraError

SEED_TIMEOUT_S = 1800.0


def ensure_seed(settings: RunSettings, matrix: Matrix, symbols: kconfig.SymbolTable,
                runner: Runner, log: IO[str], jobs: int) -> Path | None:
    """A prepared output tree (base + common config, `make prepare` done) to copy from.

    Built once per tree, image, base and common config, and kept in the cache. Kbuild's own
    dependency tracking (fixdep) rebuilds whatever a combination's config changes.
    """
    if settings.pristine:
        return None
    common = matrixmod.requested_config(matrix, Combination("seed", (), 0), symbols)
    key = hashlib.sha256(json.dumps([settings.tree, settings.image, base_key(matrix),
                                     matrix.toolchain.name,
                                     sorted(common.items()), settings.ccache, "fixed-out",
                                     matrix.build.targets]).encode()
                         ).hexdigest()[:12]
    seeds = Path(settings.cache) / "seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    seed = seeds / key
    with locks.held(seeds / f"{key}.lock", f"seed tree {key}",
                    _say_to(log)):
        if (seed / ".kmatrix-seed-done").exists():
            if (damage := treeguard.damage(seed)) is None:
                touch_seed(seed)  # in use: `kmatrix cache --prune` keeps it
                return seed
            # every tree copied from it would be damaged too: made again, never used
            write_log(log, f"kmatrix: seed tree {seed} is damaged ({damage}): made again\n")
        shutil.rmtree(seed, ignore_errors=True)
        tc = settings.kbuild(matrix, jobs)
        base, failed = base_config_stage(tc, runner, matrix, seed, log)
        if base is None:
            raise InfraError(f"could not make the base config for the seed tree: see {log.name}")
        resolved, result = olddefconfig(tc, runner, seed, kconfig.merge(base, common), log)
        if resolved is None:
            raise InfraError(f"olddefconfig failed in the seed tree: see {log.name}")
        limit = max(matrix.build.timeout_s, SEED_TIMEOUT_S)
        result = run_guarded(runner, tc.make_step("prepare", seed, "prepare", timeout_s=limit),
                             log, seed)
        if not result.ok:
            raise InfraError(f"`make prepare` failed in the seed tree ({' | '.join(result.tail[-2:])})"
                             f": see {log.name}")
        # The build targets too, best effort: host tools built on demand (objtool) and the
        # objects the common config already decides are then warm in every copy. A failure
        # here is the combinations' business, not the seed's.
        dirs = [t for t in matrix.build.targets if t.endswith("/")]  # not vmlinux & co
        warm = run_guarded(runner, tc.make_step("warm-targets", seed, *dirs, timeout_s=limit),
                           log, seed) if dirs else None
        if warm is not None and not warm.ok:
            log.write("kmatrix: the seed could not build the targets; each combination "
                      "builds them itself\n")
            treeguard.repair(seed, _say_to(log))  # a killed warm-up leaves no half objects
        (seed / ".kmatrix-seed-done").write_text(results.now() + "\n")
    return seed


def ensure_seeds(settings: RunSettings, matrix: Matrix, symbols: kconfig.SymbolTable,
                 runner: Runner, log: IO[str], jobs: int) -> None:
    """A seed tree for every architecture and toolchain the selected combinations build with
    (settings.seeds), the matrix's own also as settings.seed. The seeds of several variants
    are made side by side (much of a seed is single-threaded: Kconfig, `make prepare`'s
    serial parts), each one's log kept together in `log`."""
    views = matrix.views(settings.only)
    made = side_by_side(log, views, lambda view, own: ensure_seed(
        settings, view, symbols, runner, own, jobs), os.cpu_count() or 1)
    for view, seed in zip(views, made, strict=True):
        settings.seeds[view.variant] = str(seed) if seed else ""
    settings.seed = settings.seeds.get(matrix.variant, "")
