"""Config bisect: the smallest set of assignments that turns a passing config into a failing one.

Delta debugging (Zeller's ddmin) over the assignments that differ between a good and a bad
config, each candidate applied to the good config and resolved by the tree's own
``make olddefconfig``. Kconfig dependencies are respected in two ways:

* grouping: before ddmin, each differing option is removed from the bad config alone and the
  result resolved; what falls with it depends on it. An option that Kconfig puts back is not a
  free choice (it is selected or derived) and is never requested; every free option is tested
  together with the free options it depends on (a *unit*);
* truth: after olddefconfig every requested assignment must have held. A candidate where one
  did not is *unresolved* (neither good nor bad), as ddmin allows.

The logic here is plain functions over plain data; the oracle (resolve a config, run the
combination's checks) is passed in, so the algorithm is tested with fakes in milliseconds.
"""


from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from ..kconfig import Config, actual_value, normalize
from ..verdict import Verdict
from .trial import Observation


class Trial(enum.StrEnum):
    """ddmin's three outcomes for one candidate config."""

    FAIL = "fail"  # fails the same way as the bad config (same verdict and stage)
    PASS = "pass"
    UNRESOLVED = "unresolved"  # the assignments did not hold, or another failure, or infra



@dataclass(frozen=True)
class Unit:
    """A free option and the free options it cannot go without (its Kconfig dependencies)."""

    symbol: str
    symbols: frozenset[str]


@dataclass
class TriedConfig:
    """One config the bisect tried, as reported."""

    number: int
    assignments: list[str]  # SYMBOL=value applied to the good config
    outcome: str  # a Trial value
    verdict: str
    stage: str
    note: str = ""
    duration_s: float = 0.0
    record_dir: str = ""


@dataclass
class ConfigBisectResult:
    good: str
    bad: str
    target: dict[str, str]  # verdict and stage of the bad config
    differing: list[str]  # every differing assignment (SYMBOL=bad value)
    derived: list[str]  # differing symbols Kconfig sets by itself (never requested)
    units: list[list[str]]
    reproduced: bool = False
    culprits: list[str] = field(default_factory=list)  # SYMBOL=value, the smallest set found
    single: bool = False  # one option (with what it needs) is to blame
    message: str = ""
    tried: list[TriedConfig] = field(default_factory=list)
    duration_s: float = 0.0
    complete: bool = True  # False when the time budget ran out

    def to_dict(self) -> dict:
        return asdict(self)


class ConfigOracle(Protocol):
    def resolve(self, config: Config) -> Config:
        """The config after the tree's `make olddefconfig`."""
        ...

    def check(self, number: int, assignments: Config) -> Observation:
        """The combination's checks on the good config with these assignments applied."""
        ...


class BudgetExhausted(Exception):
    """The time budget ran out; the bisect reports what it has narrowed down so far."""


# --------------------------------------------------------------------------- pure parts


def differing(good: Config, bad: Config, candidates: Iterable[str] | None = None) -> Config:
    """The assignments (symbol -> bad value) where the two resolved configs differ."""
    names = list(candidates) if candidates is not None else sorted(set(good) | set(bad))
    out: Config = {}
    for name in names:
        g, b = actual_value(good, name), actual_value(bad, name)
        if normalize(g) != normalize(b) and name not in out:
            out[name] = b
    return out


def held(requested: Config, resolved: Config) -> list[str]:
    """The requested assignments that did NOT survive olddefconfig (empty: all held)."""
    return [s for s, v in requested.items()
            if normalize(v) != normalize(actual_value(resolved, s))]


