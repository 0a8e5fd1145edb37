"""Explanations: why a requested value does (not) hold in one resolved config, in the
kernel's own words: `MODULE_DEBUG_AUTOLOAD_DUPS=y needs MODULE_DEBUG [=n]; MODULE_DEBUG=y
needs DEBUG_FS [=n]`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import bare_name
from .dump import KconfigDump, Property, Symbol
from .expr import TRI, Or, paren_and, render, same_value, terms
from .planner import Need, Planner


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
    name = bare_name(symbol)
    sym = dump.symbol(name)
    planner = Planner(dump, {**(fixed or {}), name: requested_value}, tree, added)
    if sym is None:
        return Explanation(name, requested_value, exists=False,
                           unsatisfiable=planner.undefined_reason(name),
                           did_you_mean=dump.close_matches(name))
    result = Explanation(name, requested_value, True, sym.value, sym.type, sym.where)
    result.selected_by = [paren_and(t) for t in terms(sym.rev_dep.expr if sym.rev_dep else None, Or)]
    result.implied_by = [paren_and(t) for t in terms(sym.implied.expr if sym.implied else None, Or)]
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


