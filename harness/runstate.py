"""Whether a run directory holds a finished run: state.json, written at its start and its end.

A run is `running` from the moment its directory exists (results/latest points at it at once,
so a run killed with SIGKILL is what `kmatrix summary` shows, not the run before it), then
`complete` or `interrupted` (Ctrl-C, SIGTERM) or `failed` (an error before any combination
ran). A `running` run whose owner process is gone was killed: reports say so, and it is never
taken as a finished run to compare with.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

from . import results

STATE_FILE = "state.json"
RUNNING, COMPLETE, INTERRUPTED, FAILED, KILLED = (
    "running", "complete", "interrupted", "failed", "killed")


def owner_id() -> str:
    """This process, as container labels and state.json name it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the host:pid owner still runs; an owner on another host counts as alive (it
    cannot be checked from here)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


@dataclass
class RunState:
    state: str
    owner: str
    started: str = field(default_factory=results.now)
    finished: str = ""
    expected: list[str] = field(default_factory=list)  # the combinations pytest selected

    @property
    def effective(self) -> str:
        """The state, with a `running` run whose owner is gone shown as `killed`."""
        if self.state == RUNNING and not owner_alive(self.owner):
            return KILLED
        return self.state

    @property
    def finished_ok(self) -> bool:
        return self.state == COMPLETE


def load(run_dir: Path) -> RunState | None:
    """The run's state; None for a run directory written before kmatrix kept one (or one
    whose state file is unreadable: treated as unknown, never as complete)."""
    try:
        data = json.loads((run_dir / STATE_FILE).read_text())
        known = set(RunState.__dataclass_fields__)
        return RunState(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        return None


def save(run_dir: Path, state: RunState) -> None:
    results.atomic_write(run_dir / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")


def begin(run_dir: Path) -> RunState:
    state = RunState(RUNNING, owner_id())
    save(run_dir, state)
    return state


def set_expected(run_dir: Path, expected: list[str]) -> None:
    state = load(run_dir) or RunState(RUNNING, owner_id())
    state.expected = list(expected)
    save(run_dir, state)


def end(run_dir: Path, how: str) -> None:
    state = load(run_dir) or RunState(RUNNING, owner_id())
    state.state, state.finished = how, results.now()
    save(run_dir, state)


def is_finished_run(run_dir: Path) -> bool:
    """A run to compare with: complete, or written before state files existed."""
    state = load(run_dir)
    return state is None or state.finished_ok


def incomplete_reason(run_dir: Path) -> str:
    """One line for a run that did not finish, empty for a finished (or older) one."""
    state = load(run_dir)
    if state is None or state.finished_ok:
        return ""
    how = state.effective
    if how == RUNNING:
        return f"run {run_dir.name} is still running ({state.owner})"
    if how == KILLED:
        return (f"run {run_dir.name} was killed before it finished (its process {state.owner} "
                "is gone): rerun it")
    return f"run {run_dir.name} did not finish ({how}): rerun it"


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (what CI systems and `kill` send) takes the Ctrl-C path: steps stop, their
    containers are removed, unfinished records are marked and the reports written."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """While the reports of a stopped run are written: SIGTERM and Ctrl-C are held back until
    they are on disk (a half-written report is worse than a second's delay)."""
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    try:
        previous = {s: signal.signal(s, hold) for s in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt(f"signal {received[0]}")


def install_terminate_as_interrupt() -> None:
    """The same for a pytest-xdist worker process, for its whole life."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, _raise_interrupt)