def group_units(good: Config, bad: Config, delta: Config,
                resolve: Callable[[Config], Config]) -> tuple[list[Unit], list[str]]:
    """Free options with the free options each one needs, and the derived (forced) symbols.

    For each differing symbol S: resolve the bad config with S set back to its good value.
    If Kconfig puts S back, S is derived (selected, or has no prompt): it is never requested.
    Otherwise every other differing symbol that changed with it depends on S.
    """
    dependents: dict[str, set[str]] = {}
    derived: list[str] = []
    for sym in delta:
        without = dict(bad)
        without[sym] = actual_value(good, sym)
        resolved = resolve(without)
        if normalize(actual_value(resolved, sym)) != normalize(actual_value(good, sym)):
            derived.append(sym)
            continue
        dependents[sym] = {t for t in delta if t != sym
                           and normalize(actual_value(resolved, t)) != normalize(bad_val(bad, t))}
    free = list(dependents)
    needs = {s: {t for t in free if t != s and s in dependents[t]} for s in free}
    units = []
    for sym in free:
        closure, todo = {sym}, [sym]
        while todo:
            for t in needs[todo.pop()]:
                if t not in closure:
                    closure.add(t)
                    todo.append(t)
        units.append(Unit(sym, frozenset(closure)))
    return units, derived


def bad_val(bad: Config, sym: str) -> str:
    return actual_value(bad, sym)


def classify(obs: Observation, target: Observation) -> tuple[Trial, str]:
    """A candidate fails like the bad config only with the same verdict at the same stage."""
    if obs.passed:
        return Trial.PASS, ""
    if obs.verdict is Verdict.CONFIG_DROPPED:
        return Trial.UNRESOLVED, "unresolved: Kconfig did not keep the tested assignments: " + \
            "; ".join(obs.reasons[:2])
    if obs.verdict is Verdict.INFRA_ERROR:
        return Trial.UNRESOLVED, "infrastructure error: " + "; ".join(obs.reasons[:1])
    if obs.verdict == target.verdict and obs.stage == target.stage:
        return Trial.FAIL, ""
    return Trial.UNRESOLVED, (f"a different failure ({obs.verdict} at {obs.stage}): "
                              + "; ".join(obs.reasons[:1]))


def split(items: Sequence, n: int) -> list[list]:
    """n nearly equal, non-empty, contiguous chunks."""
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            chunks.append(list(items[start:end]))
        start = end
    return chunks


def ddmin(items: Sequence, test: Callable[[list], Trial]) -> list:
    """Zeller's ddmin: a 1-minimal sub-list for which test() is FAIL (test(items) must be FAIL).

    Subsets first, then complements; granularity doubles when neither reduces.
    """
    current, n = list(items), 2
    while len(current) >= 2:
        chunks = split(current, n)
        for chunk in chunks:
            if test(chunk) is Trial.FAIL:
                current, n = chunk, 2
                break
        else:
            for chunk in chunks if n > 2 else []:
                complement = [x for x in current if x not in chunk]
                if test(complement) is Trial.FAIL:
                    current, n = complement, max(n - 1, 2)
                    break
            else:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
    return current


# --------------------------------------------------------------------------- the bisect


def _assignments(units: Iterable[Unit], bad: Config) -> Config:
    symbols = sorted(set().union(*[u.symbols for u in units])) if units else []
    return {s: bad_val(bad, s) for s in symbols}


def _render(assignments: Config) -> list[str]:
    return [f"{s}={v}" for s, v in assignments.items()]


class Bisector:
    """Runs ddmin over units, every candidate through the oracle, each config tried once."""

    def __init__(self, oracle: ConfigOracle, bad: Config, target: Observation,
                 say: Callable[[str], None], deadline: float | None = None) -> None:
        self.oracle, self.bad, self.target, self.say = oracle, bad, target, say
        self.deadline = deadline
        self.tried: list[TriedConfig] = []
        self._seen: dict[frozenset[str], Trial] = {}

    def test(self, units: list[Unit]) -> Trial:
        assignments = _assignments(units, self.bad)
        key = frozenset(assignments)
        if key in self._seen:
            return self._seen[key]
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExhausted(f"time budget exhausted after {len(self.tried)} configs")
        number = len(self.tried) + 1
        start = time.monotonic()
        obs = self.oracle.check(number, assignments)
        outcome, note = classify(obs, self.target)
        self.tried.append(TriedConfig(number, _render(assignments), outcome.value, obs.verdict,
                                      obs.stage or "", note, round(time.monotonic() - start, 1),
                                      obs.record_dir))
        self.say(f"config {number}: good + {len(assignments)} assignment(s) "
                 f"[{' '.join(_render(assignments))[:160]}]: {outcome.value}"
                 + (f" ({note})" if note else ""))
        self._seen[key] = outcome
        return outcome


