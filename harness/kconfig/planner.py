"""Planning: what must change for SYMBOL=VALUE to hold, following the unmet conditions down
to symbols a user can set (the repair planner and the chains explanations quote)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..arch import ARCHES
from .config import bare_name
from .dump import KconfigDump, Symbol, holds_in_dump
from .expr import (
    IMPOSSIBLE,
    NEGATE,
    TRI,
    TRI_NAME,
    And,
    Compare,
    Expr,
    Not,
    Or,
    Sym,
    and_all,
    evaluate,
    paren_and,
    paren_or,
    render,
    same_value,
    terms,
    unmet_part,
)


@dataclass(frozen=True)
class Need:
    """One link of an explanation: `MODULE_DEBUG=y needs DEBUG_FS [=n]`."""

    symbol: str
    value: str
    kind: str  # depends, prompt, selected, choice, no-prompt, modules, undefined, conflict ...
    text: str

    def line(self) -> str:
        return f"{self.symbol}={self.value} {self.text}"


@dataclass(frozen=True)
class Plan:
    """Assignments that should make something hold, the reasons, or why nothing can."""

    assignments: tuple[tuple[str, str], ...] = ()
    needs: tuple[Need, ...] = ()
    impossible: str | None = None

    @property
    def cost(self) -> int:
        return IMPOSSIBLE if self.impossible else len(self.assignments)

    def then(self, other: Plan) -> Plan:
        if self.impossible:
            return self
        if other.impossible:
            return Plan(self.assignments, self.needs + other.needs, other.impossible)
        mine = dict(self.assignments)
        for name, value in other.assignments:
            if mine.get(name, value) != value:
                return Plan(self.assignments, self.needs + other.needs,
                            f"{name} would need both {mine[name]} and {value}")
            mine[name] = value
        needs = self.needs + tuple(n for n in other.needs if n not in self.needs)
        return Plan(tuple(mine.items()), needs)


def cheapest(options: list[Plan]) -> Plan:
    """The option with the fewest assignments; the first (leftmost in Kconfig) on a tie."""
    possible = [p for p in options if not p.impossible]
    if possible:
        return min(possible, key=lambda p: p.cost)
    reasons = "; ".join(dict.fromkeys(p.impossible or "" for p in options))
    return Plan(needs=tuple(n for p in options for n in p.needs), impossible=reasons)


def want_for(value: str) -> int:
    return TRI.get(value, 2)


class Planner:
    """Turns unmet conditions into assignments. `fixed` holds values that must not change
    (the user's requests). Results are memoized per (symbol, value) for one dump."""

    def __init__(self, dump: KconfigDump, fixed: dict[str, str], tree: Path | None = None,
                 added: dict[str, str] | None = None) -> None:
        self.dump = dump
        self.added = {bare_name(k): v for k, v in (added or {}).items()}
        self.tree = tree
        self._arch_hints: dict[str, str] = {}
        self.fixed = {bare_name(k): v for k, v in fixed.items()}
        self._memo: dict[tuple[str, str], Plan] = {}
        self._active: set[str] = set()

    def require(self, name: str, value: str) -> Plan:
        key = (name, value)
        if key in self._memo:
            return self._memo[key]
        if name in self._active:
            return Plan(impossible=f"{name} depends on itself through {value}")
        self._active.add(name)
        try:
            plan = self._require(name, value)
        finally:
            self._active.discard(name)
        self._memo[key] = plan
        return plan

    def undefined_reason(self, name: str) -> str:
        """Why a symbol can never be set here: defined for other architectures, or nowhere."""
        if name not in self._arch_hints:
            arches = defined_in_arches(self.tree, name) if self.tree else []
            srcarch = self.dump.header.get("srcarch") or "?"
            here = " ".join([*arch_names(srcarch), f"(SRCARCH={srcarch})"])
            self._arch_hints[name] = (
                f"{name} exists only on {', '.join(arch_label(a) for a in arches)}, not on {here}"
                if arches else f"{name} is defined nowhere in this tree's Kconfig for this "
                f"architecture (SRCARCH={srcarch})")
        return self._arch_hints[name]

    def _require(self, name: str, value: str) -> Plan:
        sym = self.dump.symbol(name)
        if sym is None:
            return Plan(impossible=self.undefined_reason(name))
        if holds_in_dump(sym, value):
            return Plan()
        fixed = self.fixed.get(name)
        if fixed is not None and not same_value(fixed, value):
            return Plan(needs=(Need(name, value, "conflict",
                                    f"conflicts with the requested {name}={fixed}"),),
                        impossible=f"needs {name}={value}, but {name}={fixed} is requested")
        added = self.added.get(name)
        if added is not None and not same_value(added, value):
            return Plan(impossible=f"needs {name}={value}, but repair already added {name}={added}")
        broken = self.breaks_request(name, value)
        if broken:
            return Plan(impossible=broken)
        if not sym.is_bool:
            return self._set_value(sym, value)
        if value == "n":
            return self._disable(sym)
        return self._enable(sym, value)

    def breaks_request(self, name: str, value: str) -> str | None:
        """`MODULES=n would break the requested MODULE_SIG=y (it needs MODULES [=y])`: a change
        that takes away the direct dependency of a requested value that holds now."""
        what_if = {name: value}
        for other, want in self.fixed.items():
            sym = self.dump.symbol(other)
            if other == name or sym is None or not sym.is_bool or want == "n" \
                    or not holds_in_dump(sym, want) or sym.dir_dep is None:
                continue
            still = max(evaluate(sym.dir_dep.expr, what_if),
                        evaluate(sym.rev_dep.expr, what_if) if sym.rev_dep else 0)
            if still < TRI.get(want, 2):
                return (f"{name}={value} would break the requested {other}={want} "
                        f"(it needs {sym.dir_dep.text})")
        return None

    # -- y or m

    def _enable(self, sym: Symbol, value: str) -> Plan:
        want = want_for(value)
        if sym.type == "bool" and value == "m":
            value, want = "y", 2
        plan = Plan()
        if value == "m":
            plan = self._step(sym.name, value, "modules", "needs MODULES", self.require("MODULES", "y"))
        if sym.selected_to >= want:
            return plan
        if sym.choice is not None:
            return plan.then(self._enable_choice_member(sym, want))
        if sym.prompts:
            return plan.then(self._enable_with_prompt(sym, value, want))
        return plan.then(self._enable_without_prompt(sym, want))

    def _enable_with_prompt(self, sym: Symbol, value: str, want: int) -> Plan:
        conds = [c for c in (sym.dir_dep, *(p.visible for p in sym.prompts)) if c is not None]
        unmet = [c for c in conds if TRI[c.tri] < want]
        if not unmet:
            return Plan(assignments=((sym.name, value),))
        # dir_dep first (depends on, if, menu); a prompt's own condition only when it adds more
        cond = unmet[0]
        kind = "depends" if cond is sym.dir_dep else "prompt"
        parts = unmet_part(cond.expr, want)
        text = "needs " + " && ".join(paren_or(p) for p in parts)
        if kind == "prompt":
            text = "is settable only if " + " && ".join(paren_or(p) for p in parts)
        plan = self._step(sym.name, value, kind, text, self.satisfy(cond.expr, want))
        if plan.impossible:
            return self._or_selected(sym, want, plan)
        return plan.then(Plan(assignments=((sym.name, value),)))

    def _enable_without_prompt(self, sym: Symbol, want: int) -> Plan:
        """No prompt: only a select or a default can give it a value."""
        options: list[Plan] = []
        if sym.rev_dep is not None:
            options += [self.satisfy(t, want) for t in terms(sym.rev_dep.expr, Or)]
        for default in sym.defaults:
            if evaluate(default.target) < want:
                continue
            cond = default.cond.expr if default.cond else None
            dep = sym.dir_dep.expr if sym.dir_dep else None
            need = [e for e in (dep, cond) if e is not None]
            options.append(self.satisfy(and_all(need), want) if need else Plan())
        what = []
        if sym.rev_dep is not None:
            what.append("selected by " + " || ".join(paren_and(t)
                                                      for t in terms(sym.rev_dep.expr, Or)))
        if sym.dir_dep is not None and sym.defaults:
            what.append(f"by default when {sym.dir_dep.text}")
        text = ("has no prompt: it gets a value only when " + " or ".join(what)) if what else \
            "has no prompt and no default that gives it this value"
        if not options:
            return Plan(needs=(Need(sym.name, TRI_NAME[want], "no-prompt", text),),
                        impossible=f"{sym.name} has no prompt and nothing selects it")
        return self._step(sym.name, TRI_NAME[want], "no-prompt", text, cheapest(options))

    def _or_selected(self, sym: Symbol, want: int, failed: Plan) -> Plan:
        if sym.rev_dep is None:
            return failed
        options = [self.satisfy(t, want) for t in terms(sym.rev_dep.expr, Or)]
        best = cheapest(options)
        return failed if best.impossible else best

    def _enable_choice_member(self, sym: Symbol, want: int) -> Plan:
        choice = self.dump.choices.get(sym.choice)  # type: ignore[arg-type]
        label = f'choice "{choice.prompt}"' if choice else "its choice"
        plan = Plan()
        if choice and choice.dep and TRI[choice.dep.tri] < want:
            parts = unmet_part(choice.dep.expr, want)
            plan = self._step(sym.name, TRI_NAME[want], "choice",
                              f"is a member of {label}, which needs "
                              + " && ".join(paren_or(p) for p in parts),
                              self.satisfy(choice.dep.expr, want))
        own = [c for c in (sym.dir_dep, *(p.visible for p in sym.prompts))
               if c is not None and TRI[c.tri] < want
               and not (choice and c.text == (choice.dep.text if choice.dep else ""))]
        for cond in own[:1]:
            own_plan = self.satisfy(cond.expr, want)
            if choice and choice.dep:  # the choice's own dependency is handled above
                own_plan = Plan(own_plan.assignments, own_plan.needs, own_plan.impossible)
            plan = plan.then(self._step(sym.name, TRI_NAME[want], "depends",
                                        "needs " + " && ".join(paren_or(p) for p in
                                                                unmet_part(cond.expr, want)),
                                        own_plan))
        fixed_other = [m for m in (choice.members if choice else ())
                       if m != sym.name and self.fixed.get(m) == "y"]
        if fixed_other:
            return plan.then(Plan(impossible=f"{sym.name} and {fixed_other[0]} are both "
                                             f"requested in {label}; only one can be y"))
        return plan.then(Plan(assignments=((sym.name, "y"),)))

    # -- n

    def _disable(self, sym: Symbol) -> Plan:
        if sym.selected_to > 0 and sym.rev_dep is not None:
            active = [t for t in terms(sym.rev_dep.expr, Or) if evaluate(t) > 0]
            text = "is forced to {} by select: {}".format(
                TRI_NAME[sym.selected_to], " || ".join(paren_and(t) for t in active))
            plan = self._step(sym.name, "n", "selected", text, self.falsify(sym.rev_dep.expr, 0))
            if plan.impossible:
                return plan
            return plan.then(self._disable_unselected(sym))
        return self._disable_unselected(sym)

    def _disable_unselected(self, sym: Symbol) -> Plan:
        if sym.choice is not None and sym.tri == 2:
            return self._disable_choice_member(sym)
        if sym.prompts and TRI[sym.visible] > 0:
            return Plan(assignments=((sym.name, "n"),))
        if sym.selected_to > 0:
            return Plan()  # it will follow once nothing selects it any more
        active = [d for d in sym.defaults if d.active() and evaluate(d.target) > 0]
        if not active:
            return Plan()
        dep = sym.dir_dep
        text = f"has no prompt here and defaults to {render(active[0].target)}"
        if dep is not None:
            text += f" while {dep.text}"
        options = [self.falsify(dep.expr, 0)] if dep is not None else []
        options += [self.falsify(d.cond.expr, 0) for d in active[:1] if d.cond is not None]
        if not options:
            return Plan(needs=(Need(sym.name, "n", "no-prompt", text),),
                        impossible=f"{sym.name} has no prompt and is always {sym.value}")
        return self._step(sym.name, "n", "no-prompt", text, cheapest(options))

    def _disable_choice_member(self, sym: Symbol) -> Plan:
        choice = self.dump.choices.get(sym.choice)  # type: ignore[arg-type]
        if choice is None:
            return Plan(impossible=f"{sym.name} is in a choice kmatrix cannot see")
        others = [m for m in choice.members if m != sym.name]
        options = [self.require(m, "y") for m in others]
        text = f'is the selected member of choice "{choice.prompt}": another member must be y'
        return self._step(sym.name, "n", "choice", text, cheapest(options))

    # -- int, hex, string

    def _set_value(self, sym: Symbol, value: str) -> Plan:
        conds = [c for c in (sym.dir_dep, *(p.visible for p in sym.prompts)) if c is not None]
        unmet = [c for c in conds if TRI[c.tri] == 0]
        if not sym.prompts:
            return Plan(needs=(Need(sym.name, value, "no-prompt", "has no prompt"),),
                        impossible=f"{sym.name} has no prompt: its value comes from defaults")
        if not unmet:
            return Plan(assignments=((sym.name, value),))
        parts = unmet_part(unmet[0].expr, 2)
        plan = self._step(sym.name, value, "depends",
                          "needs " + " && ".join(paren_or(p) for p in parts),
                          self.satisfy(unmet[0].expr, 2))
        return plan.then(Plan(assignments=((sym.name, value),)))

    # -- expressions

    def satisfy(self, e: Expr, want: int) -> Plan:
        """Assignments that make e >= want."""
        if evaluate(e) >= want:
            return Plan()
        if isinstance(e, Sym):
            if e.const:
                return Plan(impossible=f"the condition is the constant {e.name}")
            if e.undefined:
                return Plan(impossible=self.undefined_reason(e.name))
            sym = self.dump.symbol(e.name)
            value = "m" if want == 1 and sym is not None and sym.type == "tristate" else "y"
            return self.require(e.name, value)
        if isinstance(e, And):
            return self.satisfy(e.a, want).then(self.satisfy(e.b, want))
        if isinstance(e, Or):
            return cheapest([self.satisfy(t, want) for t in terms(e, Or)])
        if isinstance(e, Not):
            return self.falsify(e.a, 2 - want)
        return self._compare(e)

    def falsify(self, e: Expr, limit: int) -> Plan:
        """Assignments that make e <= limit."""
        if evaluate(e) <= limit:
            return Plan()
        if isinstance(e, Sym):
            if e.const:
                return Plan(impossible=f"the condition is the constant {e.name}")
            return self.require(e.name, TRI_NAME[limit])
        if isinstance(e, And):
            return cheapest([self.falsify(t, limit) for t in terms(e, And)])
        if isinstance(e, Or):
            return self.falsify(e.a, limit).then(self.falsify(e.b, limit))
        if isinstance(e, Not):
            return self.satisfy(e.a, 2 - limit)
        return self._compare(Compare(NEGATE[e.op], e.a, e.b))

    def _compare(self, e: Compare) -> Plan:
        """`FOO = y`, `FOO != n`, `NR >= 4`: settable when one side is a constant."""
        var, const, op = e.a, e.b, e.op
        if var.const and not const.const:
            var, const = const, var
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if var.const or not const.const:
            return Plan(impossible=f"cannot plan the comparison {render(e)}")
        value = const.name
        if op == "!=":
            value = "n" if const.name in ("y", "m") else "y"
        elif op in ("<", ">"):
            try:
                value = str(int(const.name, 0) + (1 if op == ">" else -1))
            except ValueError:
                return Plan(impossible=f"cannot plan the comparison {render(e)}")
        return self.require(var.name, value)

    @staticmethod
    def _step(name: str, value: str, kind: str, text: str, inner: Plan) -> Plan:
        return Plan(inner.assignments, (Need(name, value, kind, text),) + inner.needs,
                    inner.impossible)


_CONFIG_LINE = r"^\s*(?:menu)?config\s+{}\s*$"


def arch_names(srcarch: str) -> list[str]:
    """kmatrix's names of the architectures built from arch/<srcarch> (harness/arch)."""
    return [a.name for a in ARCHES.values() if a.srcarch == srcarch]


def arch_label(directory: str) -> str:
    """`NAME (arch/DIR)` for an arch/ directory kmatrix builds, else the directory."""
    names = arch_names(directory.removeprefix("arch/"))
    return f"{'/'.join(names)} ({directory})" if names else directory


def defined_in_arches(tree: Path, name: str) -> list[str]:
    """The arch/ directories that define `name` (a lexical scan): in their own Kconfig files,
    or by sourcing a Kconfig file elsewhere that defines it (kernel/livepatch/Kconfig is
    sourced by only some architectures)."""
    defines = re.compile(_CONFIG_LINE.format(re.escape(name)), re.MULTILINE)
    arches = sorted(p for p in (tree / "arch").iterdir() if p.is_dir())
    found = [f"arch/{arch.name}" for arch in arches if _any_kconfig(arch, defines)]
    if found:
        return found
    shared = [p.relative_to(tree).as_posix() for p in sorted(tree.rglob("Kconfig*"))
              if "arch" != p.relative_to(tree).parts[0] and _matches(p, defines)]
    if not shared:
        return []
    sources = re.compile(r'^\s*source\s+"(?:{})"'.format("|".join(map(re.escape, shared))),
                         re.MULTILINE)
    return [f"arch/{arch.name}" for arch in arches if _any_kconfig(arch, sources)]


def _matches(path: Path, pattern: re.Pattern[str]) -> bool:
    try:
        return bool(pattern.search(path.read_text(errors="replace")))
    except OSError:
        return False


def _any_kconfig(directory: Path, pattern: re.Pattern[str]) -> bool:
    return any(_matches(k, pattern) for k in sorted(directory.rglob("Kconfig*")))


