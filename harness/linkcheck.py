"""The link check: the members of a directory's built-in.a against the expected objects.

Expectations are conditions over the resolved config (``dups.o: MODULE_DEBUG_AUTOLOAD_DUPS``);
a condition is `y`, `n`, a symbol (true when it is `y`), `!`, `&&`, `||` and parentheses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .kconfig import Config
from .kconfig.config import config_name

_TOKEN_RE = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9_]+)")


class ConditionError(ValueError):
    pass


MAX_DEPTH = 64  # nested `!` and `(`: a real condition needs a handful
MAX_LENGTH = 4096


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"condition of {len(text)} characters is too long "
                             f"(at most {MAX_LENGTH})")
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ConditionError(f"cannot read {text[pos:]!r} in condition {text[:80]!r}")
        tokens.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    if not tokens:
        raise ConditionError("empty condition")
    return tokens


def condition_symbols(text: str) -> set[str]:
    return {config_name(t) for t in tokenize(text)
            if t not in ("&&", "||", "!", "(", ")", "y", "n")}


def evaluate(text: str, config: Config) -> bool:
    """Evaluate a condition against a resolved config (a symbol is true when it is `y`)."""
    tokens = tokenize(text)
    pos = 0
    depth = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ConditionError(f"condition {text[:80]!r} ends too early")
        pos += 1
        return tokens[pos - 1]

    def or_expr() -> bool:
        value = and_expr()
        while peek() == "||":
            take()
            value = and_expr() or value
        return value

    def and_expr() -> bool:
        value = unary()
        while peek() == "&&":
            take()
            value = unary() and value
        return value

    def unary() -> bool:
        nonlocal depth
        tok = take()
        if tok in ("!", "("):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConditionError(f"condition nested deeper than {MAX_DEPTH} levels of "
                                     "`!` and `(`: simplify it")
            try:
                if tok == "!":
                    return not unary()
                value = or_expr()
                if take() != ")":
                    raise ConditionError(f"missing ')' in {text[:80]!r}")
                return value
            finally:
                depth -= 1
        if tok in ("&&", "||", ")"):
            raise ConditionError(f"unexpected {tok!r} in {text[:80]!r}")
        if tok == "y":
            return True
        if tok == "n":
            return False
        return config.get(config_name(tok), "n") == "y"

    result = or_expr()
    if pos != len(tokens):
        raise ConditionError(f"unexpected {tokens[pos]!r} in {text[:80]!r}")
    return result


def archive_members(path: Path) -> list[str]:
    """Member names of an ar archive, thin (Kbuild's built-in.a) or regular. Pure Python."""
    data = path.read_bytes()
    if data.startswith(b"!<thin>\n"):
        pos = 8
    elif data.startswith(b"!<arch>\n"):
        pos = 8
    else:
        raise ValueError(f"{path} is not an ar archive")
    thin = data.startswith(b"!<thin>\n")
    names: list[str] = []
    long_names = b""
    while pos < len(data):
        header = data[pos:pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n" or not header[48:58].strip().isdigit():
            # cut short or overwritten: a damaged output tree, never a list of members
            raise ValueError(f"{path} is damaged at byte {pos} (not a whole ar archive)")
        name = header[:16].decode(errors="replace").rstrip()
        size = int(header[48:58].decode().strip())
        pos += 60
        body_size = size
        if name == "//":
            long_names = data[pos:pos + size]
        elif name in ("/", "/SYM64/"):
            pass
        else:
            if name.startswith("/") and name[1:].isdigit():
                off = int(name[1:])
                end = long_names.index(b"/\n", off)
                name = long_names[off:end].decode()
            else:
                name = name.rstrip("/")
            names.append(name)
            if thin:
                body_size = 0  # thin archives do not hold member bodies
        pos += body_size + (body_size & 1)
    if pos > len(data) + 1:
        raise ValueError(f"{path} is damaged: its last member is cut short")
    return names


@dataclass
class LinkReport:
    directory: str
    members: list[str]
    expected: list[str]
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected

    def describe(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{self.directory}: expected but not linked: {', '.join(self.missing)}")
        if self.unexpected:
            out.append(f"{self.directory}: linked but not expected: {', '.join(self.unexpected)}")
        return out


def link_check(directory: str, expect: dict[str, str], config: Config,
               members: list[str]) -> LinkReport:
    """Compare archive members (paths like kernel/module/main.o) with the expectation.

    Every member must be expected: an object missing from the map is reported as unexpected,
    so a new `obj-` line in the Makefile is noticed.
    """
    prefix = directory.rstrip("/") + "/"
    linked = sorted(m[len(prefix):] if m.startswith(prefix) else Path(m).name for m in members)
    expected = sorted(obj for obj, cond in expect.items() if evaluate(cond, config))
    report = LinkReport(directory, linked, expected)
    report.missing = [o for o in expected if o not in linked]
    report.unexpected = [o for o in linked if o not in expected]
    return report