def shrink(found: list[Unit], units: list[Unit], test: Callable[[list], Trial]) -> list[Unit]:
    """ddmin is 1-minimal over units; a smaller unit inside the found set may still fail alone."""
    while True:
        inside = set().union(*[u.symbols for u in found])
        smaller = sorted((u for u in units if u.symbols < inside), key=lambda u: len(u.symbols))
        for unit in smaller:
            if test([unit]) is Trial.FAIL:
                found = [unit]
                break
        else:
            return found


def bisect_config(good_name: str, bad_name: str, good: Config, bad: Config,
                  target: Observation, oracle: ConfigOracle,
                  candidates: Iterable[str] | None = None,
                  say: Callable[[str], None] = print,
                  deadline: float | None = None) -> ConfigBisectResult:
    """Find the smallest set of the bad config's assignments that, applied to the good config,
    fails the same way as the bad config (same verdict, same stage)."""
    start = time.monotonic()
    delta = differing(good, bad, candidates)
    result = ConfigBisectResult(good_name, bad_name,
                                {"verdict": target.verdict, "stage": target.stage or ""},
                                _render(delta), [], [])
    if not delta:
        result.message = "the good and the bad config resolve to the same values: nothing to bisect"
        return result
    say(f"bisect-config: {len(delta)} differing assignment(s); grouping by Kconfig dependencies "
        f"({len(delta)} olddefconfig runs)")
    units, derived = group_units(good, bad, delta, oracle.resolve)
    result.derived = derived
    result.units = [sorted(u.symbols) for u in units]
    say(f"bisect-config: {len(units)} free option(s), {len(derived)} derived by Kconfig")
    bisector = Bisector(oracle, bad, target, say, deadline)
    try:
        if not units or bisector.test(units) is not Trial.FAIL:
            result.message = (f"no culprit: applying all {len(units)} free differing options to "
                              f"the good config does not fail as {target.verdict} at the "
                              f"{target.stage} stage: see the configs tried")
            return _finish(result, bisector, start)
        result.reproduced = True
        found = shrink(ddmin(units, bisector.test), units, bisector.test)
    except BudgetExhausted as exc:
        result.complete = False
        result.message = f"incomplete: {exc}"
        return _finish(result, bisector, start)
    assignments = _assignments(found, bad)
    result.culprits = _render(assignments)
    result.single = len(found) == 1
    if len(assignments) == 1:
        result.message = f"{result.culprits[0]} alone makes the difference"
    elif result.single:
        result.message = (f"{found[0].symbol}={bad_val(bad, found[0].symbol)} makes the "
                          f"difference, with the options it needs: {' '.join(result.culprits)}")
    else:
        result.message = (f"no single option is to blame: the smallest set found is "
                          f"{len(assignments)} assignments that fail only together: "
                          f"{' '.join(result.culprits)}")
    return _finish(result, bisector, start)


def _finish(result: ConfigBisectResult, bisector: Bisector, start: float) -> ConfigBisectResult:
    result.tried = bisector.tried
    result.duration_s = round(time.monotonic() - start, 1)
    return result


def report_text(result: ConfigBisectResult) -> str:
    lines = [(f"kmatrix bisect-config: good {result.good}, bad {result.bad} "
             f"({result.target['verdict']} at the {result.target['stage']} stage)"),
             f"result: {result.message}",
             (f"differing assignments: {len(result.differing)} "
             f"({len(result.derived)} derived by Kconfig, {len(result.units)} free)"),
             f"configs tried: {len(result.tried)} in {result.duration_s:.0f} s", ""]
    for t in result.tried:
        lines.append(f"  {t.number:3d}  {t.outcome:<10} {t.verdict:<14} "
                     f"{' '.join(t.assignments)}" + (f"  # {t.note}" if t.note else ""))
    return "\n".join(lines) + "\n"


