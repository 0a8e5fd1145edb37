"""A run's sample: the axes (as written and from the tree), Kconfig's constraints before
sampling, the combinations the sample makes, and after resolution the coverage of the resolved
configs, with combinations added until every satisfiable tuple is covered.

1. `sample_first` (before resolution): one `olddefconfig` + dump of base + common values; the
   planner (`harness/kconfig/planner.py`) names the axis values and pairs Kconfig can never
   hold together under the common values: they become covertable constraints, like `exclude`.
2. `complete` (after resolution): coverage of the resolved values (`harness/coverage.py`); each
   uncovered tuple gets a `cover-NN` combination that requests just it, with repair, resolved by
   the real Kconfig: it holds (the tuple is covered, the combination is built), or Kconfig says
   it cannot (listed as unsatisfiable, with the explanation), or it says why not.
The combinations are written to sample.json in the run directory: the workers read them there.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO

from . import coverage, kconfig, results
from .container import Runner
from .kconfig import Config, SymbolTable
from .kconfig.dump import KconfigDump
from .kconfig.session import KconfigSession
from .matrix import BootRequest, Combination, Matrix, make_id, requested_config
from .resolve import Resolution
from .sample import Axis, Impossible, Row, axes_from_tree, row_id, sample_rows
from .verdict import InputError

SAMPLE_JSON = "sample.json"
Say = Callable[[str], None]
Resolver = Callable[[Matrix, dict[str, Resolution]], dict[str, Resolution]]
MAX_ID = 80  # longer generated ids become numbered rows
COVER_ROUNDS = 3
GROUP_MAX = 6  # options one cover combination asks for in the first, grouped round


def tree_axes(matrix: Matrix, tree: Path, symbols: SymbolTable) -> list[Axis]:
    """The matrix's axes: those from tree directories first, then those written (a written
    axis replaces a `from` axis of the same option)."""
    written = {a.symbol: a for a in matrix.axes}
    out: list[Axis] = []
    for directory in matrix.axes_from:
        for axis in axes_from_tree(tree, directory, symbols):
            if axis.symbol not in written and all(axis.symbol != a.symbol for a in out):
                out.append(axis)
    out += matrix.axes
    for rule in matrix.rules:
        for sym in rule:
            if sym not in {a.symbol for a in out}:
                raise InputError(f"{matrix.path}:{matrix.axes_line}: exclude names {sym}, which "
                                 f"is not an axis (the axes: {', '.join(a.symbol for a in out)})")
    if not out:
        raise InputError(f"{matrix.path}:{matrix.axes_line}: the axes are empty: "
                         f"{', '.join(matrix.axes_from)} decides no object by a bool or tristate "
                         "option; add axes by name")
    return out


def expand(matrix: Matrix, axes: list[Axis], impossible: Sequence[Impossible] = ()) -> None:
    """Replace the deferred axes by their combinations (sampled rows first, then includes)."""
    rows = sample_rows(matrix.sample, axes, matrix.rules, impossible)
    combos = []
    for i, row in enumerate(rows):
        cid = make_id(list(row), matrix.short_names)
        if matrix.sample.sampled or len(cid) > MAX_ID:
            cid = row_id(matrix.sample, i)
        combos.append(Combination(cid, row, matrix.axes_line, None, matrix.repair))
    includes = [c for c in matrix.combinations if c.id not in {x.id for x in combos}]
    clash = {c.id for c in combos} & {c.id for c in matrix.combinations}
    if clash:
        raise InputError(f"{matrix.path}: include id {sorted(clash)[0]} is also a sampled "
                         "combination's id: give the include another id")
    matrix.combinations = combos + includes
    matrix.axes, matrix.axes_from = axes, ()


def common_request(matrix: Matrix, symbols: SymbolTable) -> Config:
    """What every combination asks of Kconfig (fragments and common values)."""
    return requested_config(matrix, Combination("common", (), 0), symbols)


def kconfig_impossible(dump: KconfigDump, fixed: Config, axes: list[Axis]) -> list[Impossible]:
    """Axis values, and pairs of them, that the planner finds Kconfig can never hold under
    the common values `fixed` (the value itself, or a conflict between the two)."""
    from .kconfig.planner import Planner

    out: list[Impossible] = []
    bad_single: set[tuple[str, str]] = set()
    for axis in axes:
        for value in axis.values:
            name = kconfig.bare_name(axis.symbol)
            plan = Planner(dump, {**fixed, axis.symbol: value}).require(name, value)
            if plan.impossible:
                out.append(Impossible(((axis.symbol, value),), plan.impossible))
                bad_single.add((axis.symbol, value))
    ordered = sorted(axes, key=lambda a: a.symbol)
    for a, b in itertools.combinations(ordered, 2):
        for va, vb in itertools.product(a.values, b.values):
            if (a.symbol, va) in bad_single or (b.symbol, vb) in bad_single:
                continue
            planner = Planner(dump, {**fixed, a.symbol: va, b.symbol: vb})
            plan = planner.require(kconfig.bare_name(a.symbol), va).then(
                planner.require(kconfig.bare_name(b.symbol), vb))
            if plan.impossible:
                out.append(Impossible(((a.symbol, va), (b.symbol, vb)), plan.impossible))
    return out


def sample_first(tree: Path, matrix: Matrix, symbols: SymbolTable, runner: Runner, base: Config,
                 scratch: Path, log: IO[str], say: Say | None = None) -> list[Impossible]:
    """Expand the deferred axes: Kconfig's constraints (one olddefconfig + dump of base +
    common values), then the sample under them and the exclude rules."""
    axes = tree_axes(matrix, tree, symbols)
    impossible: list[Impossible] = []
    if matrix.sample.sampled:
        session = KconfigSession(tree, scratch / "sample", runner, log, arch=matrix.arch,
                                 toolchain=matrix.toolchain)
        fixed = common_request(matrix, symbols)
        session.olddefconfig(kconfig.merge(base, fixed))
        impossible = kconfig_impossible(session.dump(), fixed, axes)
    expand(matrix, axes, impossible)
    if say:
        say(f"kmatrix: sample: {matrix.sample.describe()}: {len(axes)} options, "
            f"{sum(1 for c in matrix.combinations if c.line == matrix.axes_line)} combinations"
            + (f"; Kconfig rules out {len(impossible)} value(s)/pair(s) before sampling"
               if impossible else ""))
    return impossible


def _groups(gaps: list[Row], alone: set[Row], singles: Sequence[Row] = ()
            ) -> list[tuple[Row, list[Row]]]:
    """Cover combinations for the gaps: (the values one asks for, the tuples it stands for).
    A value the planner doubted on its own (`singles`) is asked alone once for every tuple
    that holds it: if Kconfig says it can never hold, all those tuples are unsatisfiable.
    Greedy otherwise: compatible tuples share one combination (up to GROUP_MAX options); the
    ones the planner doubted go alone, so Kconfig's answer is about them only."""
    out: list[tuple[Row, list[Row]]] = []
    taken: set[Row] = set()
    for single in singles:
        members = [g for g in gaps if set(single) <= set(g) and g not in taken]
        if members:
            out.append((single, members))
            taken.update(members)
    groups: list[tuple[list[Row], dict[str, str]]] = []
    for gap in gaps:
        if gap in taken:
            continue
        if gap in alone:
            groups.append(([gap], dict(gap)))
            continue
        for members, values in groups:
            if members[0] in alone or len(set(values) | {s for s, _ in gap}) > GROUP_MAX:
                continue
            if all(values.get(s, v) == v for s, v in gap):
                members.append(gap)
                values.update(gap)
                break
        else:
            groups.append(([gap], dict(gap)))
    return out + [(tuple(sorted(values.items())), members) for members, values in groups]


