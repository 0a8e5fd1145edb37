"""Read a Kbuild Makefile's object rules: which object each CONFIG_ option links in.

``kmatrix expect-map`` turns these rules into the matrix's ``expect`` map, so a user starts
from the tree's own wiring; the link check then holds the built tree to that map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .kconfig.config import bare_name

_RULE_RE = re.compile(r"^obj-(y|\$\((CONFIG_[A-Za-z0-9_]+)\))\s*[:+]?=\s*(.*)$")
_IF_RE = re.compile(r"^(ifdef|ifndef)\s+(CONFIG_[A-Za-z0-9_]+)\s*$")
_IFEQ_RE = re.compile(
    r"^(ifeq|ifneq)\s*\(\s*\$\((CONFIG_[A-Za-z0-9_]+)\)\s*,\s*(y?)\s*\)\s*$")


@dataclass(frozen=True)
class ObjectRule:
    """`obj` is linked into the directory's built-in.a when `condition` holds."""

    obj: str
    condition: str  # "y" or an expression over symbols, e.g. "MODULE_SIG && !FOO"
    line: int


def _and(parts: list[str]) -> str:
    parts = [p for p in parts if p != "y"]
    if not parts:
        return "y"
    return " && ".join(f"({p})" if "||" in p else p for p in parts)


def parse_object_rules(text: str) -> list[ObjectRule]:
    """Object rules of one Kbuild Makefile, with `ifdef`/`ifeq` blocks folded into conditions.

    Only built-in objects (`.o` on `obj-y` / `obj-$(CONFIG_X)`) are returned; subdirectories
    (`foo/`) and constructs this reader does not understand are skipped, never guessed.
    """
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        logical.append((start, pending + raw))
        pending = ""
    if pending:
        logical.append((start, pending))
    guards: list[str] = []
    rules: list[ObjectRule] = []
    for number, raw in logical:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if m := _IF_RE.match(line):
            sym = bare_name(m.group(2))
            guards.append(sym if m.group(1) == "ifdef" else f"!{sym}")
            continue
        if m := _IFEQ_RE.match(line):
            sym = bare_name(m.group(2))
            positive = (m.group(1) == "ifeq") == (m.group(3) == "y")
            guards.append(sym if positive else f"!{sym}")
            continue
        if line.startswith(("ifeq", "ifneq", "ifdef", "ifndef")):
            guards.append("?")  # a guard we cannot express: objects under it are skipped
            continue
        if line == "else" and guards:
            g = guards.pop()
            guards.append(g if g == "?" else (g[1:] if g.startswith("!") else f"!{g}"))
            continue
        if line.startswith("else ") and guards:
            guards[-1] = "?"  # `else ifdef ...`: a chain this reader does not fold: skip the rest
            continue
        if line == "endif" and guards:
            guards.pop()
            continue
        m = _RULE_RE.match(line)
        if not m or "?" in guards:
            continue
        own = "y" if m.group(1) == "y" else bare_name(m.group(2))
        condition = _and([*guards, own])
        for word in m.group(3).split():
            if word.endswith(".o"):
                rules.append(ObjectRule(word, condition, number))
    return rules


def expect_map(rules: list[ObjectRule]) -> dict[str, str]:
    """Object -> condition; an object listed under several conditions links when any holds."""
    result: dict[str, str] = {}
    for rule in rules:
        if rule.obj in result and result[rule.obj] != rule.condition:
            result[rule.obj] = f"{result[rule.obj]} || {rule.condition}"
        else:
            result[rule.obj] = rule.condition
    return result


def render_expect_yaml(directory: str, mapping: dict[str, str]) -> str:
    lines = ["expect:", f"  {directory}:"]
    for obj, cond in mapping.items():
        lines.append(f"    {obj}: {cond if cond in ('y', 'n') or cond.isidentifier() else repr(cond)}")
    return "\n".join(lines) + "\n"
