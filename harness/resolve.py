"""Resolve every combination before any build (Kconfig only, no compiler).

For each combination: base + requested values through the tree's own `make olddefconfig`
(in a scratch output tree), then
- `repair: true`: the smallest set of extra assignments that makes the request hold;
- a request that can never hold is *unsatisfiable*: reported with the reason, never built;
- combinations that resolve to the same .config as an earlier one are *duplicates*: they share
  one output tree, so the kernel is built once (the second build finds everything up to date).
The answers go to resolve.json in the run directory, read by the workers.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from . import kconfig, results
from . import matrix as matrixmod
from .boot_stage import boot_fragment, wants_boot
from .container import Runner
from .kconfig import Config, SymbolTable
from .matrix import Combination, Matrix

RESOLVE_FILE = "resolve.json"


@dataclass
class Resolution:
    combination: str
    config_hash: str = ""
    holds: bool = True
    added: dict[str, str] = field(default_factory=dict)  # by repair
    unsatisfiable: str = ""  # why the request can never hold
    duplicate_of: str = ""  # the first combination that resolves to the same .config
    why: list[str] = field(default_factory=list)  # why each dropped value does not hold
    seconds: float = 0.0

    @property
    def tree_group(self) -> str:
        return self.duplicate_of or self.combination


def requested_for(settings, matrix: Matrix, combo: Combination,  # noqa: ANN001 - RunSettings
                  symbols: SymbolTable) -> Config:
    return matrixmod.requested_config(
        matrix, combo, symbols, boot_fragment() if wants_boot(settings, combo) else None)


def resolve_one(session, base: Config, requested: Config,  # noqa: ANN001 - KconfigSession
                combo: Combination) -> Resolution:
    from .explain import diagnose, repair

    start = time.monotonic()
    res = Resolution(combo.id)
    if combo.repair:
        fixed = repair(requested, base, session)
        res.added = dict(fixed.added)
        resolved, res.holds = fixed.resolved, fixed.holds
        if not fixed.holds and fixed.unsatisfiable:
            res.unsatisfiable = fixed.unsatisfiable
    else:
        problems = diagnose(requested, base, session)
        resolved = kconfig.parse_config(session.resolved_text())
        res.holds = not problems
        res.why = ["why: " + p.summary() for p in problems]
        impossible = [p for p in problems if p.unsatisfiable]
        if impossible:
            res.unsatisfiable = "; ".join(p.summary() for p in impossible)
    res.config_hash = kconfig.config_hash(resolved)
    res.seconds = round(time.monotonic() - start, 1)
    return res


def resolve_all(settings, matrix: Matrix, symbols: SymbolTable, runner: Runner,  # noqa: ANN001
                base: Config, scratch: Path, log: IO[str], workers: int = 2) -> dict[str, Resolution]:
    """Resolve the selected combinations, `workers` scratch trees in parallel."""
    from .explain import KconfigSession

    combos = [c for c in matrix.combinations if not settings.only or c.id in settings.only]
    lanes = [combos[i::workers] for i in range(workers)]

    memo = Path(settings.cache) / "resolved"
    memo.mkdir(parents=True, exist_ok=True)
    fingerprint = kconfig_fingerprint(Path(settings.tree))

    def lane(i: int) -> list[Resolution]:
        session = KconfigSession(Path(settings.tree), scratch / f"lane{i}", runner, log,
                                 arch=matrix.arch)
        out = []
        for c in lanes[i]:
            requested = requested_for(settings, matrix, c, symbols)
            # the same tree, image, base and request always resolve the same way: remembered
            key = hashlib.sha256(json.dumps([fingerprint, settings.image, matrix.arch,
                                             sorted(base.items()), sorted(requested.items()),
                                             c.repair]).encode()).hexdigest()[:20]
            known = memo / f"{key}.json"
            if known.exists():
                res = Resolution(**{**json.loads(known.read_text()), "combination": c.id,
                                    "seconds": 0.0})
            else:
                res = resolve_one(session, base, requested, c)
                results.atomic_write(known, json.dumps(asdict(res)))
            out.append(res)
        return out

    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = {r.combination: r for rs in pool.map(lane, range(workers)) for r in rs}
    first: dict[str, str] = {}
    ordered = [found[c.id] for c in combos]
    for res in ordered:
        if res.config_hash in first:
            res.duplicate_of = first[res.config_hash]
        else:
            first[res.config_hash] = res.combination
    return {r.combination: r for r in ordered}


def kconfig_fingerprint(tree: Path) -> str:
    """Every Kconfig file of the tree by path, size and mtime: a tree that changed (a git
    checkout moved, a file edited) never reuses a remembered resolution."""
    digest = hashlib.sha256(str(tree).encode())
    for path in sorted(tree.rglob("Kconfig*")):
        st = path.stat()
        digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def save(run_dir: Path, resolutions: dict[str, Resolution]) -> None:
    results.atomic_write(run_dir / RESOLVE_FILE,
                         json.dumps({k: asdict(v) for k, v in resolutions.items()}, indent=2))


def load(run_dir: Path) -> dict[str, Resolution]:
    path = run_dir / RESOLVE_FILE
    if not path.exists():
        return {}
    return {k: Resolution(**v) for k, v in json.loads(path.read_text()).items()}


def report_lines(resolutions: dict[str, Resolution]) -> list[str]:
    lines = []
    for r in resolutions.values():
        if r.unsatisfiable:
            lines.append(f"{r.combination}: unsatisfiable, not built: {r.unsatisfiable}")
        if r.duplicate_of:
            lines.append(f"{r.combination}: resolves to the same .config as {r.duplicate_of}: "
                         "built once, in one tree")
        if r.added:
            added = " ".join(f"+{k.removeprefix('CONFIG_')}={v}" for k, v in r.added.items())
            lines.append(f"{r.combination}: repaired: {added}")
    return lines
