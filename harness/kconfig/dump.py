"""The dump: every symbol of one resolved config as the tree's own Kconfig code sees it
(type, value, dependencies, selects, prompts, defaults, choices), read from kconfig_dump.c's
JSON lines."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .config import bare_name
from .expr import TRI, Expr, expr_from_json, same_value


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
        name = bare_name(name)
        if name not in self._parsed:
            raw = self._raw.get(name)
            if raw is None:
                return None
            self._parsed[name] = Symbol.from_json(json.loads(raw))
        return self._parsed[name]

    def close_matches(self, name: str) -> list[str]:
        return difflib.get_close_matches(bare_name(name), self.names(), n=3)


def holds_in_dump(sym: Symbol, value: str) -> bool:
    if sym.is_bool:
        return sym.value == value
    return same_value(sym.value, value)
