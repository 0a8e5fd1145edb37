"""Repair: the smallest set of extra assignments that makes every requested value hold, each
round checked by the real `make olddefconfig` (the oracle)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config, bare_name, config_name, merge
from .dump import KconfigDump
from .explain import Explanation, explain
from .expr import Sym, evaluate, same_value, symbols_in
from .session import KconfigSession


@dataclass
class Repair:
    """The extra assignments that make every requested value hold, checked by olddefconfig."""

    requested: Config
    added: Config  # e.g. {"CONFIG_MODULE_DEBUG": "y", "CONFIG_DEBUG_FS": "y"}
    holds: bool
    explanations: list[Explanation]  # for the values that still do not hold (empty if holds)
    resolved: Config  # the olddefconfig result of base + requested + added
    rounds: int
    unsatisfiable: str | None = None

    def describe(self) -> str:
        """For result records: `repaired: +MODULE_DEBUG=y +DEBUG_FS=y`."""
        added = " ".join(f"+{k.removeprefix('CONFIG_')}={v}" for k, v in self.added.items())
        if self.holds:
            return f"repaired: {added}" if added else "holds without repair"
        why = self.unsatisfiable or "; ".join(e.summary() for e in self.explanations)
        return f"cannot repair{' (tried ' + added + ')' if added else ''}: {why}"


def diagnose(requested: Config, base: Config, session: KconfigSession) -> list[Explanation]:
    """For a combination before any build: resolve base + requested with olddefconfig and
    explain every requested value that does not hold. An explanation with `unsatisfiable`
    set means the combination can never hold (report it, build nothing); without, repair()
    can fix it. Empty when every value holds."""
    requested = {config_name(k): v for k, v in requested.items()}
    resolved = session.olddefconfig(merge(base, requested))
    bad = failing(requested, resolved)
    if not bad:
        return []
    dump = session.dump()
    return [explain(name, requested[name], dump, requested, session.tree) for name in bad]


def failing(requested: Config, resolved: Config) -> list[str]:
    return [name for name, want in requested.items()
            if not same_value(want, resolved.get(name, "n"))]


def repair(requested: Config, base: Config, session: KconfigSession, max_rounds: int = 5,
           minimize: bool = True) -> Repair:
    """Find the smallest set of additional assignments that makes `requested` hold on `base`.

    Each round: resolve base + requested + added with the real `make olddefconfig`, dump it,
    plan the unmet conditions, add the planned assignments. Then drop any added assignment
    the result does not need (each drop checked by olddefconfig) when `minimize`."""
    requested = {config_name(k): v for k, v in requested.items()}
    added: Config = {}
    dump: KconfigDump | None = None
    for rounds in range(1, max_rounds + 1):
        resolved = session.olddefconfig(merge(base, added, requested))
        bad = failing(requested, resolved)
        if not bad:
            if minimize and added:
                changed = {bare_name(k) for k in (*added, *requested)}
                needed = {k for k in added if dump is not None and _only_by_assignment(
                    dump, bare_name(k), added[k], changed)}
                added, resolved = _minimize(requested, base, added, session, resolved, needed)
            return Repair(requested, added, True, [], resolved, rounds)
        dump = session.dump()
        explanations = [explain(name, requested[name], dump, requested, session.tree, added)
                        for name in bad]
        impossible = [e for e in explanations if e.unsatisfiable]
        if impossible:
            return Repair(requested, added, False, explanations, resolved, rounds,
                          "; ".join(e.summary() for e in impossible))
        new = {config_name(k): v for e in explanations for k, v in e.proposal.items()
               if added.get(config_name(k)) != v}
        if not new:
            return Repair(requested, added, False, explanations, resolved, rounds,
                          "no assignment left to try: " + "; ".join(e.summary() for e in explanations))
        added.update(new)
    resolved = session.olddefconfig(merge(base, added, requested))
    bad = failing(requested, resolved)
    return Repair(requested, added, not bad, [], resolved, max_rounds,
                  None if not bad else f"still failing after {max_rounds} rounds: {', '.join(bad)}")


def _only_by_assignment(dump: KconfigDump, name: str, value: str, changed: set[str]) -> bool:
    """True when `name=y` can come only from its assignment: it has a prompt, no default that
    can give y or m, and no select that is on or mentions a symbol the repair or the request
    changes (`changed`, bare names). Such an addition is not worth an olddefconfig to drop.
    (A select switched on further down a cascade is not seen: the repair may then keep an
    assignment it could drop, never drop one it needs.)"""
    sym = dump.symbol(name)
    if sym is None or value != "y" or not sym.prompts:
        return False
    if sym.rev_dep is not None and (evaluate(sym.rev_dep.expr) > 0 or any(
            s.name in changed for s in symbols_in(sym.rev_dep.expr))):
        return False
    return all(isinstance(d.target, Sym) and d.target.const and d.target.name == "n"
               for d in sym.defaults)


def _minimize(requested: Config, base: Config, added: Config, session: KconfigSession,
              resolved: Config, needed: set[str]) -> tuple[Config, Config]:
    """Drop added assignments that Kconfig would derive anyway (last added first); each
    drop is checked by olddefconfig. Those in `needed` are known to be necessary."""
    keep = dict(added)
    for name in reversed([k for k in added if k not in needed]):
        trial = {k: v for k, v in keep.items() if k != name}
        trial_resolved = session.olddefconfig(merge(base, trial, requested))
        if not failing(requested, trial_resolved):
            keep, resolved = trial, trial_resolved
    if keep != added:
        resolved = session.olddefconfig(merge(base, keep, requested))
    return keep, resolved


