"""Kconfig truth, explained: why a requested value did not hold, and what to add so that it does.

The tree's own Kconfig code is the parser. ``kconfig_dump.c`` is linked against the lkc objects
that ``make olddefconfig`` leaves in the output directory and prints every symbol (type, value,
direct dependencies including enclosing if/menu, reverse dependencies from selects, prompts,
defaults, choices) as JSON lines. This module reads that dump into dataclasses and:

- ``explain()`` walks the unmet conditions down to symbols a user can set:
  ``MODULE_DEBUG_AUTOLOAD_DUPS=y needs MODULE_DEBUG [=n]; MODULE_DEBUG needs DEBUG_FS [=n]``;
- ``repair()`` proposes the smallest set of extra assignments and checks it with the real
  ``make olddefconfig`` (the oracle) until the requested values hold or nothing more helps;
- ``KconfigSession.olddefconfig()`` resolves a config without any compiler beyond Kconfig's
  host tools, so the pipeline can resolve every combination before building;
- ``explain_main()`` is ``kmatrix explain CONFIG_X[=VALUE] [--config FILE]``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .container import Runner, Step
from .kbuild import Toolchain
from .kconfig import Config, merge, normalize, parse_config, render_config
from .verdict import EXIT_BAD_INPUT, EXIT_KERNEL_FAILED, EXIT_OK, InfraError, InputError

DUMPER_SOURCE = Path(__file__).resolve().parent / "kconfig_dump.c"
LKC_OBJECTS = ("confdata.o", "expr.o", "lexer.lex.o", "menu.o", "parser.tab.o",
               "preprocess.o", "symbol.o", "util.o")
TRI = {"n": 0, "m": 1, "y": 2}
TRI_NAME = ("n", "m", "y")
IMPOSSIBLE = 10**9


# ---------------------------------------------------------------------------------------------
# Expressions, as the kernel's expr.h has them

@dataclass(frozen=True)
class Sym:
    """A symbol inside an expression, with the value it had when the dump was taken."""

    name: str
    value: str
    const: bool = False
    undefined: bool = False  # referenced but defined nowhere in this tree for this SRCARCH


@dataclass(frozen=True)
class Not:
    a: Expr


@dataclass(frozen=True)
class And:
    a: Expr
    b: Expr


@dataclass(frozen=True)
class Or:
    a: Expr
    b: Expr


@dataclass(frozen=True)
class Compare:
    op: str  # = != < <= > >=, or "range" (a range property's bounds)
    a: Sym
    b: Sym


Expr = Sym | Not | And | Or | Compare

_PRECEDENCE = {Or: 1, And: 2, Not: 3, Compare: 4, Sym: 5}
_NEGATE = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "range": "range"}


def expr_from_json(data: dict) -> Expr:
    if "s" in data:
        undefined = bool(data.get("undefined"))  # Kconfig reports its name as its value: it is n
        return Sym(data["s"], "n" if undefined else data.get("v", ""), bool(data.get("c")),
                   undefined)
    op = data["op"]
    if op == "!":
        return Not(expr_from_json(data["a"]))
    if op == "&&":
        return And(expr_from_json(data["a"]), expr_from_json(data["b"]))
    if op == "||":
        return Or(expr_from_json(data["a"]), expr_from_json(data["b"]))
    if op in _NEGATE:
        return Compare(op, expr_from_json(data["a"]), expr_from_json(data["b"]))  # type: ignore[arg-type]
    raise InfraError(f"kconfig_dump printed an expression kmatrix does not know: {data}")


def render(e: Expr) -> str:
    """The expression as menuconfig's help prints it: `A [=y] && (B [=n] || C [=m])`."""
    if isinstance(e, Sym):
        if e.undefined:
            return f"{e.name} [undefined]"
        return e.name if e.const else f"{e.name} [={e.value}]"
    if isinstance(e, Not):
        return "!" + _child(e.a, e)
    if isinstance(e, Compare):
        if e.op == "range":
            return f"[{render(e.a)} {render(e.b)}]"
        return f"{render(e.a)} {e.op} {render(e.b)}"
    op = " && " if isinstance(e, And) else " || "
    return _child(e.a, e) + op + _child(e.b, e)


