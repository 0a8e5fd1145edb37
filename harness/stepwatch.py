"""Watching a running step's container: its time limit (stretched while its output still
grows, never past the hard limit), a pause from outside, an engine that stopped answering, and
the kernel's OOM killer. ``container.DockerRunner`` starts the container and removes it; this
module only waits on it and asks the engine about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .container import Step


class StepTimeout(Exception):
    """The step's limit ran out (`progressing`: at the hard limit, its output still growing;
    `paused`: the container was frozen from outside, not slow)."""

    def __init__(self, progressing: bool = False, paused: bool = False) -> None:
        super().__init__("step limit")
        self.progressing, self.paused = progressing, paused


POLL_S = 5.0


def wait_for(container: object, step: Step, start: float, client: object,
             clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """The container's exit status, or StepTimeout at its limit: `step.timeout_s`, or with
    `step.progress` that limit stretched while the watched file grows (never past hard_s)."""
    import requests.exceptions

    if step.progress is None:
        try:
            return container.wait(timeout=step.timeout_s)  # type: ignore[attr-defined]
        except requests.exceptions.RequestException as exc:
            if not read_timed_out(exc):
                raise
            raise StepTimeout(paused=is_paused(container)) from None
    watch = step.progress
    size, grew_at = -1, clock()
    while True:
        now = clock()
        left = start + watch.hard_s - now
        try:
            if left <= 0:
                raise requests.exceptions.ReadTimeout("hard limit")
            return container.wait(timeout=min(POLL_S, left))  # type: ignore[attr-defined]
        except requests.exceptions.RequestException as exc:
            if not read_timed_out(exc):
                raise
            now = clock()
            current = file_size(watch.path)
            if current != size:
                size, grew_at = current, now
            stalled = now - grew_at >= watch.stall_s
            if watch.max_bytes and current > watch.max_bytes:
                raise StepTimeout() from None  # the caller finds the file past its cap
            if now - start >= watch.hard_s:
                raise StepTimeout(progressing=not stalled, paused=is_paused(container)) from None
            if now - start >= step.timeout_s and stalled:
                raise StepTimeout(paused=is_paused(container)) from None
            if not engine_answers(client):
                raise StepTimeout() from None  # the caller names the lost engine


def read_timed_out(exc: BaseException) -> bool:
    """A wait that ran out of time. requests raises ReadTimeout when the time runs out before
    the engine's answer starts, but ConnectionError(ReadTimeoutError) when it runs out while
    the answer streams; only a refused or reset connection is a lost engine."""
    import requests.exceptions
    import urllib3.exceptions

    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args)


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def is_paused(container: object) -> bool:
    """Whether the container is frozen (`docker pause`): then no output is not the step's fault."""
    try:
        container.reload()  # type: ignore[attr-defined]
        return bool(container.attrs["State"].get("Paused"))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - unknown: not paused
        return False


def oom_killed(container: object) -> bool:
    """The container's OOMKilled state (the kernel's OOM killer hit a process in it)."""
    try:
        container.reload()  # type: ignore[attr-defined]
        return bool(container.attrs["State"].get("OOMKilled"))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - unknown: the exit status stands
        return False


def engine_answers(client: object) -> bool:
    try:
        client.ping()  # type: ignore[attr-defined]
        return True
    except Exception:  # noqa: BLE001 - any failure: the engine is not answering
        return False


def kill_quietly(container: object) -> None:
    try:
        container.kill()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - already gone is fine
        pass
