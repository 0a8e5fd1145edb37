"""The run's core budget: how many make jobs a build step gets, so that no core idles while any
build is queued or running.

`make -j` is fixed when a build starts and a container's CPU share with it, so a build cannot
grow when the others end. A build expected to outlive the others (a bootable kernel: minutes,
against seconds for an object-tier combination) therefore starts with every core (`make -jN`,
`--cpus N`) and shares them with the short builds through the kernel's scheduler while those
run; each short build takes the cores nobody else reserves, at least one. When the object tier
is done, the long build already has every core; when only short builds are left, each takes
what is free. (One jobserver shared by every build would do the same job per compile, but a
make 4.3 jobserver is a pipe that cannot cross container boundaries; make 4.4's FIFO one could.)

The claims of the running steps are a small JSON file in the run directory, changed under a file
lock by every worker (pytest-xdist processes). A claim of a process that died is ignored.
`jobs_for` is the whole policy, a pure function.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from . import results
from .runstate import owner_alive, owner_id

BUDGET_FILE = "cores.json"
# The CPU weight of a long build, of the run's own seed and of a boot (cgroup cpu shares,
# against the default 1024 of every other step): the bootable kernel is the run's critical
# path (its tree's boots wait for it, and it waits for the seed), so it takes the cores
# whenever it can use them and the short builds fill the rest (make's serial phases, the
# link). A boot gets the same weight: a guest starved of its core would only run slower
# against its limits. More weight is not faster, nor are more make jobs (docs/speed.md: at 16x
# the kernel built in 184 s instead of 188 s and the object tier it starved became a tail of
# a minute; at -j3 it took 202 s, the weight, not the job count, deciding its share).
LONG_SHARES = 4096


@dataclass(frozen=True)
class Claim:
    """One running step: the make jobs it runs and the cores it counts as its own."""

    owner: str  # host:pid of the worker
    jobs: int
    reserves: int
    long: bool = False


def jobs_for(cores: int, workers: int, others: list[Claim], long: bool,
             queued: int | None = None) -> Claim:
    """The jobs and the reserved cores of a step that starts now, beside `others` (the steps
    running), with `queued` combinations not started yet (None: unknown, plenty).

    A long step takes every core (it will be alone at the end) but reserves only its fair
    share while others run. A short step shares the cores the others do not reserve with the
    workers that will start one too (no more of them than there are queued combinations), at
    least one."""
    cores, workers = max(1, cores), max(1, workers)
    if long:
        return Claim(owner_id(), cores, max(1, cores // workers), True)
    free = cores - sum(c.reserves for c in others)
    idle = max(1, workers - len(others))
    sharing = idle if queued is None else max(1, min(idle, 1 + queued))
    jobs = max(1, free // sharing)
    return Claim(owner_id(), jobs, jobs, False)


@dataclass
class CoreBudget:
    """The claims of one run's running steps (run_dir/cores.json)."""

    run_dir: Path
    cores: int
    workers: int

    @property
    def path(self) -> Path:
        return self.run_dir / BUDGET_FILE

    def _lock(self) -> FileLock:
        return FileLock(str(self.run_dir / f"{BUDGET_FILE}.lock"))

    def _read(self) -> tuple[list[Claim], int | None]:
        try:
            data = json.loads(self.path.read_text())
            claims = [Claim(**c) for c in data.get("claims", [])]
            queued = data.get("queued")
        except (OSError, ValueError, TypeError, AttributeError):
            return [], None  # none yet, or damaged: nobody is counted (at worst a core is shared)
        return [c for c in claims if owner_alive(c.owner)], \
            queued if isinstance(queued, int) else None

    def _write(self, claims: list[Claim], queued: int | None) -> None:
        results.atomic_write(self.path, json.dumps({"claims": [asdict(c) for c in claims],
                                                    "queued": queued}))

    def set_queued(self, queued: int) -> None:
        """The controlling process says how many combinations have not started yet."""
        with self._lock():
            claims, _ = self._read()
            self._write(claims, max(0, queued))

    @contextlib.contextmanager
    def claim(self, long: bool) -> Iterator[Claim]:
        """Claim cores for one build step for as long as it runs; the claim says its make jobs."""
        with self._held(lambda others, queued: jobs_for(self.cores, self.workers, others, long,
                                                        queued)) as mine:
            yield mine

    @contextlib.contextmanager
    def hold(self, cores: int) -> Iterator[Claim]:
        """Hold a fixed number of cores for a step whose size does not change: a QEMU boot is
        one vCPU (`-smp 1`, `--cpus 1`), and a build that starts while it runs counts that core
        as taken instead of starting one make job too many."""
        with self._held(lambda _others, _queued: Claim(owner_id(), cores, cores)) as mine:
            yield mine

    @contextlib.contextmanager
    def _held(self, choose: Callable[[list[Claim], int | None], Claim]) -> Iterator[Claim]:
        with self._lock():
            claims, queued = self._read()
            others = [c for c in claims if c.owner != owner_id()]
            mine = choose(others, queued)
            self._write([*others, mine], queued)
        try:
            yield mine
        finally:
            with self._lock():
                claims, queued = self._read()
                self._write([c for c in claims if c.owner != mine.owner], queued)
