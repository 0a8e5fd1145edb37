"""File locks that say who holds them: a run waiting for a tree, a seed or the kernel source
names the holder (host:pid, when it took the lock, for what) and gives up with an
infrastructure error after `max_wait_s` instead of waiting forever without a word.

The holder is written beside the lock (`NAME.lock.owner`) once the lock is taken; a lock whose
holder died is free at once (flock is released with the process), so a wait is always for a
live holder, and bounded by that holder's own step timeouts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from . import results
from .runstate import owner_id
from .verdict import InfraError

DEFAULT_MAX_WAIT_S = 4 * 3600.0  # longer than any build and boot timeout kmatrix sets
SAY_EVERY_S = 300.0


def holder(lock: Path) -> str:
    try:
        return (lock.parent / f"{lock.name}.owner").read_text().strip() or "unknown"
    except OSError:
        return "unknown (no owner file)"


@contextlib.contextmanager
def held(lock: Path, what: str, say: Callable[[str], None],
         max_wait_s: float = DEFAULT_MAX_WAIT_S, poll_s: float = SAY_EVERY_S) -> Iterator[None]:
    """Hold `lock` for `what`; while another process holds it, say so at once and every
    `poll_s`, and raise InfraError once `max_wait_s` have passed."""
    flock = FileLock(str(lock))
    start = time.monotonic()
    try:
        flock.acquire(timeout=0)
    except Timeout:
        while True:
            waited = time.monotonic() - start
            if waited >= max_wait_s:
                raise InfraError(f"waited {waited:.0f} s for {what}, still held by "
                                 f"{holder(lock)}: stop that run or wait for it, then rerun"
                                 ) from None
            say(f"kmatrix: waiting for {what}: held by {holder(lock)}")
            try:
                flock.acquire(timeout=min(poll_s, max_wait_s - waited))
                break
            except Timeout:
                continue
    try:
        with contextlib.suppress(OSError):
            results.atomic_write(lock.parent / f"{lock.name}.owner",
                                 f"{owner_id()} since {results.now()} ({what})\n")
        yield
    finally:
        flock.release()
