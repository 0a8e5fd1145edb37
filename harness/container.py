"""Run one build or boot step in the builder container, through the Docker SDK (Docker's
engine, or Podman's Docker-compatible service: harness/runtime.py).

This is the narrow interface between kmatrix's logic and the outside world: the rest of the
code describes a ``Step`` (an argument list, mounts, limits) and gets a ``StepResult``. Unit tests
use a fake runner; ``DockerRunner`` is the real one. Nothing here builds a shell string.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from .ownership import hand_over, step_ids
from .runstate import owner_alive, owner_id
from .runtime import Runtime
from .runtime import connect as connect_runtime
from .runtime import runtime as runtime_named
from .stepwatch import StepTimeout, engine_answers, kill_quietly, oom_killed, wait_for
from .verdict import InfraError

LABEL = "org.kmatrix.step"
WORKDIR_LABEL = "org.kmatrix.workdir"
RUN_LABEL = "org.kmatrix.run"  # the run id (empty outside a run: bisect trials, image probes)
OWNER_LABEL = "org.kmatrix.owner"  # host:pid of the process that started the container


@dataclass(frozen=True)
class Mount:
    """A host directory visible in the container, at the same path unless `target` is given
    (the logged `docker run` line carries both, so it reruns as it stands)."""

    path: Path
    read_only: bool = True
    target: Path | None = None

    @property
    def inside(self) -> Path:
        return self.target or self.path


@dataclass(frozen=True)
class Progress:
    """A limit that follows progress (a boot's console): past the step's `timeout_s` the step
    goes on while `path` keeps growing, up to `hard_s`; it is stopped once `path` has not grown
    for `stall_s`, and at once when `path` passes `max_bytes` (0: no cap; a console flood)."""

    path: Path
    hard_s: float
    stall_s: float = 60.0
    max_bytes: int = 0


@dataclass(frozen=True)
class Step:
    """One command in the builder container: what a human would rerun by hand."""

    name: str
    argv: tuple[str, ...]
    mounts: tuple[Mount, ...]
    workdir: str = "/"
    env: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 3600.0
    cpus: float = 1.0
    mem_bytes: int = 4 << 30
    # its CPU weight against the run's other steps (cgroup shares; 0: the engine's default,
    # 1024): the critical path's build gets more, so the others fill the cores it leaves idle
    cpu_shares: int = 0
    devices: tuple[str, ...] = ()  # e.g. ("/dev/kvm",) for a boot that passed the KVM probe
    progress: Progress | None = None  # a soft limit (timeout_s) that output can extend


@dataclass
class StepResult:
    name: str
    argv: tuple[str, ...]
    exit_code: int | None  # None when the step was killed at its timeout
    duration_s: float
    timed_out: bool = False
    tail: list[str] = field(default_factory=list)  # last lines of output, for reports
    command: str = ""  # the rerunnable command line, as logged
    progressing: bool = False  # stopped at its hard limit while its output still grew

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Runner(Protocol):
    """What the pipeline needs from a container engine."""

    def run(self, step: Step, log: IO[str]) -> StepResult: ...

    def reproducer(self, step: Step) -> str: ...

    def image_id(self) -> str: ...


PIDS_LIMIT = 4096  # a -j2 kernel build uses well under 300 tasks; a fork bomb stops here
TMPFS = {"/tmp": "rw,nosuid,nodev,size=1g,mode=1777"}  # writable besides the step's mounts
HOME = "/tmp"  # the root filesystem is read-only: tools that write under $HOME go to tmpfs


def user_spec() -> str:
    """The uid:gid every step runs as: the invoking user's, never root (harness/ownership.py)."""
    return step_ids().spec


def device_groups(step: Step) -> list[int]:
    """The groups that own the step's devices (/dev/kvm: kvm), so an unprivileged uid can
    open them as the invoking user could."""
    groups = []
    for dev in step.devices:
        try:
            gid = os.stat(dev).st_gid
        except OSError:
            continue  # Docker says what is missing when it starts the step
        if gid != 0 and gid not in groups:
            groups.append(gid)
    return groups


def hand_over_mounts(step: Step, log: IO[str]) -> None:
    """Give the step's writable mounts to the uid it runs as (only when kmatrix is root)."""
    ids = step_ids()
    for m in step.mounts:
        if m.read_only:
            continue
        try:
            changed = hand_over(m.path, ids)
        except OSError as exc:
            raise InfraError(f"could not hand {m.path} to uid {ids.uid} for step {step.name} "
                             f"({one_line(exc)[:120]}): check the directory and rerun") from exc
        if changed:
            write_log(log, f"kmatrix: {m.path}: {changed} entries handed to uid {ids.uid}, "
                      "which steps run as\n")


def host_workdir(step: Step) -> str:
    """The host directory behind the step's working directory (labels containers by it)."""
    for m in step.mounts:
        if str(m.inside) == step.workdir:
            return str(m.path)
    return step.workdir


def cpu_limit(step: Step) -> float:
    """The step's CPU limit (`--cpus`), at most the cores here: the engine refuses more ("Range
    of CPUs is from 0.01 to N"), which `--workers`/`--jobs` with `--oversubscribe` asked for."""
    return min(step.cpus, float(os.cpu_count() or 1))


def docker_run_line(image: str, step: Step, cli: tuple[str, ...] = ("docker",)) -> str:
    """The equivalent `docker run` (or `podman --url URL run`) command line, for logs and
    reproducers (display only): the same flags under both runtimes."""
    args = [*cli, "run", "--rm", "--network", "none", "--user", user_spec(),
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--init",
            "--read-only", "--pids-limit", str(PIDS_LIMIT),
            "--cpus", f"{cpu_limit(step):g}", "--memory", str(step.mem_bytes),
            "--memory-swap", str(step.mem_bytes)]
    if step.cpu_shares:
        args += ["--cpu-shares", str(step.cpu_shares)]
    for path, opts in TMPFS.items():
        args += ["--tmpfs", f"{path}:{opts}"]
    for m in step.mounts:
        args += ["-v", f"{m.path}:{m.inside}:{'ro' if m.read_only else 'rw'}"]
    for dev in step.devices:
        args += ["--device", dev]
    for gid in device_groups(step):
        args += ["--group-add", str(gid)]
    args += ["-e", f"HOME={HOME}"]
    for k, v in step.env:
        args += ["-e", f"{k}={v}"]
    args += ["-w", step.workdir, image, *step.argv]
    return shlex.join(args)


class TailBuffer:
    def __init__(self, keep: int = 40) -> None:
        self.keep = keep
        self.lines: list[str] = []
        self._partial = ""

    def feed(self, text: str) -> None:
        text = self._partial + text
        *complete, self._partial = text.split("\n")
        self.lines.extend(complete)
        del self.lines[: -self.keep]

    def result(self) -> list[str]:
        return (self.lines + ([self._partial] if self._partial else []))[-self.keep:]


def write_log(log: IO[str], text: str) -> None:
    try:
        log.write(text)
        log.flush()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InfraError(f"disk full while writing {getattr(log, 'name', 'a log')}: "
                             "free some space and rerun") from exc
        raise


class DockerRunner:
    """Runs steps in throwaway containers of the builder image: no network, no capabilities,
    the invoking uid:gid (an unprivileged one when that is root), a read-only root filesystem
    (writable: the step's mounts and a tmpfs /tmp), an init, CPU, memory (no swap) and pids
    limits, a wall-clock timeout, output streamed to the log. The same calls drive Podman's
    Docker-compatible service."""

    def __init__(self, image: str, client: object | None = None, run_id: str = "",
                 runtime: Runtime | None = None) -> None:
        self.image = image
        self.run_id = run_id
        self.runtime = runtime or runtime_named()
        self._client = client if client is not None else connect(self.runtime)

    def image_id(self) -> str:
        import requests.exceptions

        try:
            return self._client.images.get(self.image).id  # type: ignore[attr-defined]
        except requests.exceptions.RequestException as exc:
            raise InfraError(f"the {self.runtime.label} engine did not answer "
                             f"({one_line(exc)[:160]}): check {self.runtime.check} and rerun") \
                from exc

    def reproducer(self, step: Step) -> str:
        return docker_run_line(self.image, step, self.runtime.cli)

    def run(self, step: Step, log: IO[str]) -> StepResult:
        import docker.errors
        import requests.exceptions

        engine, check = self.runtime.label, self.runtime.check
        write_log(log, f"\n$ {self.reproducer(step)}\n")
        hand_over_mounts(step, log)
        start, container = time.monotonic(), None
        try:  # created, then started: one made but not started is removed below, not by a reap
            container = self._client.containers.create(  # type: ignore[attr-defined]
                self.image, command=list(step.argv),
                user=user_spec(), network_mode="none", network_disabled=True,
                cap_drop=["ALL"], security_opt=["no-new-privileges"],
                init=True, read_only=True, tmpfs=dict(TMPFS), pids_limit=PIDS_LIMIT,
                volumes={str(m.path): {"bind": str(m.inside), "mode": "ro" if m.read_only else "rw"}
                         for m in step.mounts},
                devices=[f"{d}:{d}:rwm" for d in step.devices],
                group_add=[str(g) for g in device_groups(step)],
                working_dir=step.workdir, environment={"HOME": HOME, **dict(step.env)},
                nano_cpus=int(cpu_limit(step) * 1e9), cpu_shares=step.cpu_shares or None,
                mem_limit=step.mem_bytes, memswap_limit=step.mem_bytes,  # no swap beyond it
                labels={LABEL: step.name, WORKDIR_LABEL: host_workdir(step),
                        RUN_LABEL: self.run_id, OWNER_LABEL: owner_id()},
            )
            container.start()
        except docker.errors.ImageNotFound as exc:
            raise InfraError(f"builder image {self.image} is missing: run `kmatrix image` "
                             "to build it") from exc
        except BaseException as exc:
            if container is not None:  # made but not started (or Ctrl-C): removed now
                with contextlib.suppress(Exception):  # the engine may be gone too
                    container.remove(force=True)
            if isinstance(exc, docker.errors.APIError):  # the engine answered: its reason
                raise InfraError(f"{engine} could not start step {step.name}: "
                                 f"{one_line(exc.explanation or exc)[:240]}") from exc
            if isinstance(exc, (docker.errors.DockerException, requests.exceptions.RequestException)):
                raise InfraError(f"{engine} could not start step {step.name} (is the engine "
                                 f"running? {check}): {one_line(exc)[:200]}") from exc
            raise

        tail = TailBuffer()
        failure: list[BaseException] = []

        def pump() -> None:
            try:
                for chunk in container.logs(stream=True, follow=True):
                    text = chunk.decode("utf-8", errors="replace")
                    tail.feed(text)
                    write_log(log, text)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = progressing = False
        exit_code: int | None = None
        lost: BaseException | None = None
        oom = False
        try:
            try:
                status = wait_for(container, step, start, self._client)
                exit_code = int(status.get("StatusCode", -1))
                if exit_code != 0:
                    oom = oom_killed(container)
            except StepTimeout as limit:
                # the step's time ran out, unless the engine itself stopped answering
                timed_out, progressing = True, limit.progressing
                kill_quietly(container)
                if not engine_answers(self._client):
                    lost = InfraError(f"the {engine} engine stopped answering during step "
                                      f"{step.name}: check {check} and rerun")
                elif limit.paused:
                    lost = InfraError(f"step {step.name} was paused from outside "
                                      f"({self.runtime.name} pause) until its time ran out: "
                                      "unpause it and rerun")
            except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
                # refused, reset, or an answer cut short (ChunkedEncodingError): the engine
                kill_quietly(container)
                lost = exc
        except BaseException:
            kill_quietly(container)  # Ctrl-C: never leave a running container behind
            raise
        finally:
            reader.join(timeout=10)
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - gone already, or the engine is gone
                pass
        if lost is not None:
            write_log(log, f"\nkmatrix: step {step.name}: lost the {engine} engine: "
                      f"{one_line(lost)}\n")
            if isinstance(lost, InfraError):
                raise lost
            raise InfraError(f"lost the connection to the {engine} engine during step {step.name} "
                             f"({one_line(lost)[:160]}): check {check} and rerun") from lost
        if failure and isinstance(failure[0], InfraError):
            raise failure[0]
        duration = time.monotonic() - start
        if oom:
            write_log(log, f"\nkmatrix: step {step.name} was killed for memory (OOMKilled, "
                      f"exit {exit_code}, limit {step.mem_bytes >> 20} MiB)\n")
            raise InfraError(f"out of memory: step {step.name} was OOM-killed at its "
                             f"{step.mem_bytes >> 20} MiB limit (exit {exit_code}): lower "
                             "--workers or free memory, and rerun")
        if timed_out:
            write_log(log, f"\nkmatrix: step {step.name} killed after {step.timeout_s:g} s\n")
        else:
            write_log(log, f"\nkmatrix: step {step.name} exited {exit_code} after {duration:.1f} s\n")
        return StepResult(step.name, step.argv, exit_code, duration, timed_out, tail.result(),
                          self.reproducer(step), progressing)


def one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split())