def _child(child: Expr, parent: Expr) -> str:
    text = render(child)
    if _PRECEDENCE[type(child)] < _PRECEDENCE[type(parent)]:
        return f"({text})"
    return text


def sym_tri(s: Sym) -> int:
    return TRI.get(s.value, 0)


def evaluate(e: Expr, overrides: dict[str, str] | None = None) -> int:
    """Tristate value of an expression over the values in the dump (0 n, 1 m, 2 y),
    or over `overrides` where given (what-if: "if X were n")."""
    o = overrides or {}
    if isinstance(e, Sym):
        return TRI.get(o[e.name], 0) if e.name in o and not e.const else sym_tri(e)
    if isinstance(e, Not):
        return 2 - evaluate(e.a, o)
    if isinstance(e, And):
        return min(evaluate(e.a, o), evaluate(e.b, o))
    if isinstance(e, Or):
        return max(evaluate(e.a, o), evaluate(e.b, o))
    left, right = (o.get(x.name, x.value) if not x.const else x.value for x in (e.a, e.b))
    return 2 if _compare(e.op, left, right) else 0


def _compare(op: str, left: str, right: str) -> bool:
    if op == "range":
        return True
    try:
        diff = (int(left, 0) > int(right, 0)) - (int(left, 0) < int(right, 0))
    except ValueError:
        diff = (left > right) - (left < right)
    return {"=": diff == 0, "!=": diff != 0, "<": diff < 0, "<=": diff <= 0,
            ">": diff > 0, ">=": diff >= 0}[op]


def terms(e: Expr | None, kind: type) -> list[Expr]:
    """Flatten a chain of || (or &&) into its operands."""
    if e is None:
        return []
    if isinstance(e, kind):
        return terms(e.a, kind) + terms(e.b, kind)  # type: ignore[union-attr]
    return [e]


def unmet_part(e: Expr, want: int) -> list[Expr]:
    """The operands of a top-level && that are below `want`: what to show the user."""
    return [t for t in terms(e, And) if evaluate(t) < want]


def symbols_in(e: Expr | None) -> Iterator[Sym]:
    if e is None:
        return
    if isinstance(e, Sym):
        yield e
    elif isinstance(e, Not):
        yield from symbols_in(e.a)
    else:
        yield from symbols_in(e.a)  # type: ignore[union-attr]
        yield from symbols_in(e.b)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# The dump

@dataclass(frozen=True)
class Condition:
    """An expression with its value and the kernel's own rendering of it (expr_gstr_print)."""

    expr: Expr
    tri: str
    text: str

    @classmethod
    def from_json(cls, data: dict | None) -> Condition | None:
        if data is None:
            return None
        return cls(expr_from_json(data["e"]), data["tri"], data["text"])


@dataclass(frozen=True)
class Property:
    """A default, select, imply or range: its target expression and its `if` condition."""

    target: Expr
    cond: Condition | None
    where: str

    @classmethod
    def from_json(cls, data: dict) -> Property:
        return cls(expr_from_json(data["e"]), Condition.from_json(data["if"]),
                   f"{data['file']}:{data['line']}")

    def active(self) -> bool:
        return self.cond is None or TRI[self.cond.tri] > 0


@dataclass(frozen=True)
class Prompt:
    text: str
    visible: Condition | None
    where: str


