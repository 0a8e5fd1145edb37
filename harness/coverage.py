"""Coverage measured after Kconfig: which t-tuples of axis values the resolved configs hold.

What counts is the resolved `.config`, not the request: a tuple is covered when at least one
combination whose request held (so it is built and judged) resolved to those values. Tuples
Kconfig can never satisfy are listed apart with the reason, not counted as missed. Pure
functions over plain data; `harness/cover.py` runs Kconfig and feeds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import kconfig
from .kconfig import Config
from .sample import Axis, Row, all_tuples, tuples_of

COVERAGE_JSON = "coverage.json"
COVERAGE_MD = "coverage.md"


def tuple_text(values: Iterable[Sequence[str]]) -> str:
    return " ".join(f"{kconfig.bare_name(s)}={v}" for s, v in values)


def resolved_value(base: Config, delta: Mapping[str, str], symbol: str) -> str:
    """A symbol's resolved value from a resolution's delta against the base (absent: n)."""
    value = delta[symbol] if symbol in delta else kconfig.actual_value(base, symbol)
    return kconfig.normalize(value) or "n"


def axis_values(base: Config, delta: Mapping[str, str], axes: list[Axis]) -> dict[str, str]:
    return {a.symbol: resolved_value(base, delta, a.symbol) for a in axes}


@dataclass
class Uncovered:
    values: list[list[str]]
    reason: str


@dataclass
class Coverage:
    """The coverage of one run's t-tuples, as written to coverage.json."""

    t: int
    axes: list[str]
    total: int  # every t-tuple of axis values
    covered: int  # satisfiable tuples present in at least one resolved combination
    unsatisfiable: list[Uncovered] = field(default_factory=list)  # Kconfig makes them impossible
    uncovered: list[Uncovered] = field(default_factory=list)  # satisfiable, still missing
    added: list[str] = field(default_factory=list)  # combinations added to close the gaps
    strategy: str = ""
    unbuilt_rows: list[Uncovered] = field(default_factory=list)  # sampled rows Kconfig never holds

    @property
    def satisfiable(self) -> int:
        return self.total - len(self.unsatisfiable)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.satisfiable if self.satisfiable else 100.0

    def headline(self) -> str:
        return (f"{self.t}-wise coverage after Kconfig: {self.covered}/{self.satisfiable} "
                f"satisfiable {self.t}-tuples ({self.percent:.1f} %) of {len(self.axes)} options; "
                f"{len(self.unsatisfiable)} unsatisfiable, {len(self.uncovered)} uncovered"
                + (f"; {len(self.added)} combination(s) added to close the gaps"
                   if self.added else "")
                + (f"; {len(self.unbuilt_rows)} sampled row(s) Kconfig never holds, not built"
                   if self.unbuilt_rows else ""))

    def markdown(self) -> str:
        lines = ["## Coverage", "", self.headline(), "",
                 f"Options: {', '.join(kconfig.bare_name(a) for a in self.axes)}", ""]
        if self.added:
            lines += [f"Added by kmatrix for tuples the sample's resolved configs missed: "
                      f"{', '.join(self.added)}", ""]
        if self.uncovered:
            lines += ["Uncovered (satisfiable, but no combination holds them):", ""]
            lines += [f"- {tuple_text(u.values)}: {u.reason}" for u in self.uncovered] + [""]
        if self.unsatisfiable:
            lines += ["Unsatisfiable (Kconfig can never hold them; not counted as missed):", ""]
            lines += [f"- {tuple_text(u.values)}: {u.reason}" for u in self.unsatisfiable] + [""]
        if self.unbuilt_rows:
            lines += ["Sampled rows Kconfig can never hold (not built; their tuples are covered "
                      "by other combinations or listed above):", ""]
            lines += [f"- {u.reason.split(':', 1)[0]} ({tuple_text(u.values)}):"
                      f"{u.reason.split(':', 1)[1]}" for u in self.unbuilt_rows] + [""]
        return "\n".join(lines)

    def save(self, run_dir: Path) -> None:
        from .results import atomic_write

        atomic_write(run_dir / COVERAGE_JSON, json.dumps(asdict(self), indent=2) + "\n")
        atomic_write(run_dir / COVERAGE_MD, self.markdown())

    @classmethod
    def load(cls, run_dir: Path) -> Coverage | None:
        path = run_dir / COVERAGE_JSON
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data["unsatisfiable"] = [Uncovered(**u) for u in data.get("unsatisfiable", [])]
        data["uncovered"] = [Uncovered(**u) for u in data.get("uncovered", [])]
        data["unbuilt_rows"] = [Uncovered(**u) for u in data.get("unbuilt_rows", [])]
        return cls(**data)


def covered_tuples(rows: Mapping[str, Mapping[str, str]], t: int) -> dict[Row, list[str]]:
    """Each t-tuple the resolved rows hold, and the combinations that hold it."""
    out: dict[Row, list[str]] = {}
    for combo, row in rows.items():
        for tup in tuples_of(dict(row), t):
            out.setdefault(tup, []).append(combo)
    return out


def missing(axes: list[Axis], t: int, rows: Mapping[str, Mapping[str, str]],
            unsatisfiable: Mapping[Row, str]) -> list[Row]:
    """The tuples no resolved row holds and nobody has shown to be impossible."""
    held = covered_tuples(rows, t)
    return [tup for tup in all_tuples(axes, t) if tup not in held and tup not in unsatisfiable]


def measure(axes: list[Axis], t: int, rows: Mapping[str, Mapping[str, str]],
            unsatisfiable: Mapping[Row, str], uncovered_reasons: Mapping[Row, str] | None = None,
            added: list[str] | None = None, strategy: str = "") -> Coverage:
    """Coverage of every t-tuple of the axes by the resolved rows (combination -> values)."""
    every = all_tuples(axes, t)
    held = covered_tuples(rows, t)
    covered = sum(1 for tup in every if tup in held)
    impossible = [Uncovered([list(p) for p in tup], unsatisfiable[tup])
                  for tup in every if tup in unsatisfiable and tup not in held]
    reasons = uncovered_reasons or {}
    gaps = [Uncovered([list(p) for p in tup], reasons.get(tup, "no combination tried it"))
            for tup in every if tup not in held and tup not in unsatisfiable]
    return Coverage(t, [a.symbol for a in axes], len(every), covered, impossible, gaps,
                    list(added or []), strategy)


def print_coverage(run_dir: Path) -> None:
    """The coverage section of a sampled run (nothing for other runs), for `kmatrix run`."""
    if (run_dir / COVERAGE_MD).is_file():
        print("\n" + (run_dir / COVERAGE_MD).read_text().rstrip())