def complete(matrix: Matrix, base: Config, found: dict[str, Resolution],
             impossible: Sequence[Impossible], resolve_all: Resolver, say: Say | None = None
             ) -> tuple[dict[str, Resolution], coverage.Coverage]:
    """Measure the coverage of the resolved combinations and add cover combinations until
    every satisfiable tuple is covered (at most COVER_ROUNDS rounds). `resolve_all` resolves
    the matrix's combinations (the ones already resolved are remembered)."""
    axes, t = matrix.axes, matrix.sample.t
    # a sampled row Kconfig can never hold is a question the sampler asked (its constraints
    # are the planner's, which does not see every select chain), not a combination anyone
    # wrote: not built, listed with its reason; its tuples go to the cover rounds below
    never = [c for c in matrix.combinations
             if c.line == matrix.axes_line and c.id in found and found[c.id].unsatisfiable]
    unbuilt = [coverage.Uncovered([list(v) for v in c.values],
                                  f"{c.id}: {found[c.id].unsatisfiable}") for c in never]
    if never:
        gone = {c.id for c in never}
        matrix.combinations = [c for c in matrix.combinations if c.id not in gone]
        found = resolve_all(matrix, {k: v for k, v in found.items() if k not in gone})
    unsat: dict[Row, str] = {}
    reasons: dict[Row, str] = {}
    doubted = {tuple(sorted(i.values)) for i in impossible if len(i.values) <= t}
    singles = sorted(d for d in doubted if len(d) < t)
    added: list[str] = []
    number = 0

    def held(res: dict[str, Resolution]) -> dict[str, dict[str, str]]:
        return {r.combination: coverage.axis_values(base, r.delta, axes)
                for r in res.values() if r.holds and not r.unsatisfiable}

    for round_no in range(COVER_ROUNDS):
        gaps = [g for g in coverage.missing(axes, t, held(found), unsat) if g not in reasons]
        if not gaps:
            break
        alone = {g for g in gaps if any(set(d) <= set(g) for d in doubted)} \
            if round_no == 0 else set(gaps)
        groups = _groups(gaps, alone, singles if round_no == 0 else ())
        new: list[tuple[Combination, list[Row]]] = []
        for asks, members in groups:
            number += 1
            new.append((Combination(f"cover-{number:02d}", asks, matrix.axes_line, None,
                                    True), members))
        matrix.combinations += [c for c, _ in new]
        found = resolve_all(matrix, found)
        keep = []
        for combo, members in new:
            res = found[combo.id]
            if res.holds and not res.unsatisfiable:
                added.append(combo.id)
                keep.append(combo.id)
            elif res.unsatisfiable and all(set(combo.values) <= set(m) for m in members):
                for member in members:  # what it asked for is in each: each is impossible
                    unsat[member] = res.unsatisfiable
            elif len(members) == 1:
                reasons[members[0]] = "; ".join(res.why) or "its request did not hold"
        dropped = {c.id for c, _ in new} - set(keep)
        if dropped:
            matrix.combinations = [c for c in matrix.combinations if c.id not in dropped]
            found = resolve_all(matrix, {k: v for k, v in found.items() if k not in dropped})
    left = coverage.missing(axes, t, held(found), unsat)
    for gap in left:
        reasons.setdefault(gap, f"still uncovered after {COVER_ROUNDS} rounds of cover "
                                "combinations")
    cov = coverage.measure(axes, t, held(found), unsat, reasons, added, matrix.sample.label)
    cov.unbuilt_rows = unbuilt
    if say:
        say(f"kmatrix: {cov.headline()}")
    return found, cov


