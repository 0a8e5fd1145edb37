"""Console logs as a stream of cleaned lines: prefixes stripped, read with a size cap.

A serial log from QEMU or a real machine may carry `<N>` syslog levels, `[ 1.234567]`
timestamps, `[T42]`/`[C0]` caller ids and CRLF line ends; the judge sees none of them. Files are
read line by line, never whole, and refused past ``MAX_CONSOLE_BYTES``: a kmatrix boot prints
well under a megabyte, a KASAN-heavy one a few megabytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..verdict import InputError

MAX_CONSOLE_BYTES = 64 << 20
TAIL_LINES = 8

_PREFIX = re.compile(r"^(<\d+>)?(\[\s*\d+\.\d+\]\s?)?(\[\s*[TC]\d+\]\s?)?")
BANNER = re.compile(r"Linux version \d+\.\d+")


def clean_line(line: str) -> str:
    """One console line without its line end, syslog level, timestamp or caller id."""
    return _PREFIX.sub("", line.rstrip("\r\n").rstrip("\r"))


def raw_lines(console: str | Iterable[str]) -> Iterator[str]:
    """Lines of a text (split here) or of an iterable of lines (a file object), lazily."""
    if isinstance(console, str):
        yield from console.replace("\r\n", "\n").split("\n")
    else:
        yield from console


def clean_lines(text: str) -> list[str]:
    """Console lines without carriage returns, syslog levels, timestamps or caller ids."""
    return [clean_line(line) for line in raw_lines(text)]


def tail_reason(text: str | Iterable[str], count: int = TAIL_LINES) -> str:
    lines = [line for line in map(clean_line, raw_lines(text)) if line.strip()][-count:]
    return "last console lines: " + " | ".join(line.strip()[:160] for line in lines)


def cmdline_from_console(console: str | Iterable[str]) -> str:
    """The kernel's own `Command line:` or `Kernel command line:` (arch-dependent) from a log."""
    for raw in raw_lines(console):
        match = re.match(r"(Kernel )?[Cc]ommand line: (.*)", clean_line(raw))
        if match:
            return match[2].strip()
    return ""


def check_size(path: Path, cap: int = MAX_CONSOLE_BYTES) -> None:
    """InputError for a file past the cap (before reading a byte of it)."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    if size > cap:
        raise InputError(f"cannot judge {path}: it is {size / 2**20:.0f} MiB, over the judge's "
                         f"{cap / 2**20:.0f} MiB cap (a kmatrix boot prints well under 1 MiB); "
                         "is it a console log? cut it to the boot you mean (e.g. with `tail -c`)")


def open_console(path: Path, cap: int = MAX_CONSOLE_BYTES) -> Iterator[str]:
    """The file's lines, streamed, after the size check; undecodable bytes are replaced."""
    check_size(path, cap)
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as stream:
            yield from stream
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
