"""The container runtime a run uses: Docker (the default) or Podman serving its Docker-compatible
API (``podman system service``), both driven through the same Docker SDK.

A ``Runtime`` says where its engine listens, which command its reproducer lines start with,
what a human runs to check it and to start it. ``connect`` gives a client or one line that says
what to do (an infrastructure error, exit 3). Chosen by ``build.runtime`` in the matrix or
``kmatrix run --runtime``; recorded in run.json and every record with the engine's version.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .verdict import InfraError, InputError

DOCKER = "docker"
PODMAN = "podman"
RUNTIMES = (DOCKER, PODMAN)
PODMAN_SOCKET_ENV = "KMATRIX_PODMAN_SOCKET"  # a socket path or unix:// URL: where Podman listens
ROOT_PODMAN_SOCKET = "/run/podman/podman.sock"  # podman's own default for root
CONNECT_TIMEOUT_S = 120


@dataclass(frozen=True)
class Runtime:
    name: str  # docker | podman
    base_url: str = ""  # "": Docker's own environment ($DOCKER_HOST, else its default socket)

    @property
    def label(self) -> str:
        return "Podman" if self.name == PODMAN else "Docker"

    @property
    def cli(self) -> tuple[str, ...]:
        """The start of reproducer lines: `podman --url URL` reaches the very service the run
        used (its storage, and its containers.conf: a plain `podman run` may fail where the
        service's containers do not, see containers/podman-containers.conf)."""
        if self.name == PODMAN:
            return (PODMAN, "--url", self.base_url)
        return (self.name,)

    @property
    def check(self) -> str:
        """What a human runs to see whether the engine answers."""
        if self.name == PODMAN:
            return f"`podman --url {self.base_url} info`"
        return "`docker info`"

    @property
    def start_hint(self) -> str:
        if self.name == PODMAN:
            return (f"start it with `harness/scripts/start-podman` (it listens at "
                    f"{self.base_url}; ${PODMAN_SOCKET_ENV} names another socket)")
        return "start one with `harness/scripts/start-dockerd` (as root) or `systemctl start docker`"


def podman_url(env: Mapping[str, str] = os.environ, uid: int | None = None) -> str:
    """Where Podman's service listens: $KMATRIX_PODMAN_SOCKET, else podman's own default
    (root: /run/podman/podman.sock; a user: $XDG_RUNTIME_DIR/podman/podman.sock)."""
    given = env.get(PODMAN_SOCKET_ENV, "")
    if given:
        return given if "://" in given else f"unix://{given}"
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        return f"unix://{ROOT_PODMAN_SOCKET}"
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return f"unix://{runtime_dir}/podman/podman.sock"


def runtime(name: str | None = None, env: Mapping[str, str] = os.environ) -> Runtime:
    """The runtime called `name` (None: Docker), with where its engine listens."""
    name = name or DOCKER
    if name not in RUNTIMES:
        raise InputError(f"unknown container runtime {name!r}: use one of {', '.join(RUNTIMES)}")
    return Runtime(PODMAN, podman_url(env)) if name == PODMAN else Runtime(DOCKER)


def connect(rt: Runtime) -> object:
    """A client of `rt`'s running engine, or one line that says how to start one."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - installed with kmatrix
        raise InfraError("the Docker SDK for Python is missing: pip install docker") from exc
    try:
        if rt.base_url:
            client = docker.DockerClient(base_url=rt.base_url, timeout=CONNECT_TIMEOUT_S)
        else:
            client = docker.from_env(timeout=CONNECT_TIMEOUT_S)
        client.ping()
    except Exception as exc:  # every failure means "no usable engine"
        what = f"no {rt.label} service answers at {rt.base_url}" if rt.base_url else \
            f"no {rt.label} engine is reachable"
        raise InfraError(f"{what} ({' '.join(str(exc).split())[:160]}): {rt.start_hint}") \
            from exc
    if rt.name == PODMAN:
        check_limits(client, rt)
    return client


LIMIT_CONTROLLERS = ("memory", "pids")  # what a step's memory and pids limits need


def check_limits(client: object, rt: Runtime) -> None:
    """Podman's service must be able to enforce a step's memory and pids limits. Rootless
    Podman on a cgroup v1 host has no cgroup controllers: it runs the container and ignores
    every limit (it only prints a warning on its own terminal, and its Docker-compatible
    /info still claims MemoryLimit and PidsLimit), so kmatrix asks libpod's /info."""
    try:
        api = client.api  # type: ignore[attr-defined]
        host = api.get(f"{api.base_url}/v4.0.0/libpod/info", timeout=30).json().get("host", {})
    except Exception:  # noqa: BLE001 - an older or unusual service: its containers still run
        return
    controllers = host.get("cgroupControllers")
    if not isinstance(controllers, list):
        return
    missing = [c for c in LIMIT_CONTROLLERS if c not in controllers]
    if missing:
        rootless = "rootless " if host.get("security", {}).get("rootless") else ""
        raise InfraError(
            f"the {rootless}Podman service at {rt.base_url} cannot enforce the "
            f"{' and '.join(missing)} limits of kmatrix's containers (cgroup "
            f"{host.get('cgroupVersion', '?')}, controllers it may use: "
            f"{', '.join(controllers) or 'none'}): run Podman as root (harness/scripts/"
            "start-podman as root), or rootless on a cgroup v2 host that delegates memory and "
            "pids")


def donor(rt: Runtime) -> object | None:
    """Another engine a missing builder image can be copied from: Docker's, when it answers,
    for Podman (None for Docker, or when Docker is not there: the image is built offline)."""
    if rt.name != PODMAN:
        return None
    try:
        return connect(Runtime(DOCKER))
    except InfraError:
        return None


def engine_version(client: object) -> str:
    """The engine's name and version as it reports them, e.g. "Docker 28.2.2" or "Podman
    4.3.1" ("" when it does not say)."""
    try:
        info: dict[str, Any] = client.version()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - unknown: recorded as such
        return ""
    return describe_version(info)


def describe_version(info: Mapping[str, Any]) -> str:
    components = info.get("Components") or []
    names = [str(c.get("Name", "")) for c in components if isinstance(c, Mapping)]
    engine = "Podman" if any("Podman" in n for n in names) else "Docker"
    version = str(info.get("Version", "")).strip()
    return f"{engine} {version}" if version else ""


def runtime_argument(parser: argparse.ArgumentParser, matrix: bool = True) -> None:
    """`--runtime docker|podman` of a command (`matrix`: it overrides the matrix's build.runtime)."""
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="container runtime: docker (the default) or podman (its service at "
                        f"${PODMAN_SOCKET_ENV}, else podman's default socket)"
                        + ("; overrides build.runtime" if matrix else ""))