def connect(runtime: Runtime | None = None) -> object:
    """A client of the runtime's running engine (default: Docker), or one line that says how
    to start one."""
    return connect_runtime(runtime or runtime_named())


def make_runner(image: str, client: object | None = None, run_id: str = "",
                runtime: Runtime | None = None) -> DockerRunner:
    """The runner of one builder image: every part of kmatrix makes its runner here."""
    return DockerRunner(image, client, run_id, runtime)


def reap_run(run_id: str, runtime: Runtime | None = None) -> list[str]:
    """`reap` for a run that has ended, with its own connection (none: nothing to remove)."""
    try:
        client = connect(runtime)
    except InfraError:
        return []
    return reap(client, run_id)


def reap(client: object, run_id: str = "") -> list[str]:
    """Remove kmatrix's containers that nobody will wait for: those of `run_id` (a run that
    ended, however it ended) and those whose owner process on this host is gone (a run or a
    worker killed with SIGKILL: its make could otherwise go on writing into a warm tree that
    another run has since claimed). Returns the names removed; an engine that does not answer
    removes nothing."""
    try:
        containers = client.containers.list(  # type: ignore[attr-defined]
            all=True, filters={"label": OWNER_LABEL})
    except Exception:  # noqa: BLE001 - no engine: nothing can be running in it
        return []
    removed = []
    for container in containers:
        labels = container.labels or {}
        mine = bool(run_id) and labels.get(RUN_LABEL) == run_id
        if mine or not owner_alive(labels.get(OWNER_LABEL, "")):
            try:
                container.remove(force=True)
                removed.append(f"{labels.get(LABEL, '?')} ({container.short_id})")
            except Exception:  # noqa: BLE001 - removed meanwhile
                pass
    return removed
