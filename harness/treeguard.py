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
from typing import IO

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
