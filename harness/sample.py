"""Sampling the axes: the cartesian product (`sample: all`), or a t-wise covering array
(`sample: {strategy: pairwise | t-wise, t: 3, seed: N}`) made by covertable under constraints:
the matrix's `exclude` rules and the value tuples Kconfig can never satisfy together.

Also: the axes a tree directory's Kbuild Makefile decides (`axes: {from: kernel/module/}`): every
option on an `obj-$(CONFIG_...)` line (and in its `ifdef` guards), with `y`/`n`, and `m` too where
the option is a tristate. Pure functions over plain data; no Kconfig runs here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import covertable
from covertable import sorters

from . import linkcheck, makefile
from .kconfig import SymbolTable
from .verdict import InputError

STRATEGIES = ("all", "pairwise", "t-wise")
MAX_T = 4  # past 4 the covering arrays of ~15 options approach the product anyway

Row = tuple[tuple[str, str], ...]  # (CONFIG_NAME, value) in axis order


@dataclass(frozen=True)
class SampleSpec:
    """How the axes become combinations. `t` is 2 for pairwise; `seed` salts covertable's
    pair order, so one seed always gives the same sample."""

    strategy: str = "all"
    t: int = 2
    seed: int = 0

    @property
    def sampled(self) -> bool:
        return self.strategy != "all"

    @property
    def label(self) -> str:
        return "all" if not self.sampled else "pairwise" if self.t == 2 else f"{self.t}-wise"

    def describe(self) -> str:
        if not self.sampled:
            return "the cartesian product of the axes"
        return f"a {self.label} covering array of the axes (covertable, seed {self.seed})"


@dataclass(frozen=True)
class Axis:
    symbol: str  # CONFIG_NAME
    values: tuple[str, ...]
    line: int = field(default=0, compare=False)  # in the matrix file (0: from the tree)


# An exclude rule: symbol -> the values it matches; a row is excluded when every symbol matches.
Rule = dict[str, frozenset[str]]


@dataclass(frozen=True)
class Impossible:
    """A tuple of axis values Kconfig can never satisfy together, and why (its explanation)."""

    values: Row
    reason: str


def excluded(row: dict[str, str], rules: list[Rule]) -> bool:
    return any(all(row.get(s) in vals for s, vals in rule.items()) for rule in rules)


def _forbid(values: dict[str, frozenset[str]]) -> dict[str, Any]:
    """A covertable condition that holds unless every symbol takes one of its listed values."""
    return {"operator": "not", "condition": {"operator": "and", "conditions": [
        {"operator": "in", "left": sym, "values": sorted(vals)} for sym, vals in values.items()]}}


def covering_rows(axes: list[Axis], t: int, seed: int, rules: list[Rule],
                  impossible: Sequence[Impossible] = ()) -> list[Row]:
    """A t-wise covering array of the axes: every t-tuple of values that no constraint forbids
    is in at least one row. Deterministic for a given seed."""
    if not axes:
        return []
    if len(axes) <= t:  # nothing to sample: every row is needed
        return product_rows(axes, rules + [{s: frozenset([v]) for s, v in i.values}
                                           for i in impossible])
    factors = {a.symbol: list(a.values) for a in axes}
    constraints = [_forbid(rule) for rule in rules]
    constraints += [_forbid({s: frozenset([v]) for s, v in i.values}) for i in impossible]
    made = covertable.make(factors, strength=t, sorter=sorters.hash, salt=str(seed),
                           constraints=constraints or None)
    rows = [tuple((a.symbol, str(row[a.symbol])) for a in axes) for row in made]
    return list(dict.fromkeys(rows))  # covertable never repeats a row; keep it so


def product_rows(axes: list[Axis], rules: list[Rule]) -> list[Row]:
    rows = []
    for point in itertools.product(*(a.values for a in axes)):
        row = tuple(zip((a.symbol for a in axes), point))
        if not excluded(dict(row), rules):
            rows.append(row)
    return rows


def sample_rows(spec: SampleSpec, axes: list[Axis], rules: list[Rule],
                impossible: Sequence[Impossible] = ()) -> list[Row]:
    if not spec.sampled:
        return product_rows(axes, rules)
    return covering_rows(axes, spec.t, spec.seed, rules, impossible)


def row_id(spec: SampleSpec, index: int) -> str:
    """`pairwise-01`, `3-wise-07`: covering-array rows are numbered (their values are in
    `kmatrix list` and every record); an id of fifteen options would not fit a file name."""
    return f"{spec.label}-{index + 1:02d}"


def axes_from_tree(tree: Path, directory: str, symbols: SymbolTable) -> list[Axis]:
    """The options that decide which objects of `directory` are built, read from its Kbuild
    Makefile as `kmatrix expect-map` reads it: y/n each, and m where the option is a tristate."""
    mk = tree / directory / "Makefile"
    if not mk.is_file():
        raise InputError(f"{mk} does not exist: axes.from takes a directory of the tree that "
                         "has a Kbuild Makefile, like kernel/module/")
    names: list[str] = []
    for rule in makefile.parse_object_rules(mk.read_text()):
        for sym in sorted(linkcheck.condition_symbols(rule.condition)):
            if sym not in names:
                names.append(sym)
    axes = []
    for sym in names:
        kind = symbols.type_of(sym)
        if kind not in ("bool", "tristate"):
            continue  # obj-$(CONFIG_X) with a non-bool X is not a switch
        axes.append(Axis(sym, ("y", "m", "n") if kind == "tristate" else ("y", "n")))
    return axes


def tuples_of(row: dict[str, str], t: int) -> set[Row]:
    """Every t-tuple of (symbol, value) a row holds, each sorted by symbol."""
    items = sorted(row.items())
    return {tuple(c) for c in itertools.combinations(items, t)}


def all_tuples(axes: list[Axis], t: int) -> list[Row]:
    """Every t-tuple of axis values, in a stable order (symbols sorted inside a tuple)."""
    ordered = sorted(axes, key=lambda a: a.symbol)
    out: list[Row] = []
    for group in itertools.combinations(ordered, min(t, len(ordered))):
        for point in itertools.product(*(a.values for a in group)):
            out.append(tuple(zip((a.symbol for a in group), point)))
    return out