@dataclass(frozen=True)
class Symbol:
    name: str
    type: str  # bool tristate int hex string unknown
    value: str
    user: str | None  # the value read from .config, if any
    visible: str
    changeable: bool
    choice: int | None
    dir_dep: Condition | None  # depends on, plus enclosing if/menu/choice conditions
    rev_dep: Condition | None  # who selects it
    implied: Condition | None
    prompts: tuple[Prompt, ...]
    defaults: tuple[Property, ...]
    selects: tuple[Property, ...]
    implies: tuple[Property, ...]
    ranges: tuple[Property, ...]
    where: str

    @classmethod
    def from_json(cls, d: dict) -> Symbol:
        props = {k: tuple(Property.from_json(p) for p in d[k])
                 for k in ("defaults", "selects", "implies", "ranges")}
        prompts = tuple(Prompt(p["text"], Condition.from_json(p["visible"]),
                               f"{p['file']}:{p['line']}") for p in d["prompts"])
        return cls(d["name"], d["type"], d["value"], d["user"], d["visible"], d["changeable"],
                   d.get("choice"), Condition.from_json(d["dir_dep"]),
                   Condition.from_json(d["rev_dep"]), Condition.from_json(d["implied"]),
                   prompts, props["defaults"], props["selects"], props["implies"],
                   props["ranges"], f"{d['file']}:{d['line']}")

    @property
    def is_bool(self) -> bool:
        return self.type in ("bool", "tristate")

    @property
    def tri(self) -> int:
        return TRI.get(self.value, 0)

    @property
    def selected_to(self) -> int:
        return TRI[self.rev_dep.tri] if self.rev_dep else 0


@dataclass(frozen=True)
class Choice:
    id: int
    prompt: str | None
    visible: str
    dep: Condition | None
    members: tuple[str, ...]
    where: str


_NAME_RE = re.compile(r'^\{"kind":"symbol","name":"([A-Za-z0-9_]+)"')


class KconfigDump:
    """What kconfig_dump printed. Symbols are parsed on first use: a full dump has ~18000."""

    def __init__(self, lines: list[str]) -> None:
        self.header: dict = {}
        self._raw: dict[str, str] = {}
        self._parsed: dict[str, Symbol] = {}
        self.choices: dict[int, Choice] = {}
        for line in lines:
            if m := _NAME_RE.match(line):
                self._raw[m.group(1)] = line
            elif line.strip():
                self._read_other(json.loads(line))

    @classmethod
    def from_file(cls, path: Path) -> KconfigDump:
        return cls(path.read_text().splitlines())

    def _read_other(self, d: dict) -> None:
        if d["kind"] == "header":
            self.header = d
        elif d["kind"] == "choice":
            self.choices[d["id"]] = Choice(d["id"], d["prompt"], d["visible"],
                                           Condition.from_json(d["dep"]),
                                           tuple(d["members"]), f"{d['file']}:{d['line']}")

    @property
    def kernel(self) -> str:
        return f"Linux {self.header.get('kernel') or '?'} (SRCARCH={self.header.get('srcarch')})"

    def names(self) -> list[str]:
        return list(self._raw)

    def symbol(self, name: str) -> Symbol | None:
        name = name.removeprefix("CONFIG_")
        if name not in self._parsed:
            raw = self._raw.get(name)
            if raw is None:
                return None
            self._parsed[name] = Symbol.from_json(json.loads(raw))
        return self._parsed[name]

    def close_matches(self, name: str) -> list[str]:
        return difflib.get_close_matches(name.removeprefix("CONFIG_"), self.names(), n=3)


