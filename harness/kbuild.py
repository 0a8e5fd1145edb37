"""Kbuild steps as data: the exact `make` command lines for each stage, and reading their logs.

Every step is an argument list run in the builder container with the tree mounted read-only at
its own path and the output directory read-write at its own path, so a logged command can be
rerun by hand as it stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import toolchains
from .arch import Arch
from .container import Mount, Step
from .toolchains import Toolchain

OUT_INSIDE = Path("/kmatrix/out")

# Kbuild asks `whoami` and the clock; fixing them keeps builds quiet and reproducible.
BUILD_ENV = (("KBUILD_BUILD_USER", "kmatrix"), ("KBUILD_BUILD_HOST", "kmatrix"),
             ("KBUILD_BUILD_TIMESTAMP", "1970-01-01"), ("HOME", "/tmp"))


@dataclass(frozen=True)
class Kbuild:
    """How make is invoked for one tree, architecture and toolchain."""

    tree: Path
    arch: Arch
    jobs: int = 1
    cpus: float = 1.0
    mem_bytes: int = 4 << 30
    ccache_dir: Path | None = None  # shared compiler cache, when enabled
    # Mount every output tree at one path in the container. Some build products record their
    # absolute output path (objtool does), so a tree copied from the seed to a new host path
    # would rebuild them; at one fixed path inside, copies stay warm.
    fixed_out: bool = False
    toolchain: Toolchain = field(default_factory=toolchains.default)
    cpu_shares: int = 0  # the build's CPU weight (harness/cores.py); 0: the engine's default

    def out_inside(self, out: Path) -> Path:
        return OUT_INSIDE if self.fixed_out else out

    def make_argv(self, out: Path, *targets: str, jobs: int | None = None) -> tuple[str, ...]:
        argv = ["make", "-C", str(self.tree), f"O={self.out_inside(out)}", f"ARCH={self.arch.make_arch}",
                f"-j{jobs or self.jobs}"]
        argv += self.toolchain.make_vars(self.arch, ccache=self.ccache_dir is not None)
        return (*argv, *targets)

    def mounts(self, out: Path, *extra: Mount) -> tuple[Mount, ...]:
        mounts = [Mount(self.tree, read_only=True),
                  Mount(out, read_only=False, target=OUT_INSIDE if self.fixed_out else None),
                  *extra]
        if self.ccache_dir is not None:
            mounts.append(Mount(self.ccache_dir, read_only=False))
        return tuple(mounts)

    def env(self) -> tuple[tuple[str, str], ...]:
        """The step's environment. With ccache: its directory, paths hashed relative to /
        (trees in other places share entries), and depend mode: ccache takes the included
        files from the compiler's own dependency file (kbuild's -Wp,-MMD) instead of running
        the preprocessor once more for every compile, which cost a cold kernel build half
        again its compiler time (docs/speed.md); it then hits only on identical sources,
        headers and config, as a rebuilt tree, a pristine run or a bisect step needs."""
        env: tuple[tuple[str, str], ...] = BUILD_ENV
        if self.ccache_dir is not None:
            env += (("CCACHE_DIR", str(self.ccache_dir)), ("CCACHE_BASEDIR", "/"),
                    ("CCACHE_NOHASHDIR", "1"), ("CCACHE_DEPEND", "1"))
        return env

    def make_step(self, name: str, out: Path, *targets: str, timeout_s: float,
                  jobs: int | None = None) -> Step:
        return Step(name=name, argv=self.make_argv(out, *targets, jobs=jobs),
                    mounts=self.mounts(out), workdir=str(self.out_inside(out)), env=self.env(),
                    timeout_s=timeout_s, cpus=self.cpus, mem_bytes=self.mem_bytes,
                    cpu_shares=self.cpu_shares)


_ERROR_RE = re.compile(r"(\berror:|\*\*\* |undefined reference|Error \d+|fatal error)")
_NOISE_RE = re.compile(r"^make(\[\d+\])?: \*\*\* .*Error \d+")


def step_output(log_lines: list[str]) -> list[str]:
    """The output of the last step in a log: the lines after its `$ command` line."""
    starts = [i for i, ln in enumerate(log_lines) if ln.startswith("$ ")]
    body = log_lines[starts[-1] + 1:] if starts else log_lines
    return [ln for ln in body if not ln.startswith("kmatrix: ")]


def first_errors(lines: list[str], limit: int = 5) -> list[str]:
    """The compiler's first error lines, not make's echo of them further down."""
    errors = [ln.strip() for ln in lines if _ERROR_RE.search(ln) and not _NOISE_RE.match(ln.strip())]
    if not errors:
        errors = [ln.strip() for ln in lines if _NOISE_RE.match(ln.strip())]
    return errors[:limit]


NO_SPACE_RE = re.compile(r"No space left on device")
# make names the signal that stopped it: `make[1]: *** [Makefile:236: __sub-make] Terminated`.
# No compile error ends that way; an engine stop or restart, `docker stop` or a kill does.
SIGNALLED_RE = re.compile(r"^make(\[\d+\])?: \*\*\* .*\] (Terminated|Killed|Interrupt|Hangup)$")


DAMAGED_RE = re.compile(r"file truncated|malformed archive|archive has no index|"
                        r"file format not recognized")


def damaged_tree(lines: list[str]) -> str | None:
    """A build that failed on a damaged output tree (an object or archive cut short by a kill
    or a full disk before kmatrix marked trees), not on the kernel's code."""
    for line in lines:
        if DAMAGED_RE.search(line):
            return (f"the output tree is damaged ({line.strip()[:160]}): it is emptied for a "
                    "clean build; rerun")
    return None


def infra_trouble(lines: list[str]) -> str | None:
    """A build failure that is the machine's fault, not the kernel's."""
    for line in lines:
        if NO_SPACE_RE.search(line):
            return "disk full during the build: free some space and rerun"
        if "Killed signal terminated program" in line or "virtual memory exhausted" in line:
            return "the compiler was killed (out of memory): lower --jobs or raise the memory limit"
        if found := SIGNALLED_RE.match(line.strip()):
            return (f"make was stopped from outside ({found.group(2)}: the Docker engine "
                    "stopped or restarted, or the build container was stopped or killed): rerun")
    return None
