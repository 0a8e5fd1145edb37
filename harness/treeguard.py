"""Warm output trees that are never reused half-written.

A build step stopped from outside (killed at its timeout, Ctrl-C, SIGTERM, an OOM kill, a lost
engine) can leave objects written halfway with fresh timestamps; Kbuild would take them as up
to date in the next build of that tree (and in every copy of a seed). So every step that
writes into a tree marks it dirty (`.kmatrix-dirty`, holding the step's start time) before it
starts, and only a step that ended on its own (make exited, whatever its status: Kbuild
deletes the targets of a failed rule itself) removes the mark. A tree claimed with the mark
still there is repaired before use: every file written since the killed step started is
removed, and Kbuild rebuilds exactly those.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from . import results
from .container import Runner, Step, StepResult

MARK = ".kmatrix-dirty"
# File times come from the kernel's coarse clock, which lags time.time_ns() by up to a tick: a
# file the step wrote can look a few ms older than the mark. 50 ms covers that (and no step
# before it writes within 50 ms of the next one's start: each is a container start apart).
SLACK_NS = 50_000_000
KILLED_EXITS = (137, 143)  # SIGKILL, SIGTERM inside the container


def ended_on_its_own(result: StepResult) -> bool:
    return not result.timed_out and result.exit_code is not None and \
        result.exit_code not in KILLED_EXITS


def run_guarded(runner: Runner, step: Step, log: IO[str], tree: Path) -> StepResult:
    """`runner.run(step)` for a step that writes into `tree`: the tree stays marked dirty
    unless the step ended on its own (an exception leaves the mark too)."""
    mark = tree / MARK
    if not mark.exists():  # an unrepaired earlier mark keeps its (earlier) start time
        results.atomic_write(mark, f"{time.time_ns()}\n")
    result = runner.run(step, log)
    if ended_on_its_own(result):
        mark.unlink(missing_ok=True)
    return result


def condemn(tree: Path) -> None:
    """A tree found damaged (a cut-short archive or object): everything in it is suspect, so
    the next claim removes every file (a cold build, but a true one)."""
    results.atomic_write(tree / MARK, "0\n")


def dirty_since(tree: Path) -> int | None:
    """The start (ns) of the step that left the tree dirty; None for a clean tree."""
    try:
        text = (tree / MARK).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else 0  # unreadable time: everything is suspect


def repair(tree: Path, say: Callable[[str], None]) -> int:
    """Remove every file of a dirty tree written since its killed step started (never
    following a symbolic link out of the tree); returns how many. A clean tree is untouched."""
    since = dirty_since(tree)
    if since is None:
        return 0
    limit = since - SLACK_NS
    removed = 0
    for top, dirs, files in os.walk(tree, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = os.path.join(top, name)
            if name == MARK and top == str(tree):
                continue
            try:
                if os.lstat(path).st_mtime_ns >= limit:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue
    (tree / MARK).unlink(missing_ok=True)
    say(f"kmatrix: tree {tree} was left by a stopped step: removed the {removed} file(s) "
        "written since it started; Kbuild rebuilds them")
    return removed


OBJECT_SUFFIXES = (".o", ".ko", ".a")


def _elf_damage(head: bytes, size: int) -> str | None:
    """What is wrong with an ELF file of `size` bytes starting with `head` (64 bytes or
    fewer): its section header table must lie inside the file (the last thing a linker or
    assembler writes, so a file cut short loses it first)."""
    if len(head) < 52:
        return "cut short inside its ELF header"
    order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
    if head[4] == 2:  # ELFCLASS64
        if len(head) < 64:
            return "cut short inside its ELF header"
        shoff, entsize, count = (int.from_bytes(head[0x28:0x30], order),
                                 int.from_bytes(head[0x3A:0x3C], order),
                                 int.from_bytes(head[0x3C:0x3E], order))
    else:
        shoff, entsize, count = (int.from_bytes(head[0x20:0x24], order),
                                 int.from_bytes(head[0x2E:0x30], order),
                                 int.from_bytes(head[0x30:0x32], order))
    if shoff + entsize * count > size:
        return f"cut short at byte {size} (its section headers end at {shoff + entsize * count})"
    return None


def file_damage(path: Path) -> str | None:
    """A build product that is not whole: an object or module that is not a whole ELF file, an
    archive that is not a whole ar archive, an ELF host tool cut short. None if whole (or not a
    build product kmatrix can check)."""
    from .linkcheck import archive_members

    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if path.suffix == ".a":
        try:
            archive_members(path)
        except (ValueError, UnicodeDecodeError) as exc:
            return str(exc).replace(f"{path} is ", "")
        return None
    if head.startswith(b"\x7fELF"):
        return _elf_damage(head, size)
    if path.suffix in (".o", ".ko") and not head.startswith(b"BC\xc0\xde"):  # LLVM bitcode (LTO)
        return "not an ELF object" if size else "empty"
    return None


def damage(tree: Path) -> str | None:
    """The first damaged build product of a tree (objects, archives, and the host tools under
    scripts/ and tools/, which every build runs): `path: what`; None if every one is whole.
    A seed is copied into every new tree of its key, so one cut-short file there would damage
    them all; this is checked each time a run takes a seed (milliseconds: a seed holds the
    objects of `make prepare` and of the build targets, tens to a few thousand files)."""
    for top, dirs, files in os.walk(tree, followlinks=False):
        dirs.sort()
        rel_top = Path(top).relative_to(tree)
        tools = rel_top.parts[:1] in (("scripts",), ("tools",))
        for name in sorted(files):
            path = Path(top) / name
            if path.is_symlink():
                continue
            if name.endswith(OBJECT_SUFFIXES) or (tools and os.access(path, os.X_OK)):
                if (what := file_damage(path)) is not None:
                    return f"{rel_top / name}: {what}"
    return None
