"""Kconfig expressions, as the kernel's expr.h has them: a tree of symbols, !, &&, ||
and comparisons, read from the dumper's JSON, rendered and evaluated as tristates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..verdict import InfraError
from .config import normalize

TRI = {"n": 0, "m": 1, "y": 2}
TRI_NAME = ("n", "m", "y")
IMPOSSIBLE = 10**9


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
NEGATE = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "range": "range"}


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
    if op in NEGATE:
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
        yield from symbols_in(e.a)
        yield from symbols_in(e.b)


def and_all(exprs: list[Expr]) -> Expr:
    result = exprs[0]
    for e in exprs[1:]:
        result = And(result, e)
    return result


def paren_or(e: Expr) -> str:
    return f"({render(e)})" if isinstance(e, Or) else render(e)


def paren_and(e: Expr) -> str:
    return render(e)


def same_value(a: str, b: str) -> bool:
    return normalize(a) == normalize(b)
