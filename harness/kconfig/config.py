"""Kconfig data: .config files and fragments, the symbols a tree defines, and config truth.

Everything here is a plain function over plain data; the tree's own ``make olddefconfig``
(run by kbuild) is what resolves a config. This module only reads and compares.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

SYMBOL_RE = re.compile(r"^CONFIG_[A-Za-z0-9_]+$")
_SET_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_DEF_RE = re.compile(r"^\s*(?:menuconfig|config)\s+([A-Za-z0-9_]+)\s*$")
_TYPE_RE = re.compile(r"^\s*(bool|tristate|string|int|hex|def_bool|def_tristate)\b")

TRISTATE_VALUES = ("y", "m", "n")

# A config is an ordered mapping CONFIG_NAME -> value as written in .config:
# "y", "m", "n" (for "# ... is not set"), a quoted string '"text"', or a number.
Config = dict[str, str]


def parse_config(text: str) -> Config:
    """Parse a .config or fragment. Later assignments win, as they do for Kconfig."""
    values: Config = {}
    for raw in text.splitlines():
        line = raw.strip()
        if m := _SET_RE.match(line):
            values.pop(m.group(1), None)
            values[m.group(1)] = m.group(2)
        elif m := _UNSET_RE.match(line):
            values.pop(m.group(1), None)
            values[m.group(1)] = "n"
    return values


def render_config(values: Config) -> str:
    lines = []
    for name, value in values.items():
        lines.append(f"# {name} is not set" if value == "n" else f"{name}={value}")
    return "\n".join(lines) + ("\n" if lines else "")


def merge(base: Config, *fragments: Config) -> Config:
    """Base config with fragments applied in order (like merge_config.sh: last one wins)."""
    merged = dict(base)
    for fragment in fragments:
        for name, value in fragment.items():
            merged.pop(name, None)
            merged[name] = value
    return merged


def config_hash(values: Config) -> str:
    """A stable hash of a resolved config (order and comments do not matter)."""
    canon = "\n".join(f"{k}={values[k]}" for k in sorted(values) if values[k] != "n")
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def actual_value(resolved: Config, name: str) -> str:
    """The value a symbol has in a resolved config; absent means n (or unset for non-bools)."""
    return resolved.get(name, "n")


def normalize(value: str) -> str:
    """Compare values the way Kconfig writes them: numbers by value, strings unquoted."""
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    try:
        return str(int(text, 0))
    except ValueError:
        return text


@dataclass(frozen=True)
class Mismatch:
    """A requested value that did not survive Kconfig."""

    symbol: str
    requested: str
    actual: str

    def describe(self) -> str:
        actual = "not set" if self.actual == "n" else self.actual
        verb = "dropped" if self.actual == "n" else "changed"
        return f"{self.symbol}={self.requested} {verb} by Kconfig (resolved: {actual})"


def config_truth(requested: Config, resolved: Config) -> list[Mismatch]:
    """Every requested value must appear unchanged in the resolved config."""
    return [Mismatch(name, want, actual_value(resolved, name))
            for name, want in requested.items()
            if normalize(want) != normalize(actual_value(resolved, name))]


@dataclass(frozen=True)
class SymbolTable:
    """The symbols a tree's Kconfig files define, with their types (bool, tristate, ...)."""

    types: dict[str, str]

    def __contains__(self, name: str) -> bool:
        return bare_name(name) in self.types

    def type_of(self, name: str) -> str:
        return self.types.get(bare_name(name), "unknown")

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        import difflib

        return [config_name(m) for m in difflib.get_close_matches(bare_name(name), list(self.types),
                                                                   n=n)]


def kconfig_files(tree: Path) -> list[Path]:
    """Every Kconfig* file of a tree (every architecture), sorted: the files Kconfig can
    source. Hidden directories (.git) are skipped, and of Documentation/ only its top Kconfig,
    which the top Kconfig sources."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "Documentation"]
        found.extend(Path(dirpath) / f for f in filenames if f.startswith("Kconfig"))
    if (tree / "Documentation" / "Kconfig").is_file():
        found.append(tree / "Documentation" / "Kconfig")
    return sorted(found)


def scan_symbols(tree: Path, files: list[Path] | None = None) -> SymbolTable:
    """Read every Kconfig* file of a tree (`files`: kconfig_files(tree), if the caller made
    it already) for `config`/`menuconfig` lines.

    This is a lexical scan, good for "does this symbol exist and what is its type"; what a
    symbol resolves to is always left to the tree's own Kconfig (make olddefconfig).
    """
    types: dict[str, str] = {}
    for path in kconfig_files(tree) if files is None else files:
        _scan_file(path, types)
    return SymbolTable(types)


def _scan_file(path: Path, types: dict[str, str]) -> None:
    current: str | None = None
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        if m := _DEF_RE.match(line):
            current = m.group(1)
            types.setdefault(current, "unknown")
        elif current and (t := _TYPE_RE.match(line)):
            kind = t.group(1).removeprefix("def_")
            if types.get(current) == "unknown":
                types[current] = kind
            current = None


def check_value(symbol_type: str, value: str) -> str | None:
    """None when value suits the type, else what is wrong with it."""
    if symbol_type == "bool" and value not in ("y", "n"):
        return "a bool takes y or n"
    if symbol_type == "tristate" and value not in TRISTATE_VALUES:
        return "a tristate takes y, m or n"
    if symbol_type == "int" and not re.fullmatch(r"-?\d+", value):
        return "an int takes a decimal number"
    if symbol_type == "hex" and not re.fullmatch(r"(0x)?[0-9a-fA-F]+", value):
        return "a hex takes a hexadecimal number"
    return None


def config_value(symbol_type: str, value: str) -> str:
    """How a matrix value is written into a .config for a symbol of that type."""
    if symbol_type == "string" and not (value.startswith('"') and value.endswith('"')):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if symbol_type == "hex" and not value.lower().startswith("0x"):
        return "0x" + value
    return value


def config_name(name: str) -> str:
    """`X` or `CONFIG_X` -> `CONFIG_X`: the name as .config files and matrices write it."""
    return name if name.startswith("CONFIG_") else "CONFIG_" + name


def bare_name(name: str) -> str:
    """`CONFIG_X` or `X` -> `X`: the name as Kconfig files and explanations write it."""
    return name.removeprefix("CONFIG_")