# -- the combinations of a run, for its workers


def save_combinations(run_dir: Path, matrix: Matrix,
                      extra: dict[str, dict[str, object]] | None = None) -> None:
    """sample.json: every combination of the run (sampled, added, random), so the workers
    collect exactly what the run resolved; `extra` adds facts per combination (a seed)."""
    data = {"combinations": [{"id": c.id, "values": [list(v) for v in c.values], "line": c.line,
                              "repair": c.repair,
                              "boot": None if c.boot is None else c.boot.cmdline,
                              **((extra or {}).get(c.id, {}))}
                             for c in matrix.combinations]}
    results.atomic_write(run_dir / SAMPLE_JSON, json.dumps(data, indent=2) + "\n")


def load_combinations(matrix: Matrix, run_dir: Path) -> Matrix:
    """The matrix with the run's own combinations (sample.json), when the run wrote them."""
    path = run_dir / SAMPLE_JSON
    if not path.is_file():
        return matrix
    data = json.loads(path.read_text())
    combos = [Combination(c["id"], tuple((s, v) for s, v in c["values"]), c.get("line", 0),
                          None if c.get("boot") is None else BootRequest(c["boot"]),
                          bool(c.get("repair", False))) for c in data["combinations"]]
    return replace(matrix, combinations=combos, axes_from=())
