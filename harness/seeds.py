"""Seed trees: one prepared output tree per tree, image, architecture, toolchain, base and
common config (base config, olddefconfig, `make prepare`, the build targets warmed), kept in
the cache and copied into every new output tree of its key; checked whole each time a run
takes it (harness/treeguard.py).

Before the builds, a run makes its own architecture and toolchain's seed whole, and of every
other seed only the base config (what the resolve step needs), side by side with the resolve
step's Kconfig sessions: the rest of such a seed is made by the first combination that needs
it, while the critical path (the bootable kernel, in the matrix's own seed) already builds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO

from . import kconfig, locks, results, treeguard
from . import matrix as matrixmod
from .cache import SEED_MARKER, touch_seed
from .container import Runner, write_log
from .cores import LONG_SHARES
from .matrix import Combination, Matrix
from .parallel import side_by_side
from .pipeline import _say_to, base_config_stage, base_key, olddefconfig
from .settings import RunSettings
from .treeguard import run_guarded
from .verdict import InfraError

SEED_TIMEOUT_S = 1800.0
BASE_MARKER = ".kmatrix-seed-base"  # only its base config is made (ensure_base)


def seed_request(matrix: Matrix, symbols: kconfig.SymbolTable) -> kconfig.Config:
    """What a seed holds besides its base config: the matrix's common config."""
    return matrixmod.requested_config(matrix, Combination("seed", (), 0), symbols)


def seed_dir(settings: RunSettings, matrix: Matrix, symbols: kconfig.SymbolTable) -> Path | None:
    """Where the seed of `matrix`'s architecture and toolchain is kept (None: --pristine)."""
    if settings.pristine:
        return None
    common = seed_request(matrix, symbols)
    key = hashlib.sha256(json.dumps([settings.tree, settings.image, base_key(matrix),
                                     matrix.toolchain.name,
                                     sorted(common.items()), settings.ccache, "fixed-out",
                                     matrix.build.targets]).encode()
                         ).hexdigest()[:12]
    return Path(settings.cache) / "seeds" / key


def is_made(seed: Path) -> bool:
    return (seed / SEED_MARKER).exists()


def ensure_base(settings: RunSettings, matrix: Matrix, symbols: kconfig.SymbolTable,
                runner: Runner, log: IO[str]) -> Path | None:
    """Of a seed, only its base config (tinyconfig & co, kept as BASE_CONFIG): what the
    resolve step needs before any build. ensure_seed goes on from there in place."""
    return ensure_seed(settings, matrix, symbols, runner, log, 1, upto_base=True)


def ensure_seed(settings: RunSettings, matrix: Matrix, symbols: kconfig.SymbolTable,
                runner: Runner, log: IO[str], jobs: int, cpu_shares: int = 0,
                on_base: Callable[[], object] | None = None,
                upto_base: bool = False) -> Path | None:
    """A prepared output tree (base + common config, `make prepare` done) to copy from.

    Built once per tree, image, base and common config, and kept in the cache. Kbuild's own
    dependency tracking (fixdep) rebuilds whatever a combination's config changes.
    `cpu_shares`: the steps' CPU weight (the run's own seed is on its critical path);
    `on_base`: called once its base config is there; `upto_base`: stop there (ensure_base).
    """
    seed = seed_dir(settings, matrix, symbols)
    if seed is None:
        return None
    common = seed_request(matrix, symbols)
    seed.parent.mkdir(parents=True, exist_ok=True)
    with locks.held(seed.parent / f"{seed.name}.lock", f"seed tree {seed.name}",
                    _say_to(log)):
        if upto_base and (is_made(seed) or (seed / BASE_MARKER).exists()):
            return seed
        if is_made(seed):
            if (damage := treeguard.damage(seed)) is None:
                touch_seed(seed)  # in use: `kmatrix cache --prune` keeps it
                if on_base is not None:
                    on_base()
                return seed
            # every tree copied from it would be damaged too: made again, never used
            write_log(log, f"kmatrix: seed tree {seed} is damaged ({damage}): made again\n")
            shutil.rmtree(seed, ignore_errors=True)
        elif (seed / BASE_MARKER).exists():
            # its base config was made before the builds (ensure_base): go on from there; a
            # stop from here on leaves no marker, and the next run makes it whole again
            (seed / BASE_MARKER).unlink()
            write_log(log, f"kmatrix: seed tree {seed}: made now, from its base config\n")
        else:
            shutil.rmtree(seed, ignore_errors=True)
        tc = replace(settings.kbuild(matrix, jobs), cpu_shares=cpu_shares)
        base, failed = base_config_stage(tc, runner, matrix, seed, log)
        if base is None:
            raise InfraError(f"could not make the base config for the seed tree: see {log.name}")
        if upto_base:
            (seed / BASE_MARKER).write_text(results.now() + "\n")
            write_log(log, f"kmatrix: seed tree {seed}: base config made; the rest when a "
                      "combination first needs it\n")
            return seed
        if on_base is not None:
            on_base()
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
        (seed / SEED_MARKER).write_text(results.now() + "\n")
    return seed


def ensure_seeds(settings: RunSettings, matrix: Matrix, symbols: kconfig.SymbolTable,
                 runner: Runner, log: IO[str], jobs: int,
                 sessions: Callable[[Matrix, IO[str]], None] | None = None,
                 whole: bool = False) -> None:
    """A seed tree for every architecture and toolchain the selected combinations build with
    (settings.seeds), the matrix's own also as settings.seed: the matrix's own made whole, the
    others only up to their base config unless `whole` (the first combination that needs one
    makes the rest). `sessions(view, log)` prepares the resolve step's Kconfig session of each
    view once its seed's base config is made (the session takes the seed's conf). All side by
    side (much of a seed is single-threaded: Kconfig, `make prepare`'s serial parts), each
    one's log kept together in `log`."""
    views = matrix.views(settings.only)
    own_base = threading.Event()  # the matrix's own seed has its base config (or failed)

    def one(item: Matrix | str, own: IO[str]) -> Path | None:
        if isinstance(item, str):  # the matrix's own view's session, once its base is made
            own_base.wait(SEED_TIMEOUT_S)
            if sessions is not None:
                sessions(matrix_views[item], own)
            return None
        if item.variant == matrix.variant:  # the bootable kernel's, first: the critical path
            try:
                return ensure_seed(settings, item, symbols, runner, own, jobs, LONG_SHARES,
                                   on_base=own_base.set)
            finally:
                own_base.set()
        seed = ensure_seed(settings, item, symbols, runner, own, jobs) if whole else \
            ensure_base(settings, item, symbols, runner, own)
        if sessions is not None:
            sessions(item, own)
        return seed

    matrix_views = {v.variant: v for v in views}
    items: list[Matrix | str] = [*views] + ([matrix.variant] if matrix.variant in matrix_views
                                            and sessions is not None else [])
    made = side_by_side(log, items, one, os.cpu_count() or 1)
    for view, seed in zip(views, made, strict=False):
        settings.seeds[view.variant] = str(seed) if seed else ""
    settings.seed = settings.seeds.get(matrix.variant, "")


def unmade(settings: RunSettings, matrix: Matrix) -> dict[str, list[str]]:
    """The selected combinations of each seed the run has not made yet, by variant (the first
    of them to run makes the rest of it)."""
    out: dict[str, list[str]] = {}
    for combo in matrix.combinations:
        variant = matrix.built_with(combo).variant
        seed = settings.seed_for(variant)
        if seed and not is_made(Path(seed)) and (not settings.only or combo.id in settings.only):
            out.setdefault(variant, []).append(combo.id)
    return out