# ---------------------------------------------------------------------------------------------
# Planning: what must change for SYMBOL=VALUE to hold, following the chain to settable symbols

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
        self.added = {k.removeprefix("CONFIG_"): v for k, v in (added or {}).items()}
        self.tree = tree
        self._arch_hints: dict[str, str] = {}
        self.fixed = {k.removeprefix("CONFIG_"): v for k, v in fixed.items()}
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
            where = (f"defined only for {', '.join(arches)}" if arches
                     else "defined nowhere in this tree's Kconfig for this architecture")
            self._arch_hints[name] = f"{name} is {where}, not for SRCARCH={srcarch}" \
                if arches else f"{name} is {where} (SRCARCH={srcarch})"
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
        text = "needs " + " && ".join(_paren_or(p) for p in parts)
        if kind == "prompt":
            text = "is settable only if " + " && ".join(_paren_or(p) for p in parts)
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
            options.append(self.satisfy(_and_all(need), want) if need else Plan())
        what = []
        if sym.rev_dep is not None:
            what.append("selected by " + " || ".join(_paren_and(t)
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
                              + " && ".join(_paren_or(p) for p in parts),
                              self.satisfy(choice.dep.expr, want))
        own = [c for c in (sym.dir_dep, *(p.visible for p in sym.prompts))
               if c is not None and TRI[c.tri] < want
               and not (choice and c.text == (choice.dep.text if choice.dep else ""))]
        for cond in own[:1]:
            own_plan = self.satisfy(cond.expr, want)
            if choice and choice.dep:  # the choice's own dependency is handled above
                own_plan = Plan(own_plan.assignments, own_plan.needs, own_plan.impossible)
            plan = plan.then(self._step(sym.name, TRI_NAME[want], "depends",
                                        "needs " + " && ".join(_paren_or(p) for p in
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
                TRI_NAME[sym.selected_to], " || ".join(_paren_and(t) for t in active))
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
                          "needs " + " && ".join(_paren_or(p) for p in parts),
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
        return self._compare(Compare(_NEGATE[e.op], e.a, e.b))

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


def defined_in_arches(tree: Path, name: str) -> list[str]:
    """The arch/ directories whose Kconfig files define `name` (a lexical scan of arch/ only)."""
    pattern = re.compile(_CONFIG_LINE.format(re.escape(name)), re.MULTILINE)
    found = []
    for arch in sorted(p for p in (tree / "arch").iterdir() if p.is_dir()):
        for kconfig in sorted(arch.rglob("Kconfig*")):
            try:
                if pattern.search(kconfig.read_text(errors="replace")):
                    found.append(f"arch/{arch.name}")
                    break
            except OSError:
                continue
    return found


def _and_all(exprs: list[Expr]) -> Expr:
    result = exprs[0]
    for e in exprs[1:]:
        result = And(result, e)
    return result


def _paren_or(e: Expr) -> str:
    return f"({render(e)})" if isinstance(e, Or) else render(e)


def _paren_and(e: Expr) -> str:
    return render(e)


def same_value(a: str, b: str) -> bool:
    return normalize(a) == normalize(b)


def holds_in_dump(sym: Symbol, value: str) -> bool:
    if sym.is_bool:
        return sym.value == value
    return same_value(sym.value, value)


# ---------------------------------------------------------------------------------------------
# Explanation

@dataclass
class Explanation:
    """Why SYMBOL=VALUE does (not) hold in one resolved config, and what would make it hold."""

    symbol: str
    requested: str
    exists: bool
    current: str | None = None
    type: str | None = None
    where: str | None = None
    needs: list[Need] = field(default_factory=list)
    proposal: dict[str, str] = field(default_factory=dict)  # from the dump alone, unverified
    unsatisfiable: str | None = None
    selected_by: list[str] = field(default_factory=list)
    implied_by: list[str] = field(default_factory=list)
    selects: list[str] = field(default_factory=list)
    implies: list[str] = field(default_factory=list)
    did_you_mean: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.exists and self.current is not None and same_value(self.current, self.requested)

    def summary(self) -> str:
        """One line for a result record: the chain, or why it can never hold."""
        if not self.exists:
            hint = f"; did you mean {', '.join('CONFIG_' + m for m in self.did_you_mean)}?" \
                if self.did_you_mean else ""
            return f"CONFIG_{self.symbol} does not exist here: {self.unsatisfiable}{hint}"
        if self.holds:
            return f"{self.symbol}={self.requested} holds"
        chain = "; ".join(n.line() for n in self.needs) or \
            f"{self.symbol}={self.requested} did not hold (value {self.current})"
        if self.unsatisfiable:
            return f"{chain}; unsatisfiable: {self.unsatisfiable}"
        return chain

    def lines(self) -> list[str]:
        out = [f"CONFIG_{self.symbol}={self.requested}: " + (
            "holds" if self.holds else "does not hold" if self.exists else "no such symbol")]
        if not self.exists:
            return out + [self.summary()]
        out.append(f"  type {self.type}, value {self.current or 'n'} ({self.where})")
        if self.needs:
            out.append("Why:")
            out += [f"  {n.line()}" for n in self.needs]
        if self.unsatisfiable:
            out.append(f"Unsatisfiable: {self.unsatisfiable}")
        for title, items in (("Selected by", self.selected_by), ("Implied by", self.implied_by),
                             ("Selects", self.selects), ("Implies", self.implies)):
            if items:
                out.append(f"{title}:")
                out += [f"  - {i}" for i in items]
        return out


def explain(symbol: str, requested_value: str, dump: KconfigDump,
            fixed: dict[str, str] | None = None, tree: Path | None = None,
            added: dict[str, str] | None = None) -> Explanation:
    """Why `symbol=requested_value` does or does not hold in the config the dump was taken of.

    `fixed` are other requested values (CONFIG_ names or bare) that a proposal must not change;
    `added` are assignments an earlier repair round made.
    `tree`, when given, lets the explanation name the architectures that define a symbol
    this SRCARCH lacks.
    """
    name = symbol.removeprefix("CONFIG_")
    sym = dump.symbol(name)
    planner = Planner(dump, {**(fixed or {}), name: requested_value}, tree, added)
    if sym is None:
        return Explanation(name, requested_value, exists=False,
                           unsatisfiable=planner.undefined_reason(name),
                           did_you_mean=dump.close_matches(name))
    result = Explanation(name, requested_value, True, sym.value, sym.type, sym.where)
    result.selected_by = [_paren_and(t) for t in terms(sym.rev_dep.expr if sym.rev_dep else None, Or)]
    result.implied_by = [_paren_and(t) for t in terms(sym.implied.expr if sym.implied else None, Or)]
    result.selects = [_prop_line(p) for p in sym.selects]
    result.implies = [_prop_line(p) for p in sym.implies]
    problem = _type_problem(sym, requested_value)
    if problem:
        result.unsatisfiable = problem
        return result
    if result.holds:
        return result
    plan = planner.require(name, requested_value)
    result.needs = list(plan.needs) or [_settable_need(sym, requested_value)]
    result.proposal = {k: v for k, v in plan.assignments if k != name}
    result.unsatisfiable = plan.impossible
    return result


def _settable_need(sym: Symbol, value: str) -> Need:
    """Nothing in Kconfig stops the value: the config itself asks for another one."""
    if sym.user is not None:
        text = f"is settable, but the config sets it to {sym.user}"
    else:
        text = f"is settable, but the config does not set it (it resolves to {sym.value or 'n'})"
    return Need(sym.name, value, "config", text)


def _prop_line(p: Property) -> str:
    target = render(p.target)
    return f"{target} if {p.cond.text}" if p.cond else target


def _type_problem(sym: Symbol, value: str) -> str | None:
    if sym.type == "bool" and value not in ("y", "n"):
        return f"{sym.name} is a bool: it takes y or n, not {value}"
    if sym.type == "tristate" and value not in TRI:
        return f"{sym.name} is a tristate: it takes y, m or n, not {value}"
    if not sym.is_bool and value in ("y", "m"):
        return f"{sym.name} is {sym.type}, not bool"
    return None


# ---------------------------------------------------------------------------------------------
# Running Kconfig: the real olddefconfig, and the dumper, through the Runner

@dataclass
class KconfigSession:
    """One output directory in which configs are resolved and dumped, one at a time.

    `out` is ours (read-write); `tree` is mounted read-only. Every command run is kept in
    `commands` (the `docker run` line a human would rerun) and logged to `log`."""

    tree: Path
    out: Path
    runner: Runner
    log: IO[str]
    arch: str = "x86_64"
    timeout_s: float = 600.0
    commands: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def toolchain(self) -> Toolchain:
        return Toolchain(tree=self.tree, arch=self.arch, jobs=1, mem_bytes=2 << 30)

    def _run(self, step: Step) -> list[str]:
        self.commands.append(self.runner.reproducer(step))
        started = time.monotonic()
        result = self.runner.run(step, self.log)
        self.timings[step.name] = self.timings.get(step.name, 0.0) + time.monotonic() - started
        if not result.ok:
            tail = " | ".join(result.tail[-5:])
            raise InfraError(f"{step.name} failed (exit {result.exit_code}): {tail}; "
                             f"rerun: {self.commands[-1]}")
        return result.tail

    def olddefconfig(self, config: Config) -> Config:
        """Write `config` as OUT/.config, run the tree's `make olddefconfig`, return the result.

        This is the oracle: the resolved config is what any build from `config` gets."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / ".config").write_text(render_config(config))
        self._run(self.toolchain.make_step("kconfig:olddefconfig", self.out, "olddefconfig",
                                           timeout_s=self.timeout_s))
        return parse_config((self.out / ".config").read_text())

    def config_target(self, target: str) -> Config:
        """Run a config target such as `tinyconfig` or `defconfig` in OUT; return its .config."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._run(self.toolchain.make_step(f"kconfig:{target}", self.out, target,
                                           timeout_s=self.timeout_s))
        return parse_config((self.out / ".config").read_text())

    def resolved_text(self) -> str:
        return (self.out / ".config").read_text()

    def kconfig_env(self) -> tuple[tuple[str, str], ...]:
        """The environment Kconfig saw in `make`: Kconfig itself records it in auto.conf.cmd."""
        cmd = self.out / "include" / "config" / "auto.conf.cmd"
        if not cmd.exists():
            raise InfraError(f"{cmd} is missing: run olddefconfig in {self.out} first")
        pairs = re.findall(r'^ifneq "\$\(([A-Za-z0-9_]+)\)" "(.*)"$', cmd.read_text(), re.MULTILINE)
        return tuple(pairs)

    def dumper(self) -> Path:
        """OUT/kconfig_dump-HASH, compiled in the builder against this tree's lkc objects."""
        source = DUMPER_SOURCE.read_bytes()
        binary = self.out / f"kconfig_dump-{hashlib.sha256(source).hexdigest()[:12]}"
        if binary.exists():
            return binary
        objdir = self.out / "scripts" / "kconfig"
        missing = [o for o in LKC_OBJECTS if not (objdir / o).exists()]
        if missing:
            raise InfraError(f"{objdir} lacks {', '.join(missing)}: run olddefconfig first")
        src_copy = self.out / "kconfig_dump.c"
        src_copy.write_bytes(source)
        kconfig_src = self.tree / "scripts" / "kconfig"
        argv = ("gcc", "-O1", "-w", "-I", str(kconfig_src), "-I", str(self.tree / "scripts" / "include"),
                "-I", str(objdir), "-o", str(binary), str(src_copy),
                *(str(objdir / o) for o in LKC_OBJECTS))
        self._run(Step("kconfig:compile-dumper", argv, self.toolchain.mounts(self.out),
                       workdir=str(self.out), timeout_s=self.timeout_s))
        return binary

    def dump(self, config_name: str = ".config", write: str | None = None) -> KconfigDump:
        """Dump OUT/config_name as Kconfig reads it (conf_read: the same as olddefconfig)."""
        binary = self.dumper()
        argv = [str(binary), "--config", config_name]
        if write:
            argv += ["--write", write]
        argv += ["--dump", "kconfig-dump.jsonl", "Kconfig"]
        env = (("srctree", str(self.tree)),
               *((k, v) for k, v in self.kconfig_env() if k != "srctree"))
        self._run(Step("kconfig:dump", tuple(argv), self.toolchain.mounts(self.out),
                       workdir=str(self.out), env=env, timeout_s=self.timeout_s))
        return KconfigDump.from_file(self.out / "kconfig-dump.jsonl")


# ---------------------------------------------------------------------------------------------
# Repair

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
    requested = {_config_name(k): v for k, v in requested.items()}
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
    requested = {_config_name(k): v for k, v in requested.items()}
    added: Config = {}
    dump: KconfigDump | None = None
    for rounds in range(1, max_rounds + 1):
        resolved = session.olddefconfig(merge(base, added, requested))
        bad = failing(requested, resolved)
        if not bad:
            if minimize and added:
                changed = {k.removeprefix("CONFIG_") for k in (*added, *requested)}
                needed = {k for k in added if dump is not None and _only_by_assignment(
                    dump, k.removeprefix("CONFIG_"), added[k], changed)}
                added, resolved = _minimize(requested, base, added, session, resolved, needed)
            return Repair(requested, added, True, [], resolved, rounds)
        dump = session.dump()
        explanations = [explain(name, requested[name], dump, requested, session.tree, added)
                        for name in bad]
        impossible = [e for e in explanations if e.unsatisfiable]
        if impossible:
            return Repair(requested, added, False, explanations, resolved, rounds,
                          "; ".join(e.summary() for e in impossible))
        new = {_config_name(k): v for e in explanations for k, v in e.proposal.items()
               if added.get(_config_name(k)) != v}
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


def _config_name(name: str) -> str:
    return name if name.startswith("CONFIG_") else "CONFIG_" + name


# ---------------------------------------------------------------------------------------------
# kmatrix explain

def parse_request(text: str) -> tuple[str, str]:
    """`CONFIG_X`, `X`, `CONFIG_X=n` -> ("CONFIG_X", value); y when no value is given."""
    name, _, value = text.partition("=")
    name = _config_name(name.strip())
    if not re.fullmatch(r"CONFIG_[A-Za-z0-9_]+", name):
        raise InputError(f"{text!r} is not a Kconfig symbol: write CONFIG_NAME or CONFIG_NAME=VALUE")
    return name, value.strip() or "y"


def explain_main(symbol: str, config: Path | Config | None, tree: Path, out: Path,
                 runner: Runner, log: IO[str] | None = None) -> tuple[str, int]:
    """`kmatrix explain CONFIG_X[=VALUE] [--config FILE]`: text and exit status.

    `config` is a .config/fragment file (--config) or an already merged Config (--combo: the
    combination's base + fragments + requested values); None means the tree's defaults (an
    empty config through olddefconfig). It is resolved by olddefconfig in `out`, dumped,
    explained, and, when the value does not hold, repaired and checked.
    Exit 0 when the value holds, 1 when it does not (the text says why and how to repair),
    2 for a symbol that does not exist or an unreadable config, 3 for Docker/tooling trouble."""
    name, value = parse_request(symbol)
    base = _read_config(config)
    own_log = log is None
    log_file = log or _open_log(out)
    try:
        session = KconfigSession(tree, out, runner, log_file)
        started = time.monotonic()
        session.olddefconfig(base)
        dump = session.dump()
        explanation = explain(name, value, dump, tree=tree)
        explain_s = time.monotonic() - started
        text = explanation.lines()
        status = EXIT_OK if explanation.holds else EXIT_KERNEL_FAILED
        if not explanation.exists:
            status = EXIT_BAD_INPUT
        elif not explanation.holds and not explanation.unsatisfiable:
            started = time.monotonic()
            fixed = repair({name: value}, base, session)
            text.append(f"Repair ({time.monotonic() - started:.1f} s, checked by make olddefconfig):")
            text.append("  " + fixed.describe())
        text.append(f"Kernel: {dump.kernel}; explained in {explain_s:.1f} s")
        text.append("Commands (rerun by hand):")
        text += [f"  {c}" for c in dict.fromkeys(session.commands)]
        return "\n".join(text) + "\n", status
    finally:
        if own_log:
            log_file.close()


def _read_config(config: Path | Config | None) -> Config:
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    try:
        return parse_config(config.read_text())
    except OSError as exc:
        raise InputError(f"cannot read config {config}: {exc.strerror}") from exc


def _open_log(out: Path) -> IO[str]:
    out.mkdir(parents=True, exist_ok=True)
    return open(out / "kconfig.log", "a", encoding="utf-8")
