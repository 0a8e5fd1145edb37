"""One Kconfig session: the only place kmatrix runs the tree's own Kconfig (config targets,
`make olddefconfig`, and the dumper compiled against the tree's lkc objects), through a Runner."""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from .. import arch as archmod
from .. import toolchains
from ..arch import Arch
from ..container import Mount, Runner, Step, StepResult
from ..kbuild import Kbuild
from ..results import atomic_write
from ..toolchains import Toolchain
from ..verdict import InfraError
from .config import Config, parse_config, render_config
from .dump import KconfigDump

DUMPER_SOURCE = Path(__file__).resolve().parent / "kconfig_dump.c"
LKC_OBJECTS = ("confdata.o", "expr.o", "lexer.lex.o", "menu.o", "parser.tab.o",
               "preprocess.o", "symbol.o", "util.o")


@dataclass
class KconfigSession:
    """One output directory in which configs are resolved and dumped, one at a time.

    `out` is ours (read-write); `tree` is mounted read-only. Every command run is kept in
    `commands` (the `docker run` line a human would rerun) and logged to `log`."""

    tree: Path
    out: Path
    runner: Runner
    log: IO[str]
    arch: Arch = field(default_factory=archmod.default)
    # Kconfig asks the compiler (CC_IS_CLANG, GCC_VERSION, AS/LD versions): the same toolchain
    # as the build, or the resolved .config is another one's
    toolchain: Toolchain = field(default_factory=toolchains.default)
    timeout_s: float = 600.0
    commands: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # the run's own make invocation (make -j, ccache, limits) when the session works in a
    # build tree
    build_kbuild: Kbuild | None = None

    @property
    def kbuild(self) -> Kbuild:
        if self.build_kbuild is not None:
            return self.build_kbuild
        return Kbuild(tree=self.tree, arch=self.arch, jobs=1, mem_bytes=2 << 30,
                      toolchain=self.toolchain)

    def _run(self, step: Step) -> list[str]:
        result = self._step(step)
        if not result.ok:
            tail = " | ".join(result.tail[-5:])
            raise InfraError(f"{step.name} failed (exit {result.exit_code}): {tail}; "
                             f"rerun: {self.commands[-1]}")
        return result.tail

    def _step(self, step: Step) -> StepResult:
        self.commands.append(self.runner.reproducer(step))
        started = time.monotonic()
        result = self.runner.run(step, self.log)
        self.timings[step.name] = self.timings.get(step.name, 0.0) + time.monotonic() - started
        return result

    def olddefconfig_step(self, config: Config, name: str = "olddefconfig"
                          ) -> tuple[Config | None, StepResult]:
        """Write `config` as OUT/.config and run the tree's `make olddefconfig`: the resolved
        config (None when make failed) and the step's result, for a stage record."""
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(self.out / ".config", render_config(config))
        result = self._step(self.kbuild.make_step(name, self.out, "olddefconfig",
                                                     timeout_s=self.timeout_s, jobs=1))
        if not result.ok:
            return None, result
        return parse_config((self.out / ".config").read_text()), result

    def config_target_step(self, target: str, name: str = "",
                           env: tuple[tuple[str, str], ...] = ()) -> tuple[Config | None, StepResult]:
        """Run a config target such as `tinyconfig` or `defconfig` in OUT; its .config. `env`
        adds variables Kconfig reads (KCONFIG_SEED, KCONFIG_ALLCONFIG for `randconfig`)."""
        self.out.mkdir(parents=True, exist_ok=True)
        step = self.kbuild.make_step(name or f"kconfig:{target}", self.out, target,
                                        timeout_s=self.timeout_s, jobs=1)
        result = self._step(replace(step, env=step.env + env) if env else step)
        if not result.ok:
            return None, result
        return parse_config((self.out / ".config").read_text()), result

    def olddefconfig(self, config: Config) -> Config:
        """Write `config` as OUT/.config, run the tree's `make olddefconfig`, return the result.

        This is the oracle: the resolved config is what any build from `config` gets."""
        resolved, result = self.olddefconfig_step(config, "kconfig:olddefconfig")
        if resolved is None:
            raise InfraError(f"olddefconfig failed (exit {result.exit_code}): "
                             f"{' | '.join(result.tail[-5:])}; rerun: {self.commands[-1]}")
        return resolved

    def config_target(self, target: str) -> Config:
        """Run a config target such as `tinyconfig` or `defconfig` in OUT; return its .config."""
        resolved, result = self.config_target_step(target)
        if resolved is None:
            raise InfraError(f"{target} failed (exit {result.exit_code}): "
                             f"{' | '.join(result.tail[-5:])}; rerun: {self.commands[-1]}")
        return resolved

    def resolved_text(self) -> str:
        return (self.out / ".config").read_text()

    def kconfig_env(self) -> tuple[tuple[str, str], ...]:
        """The environment Kconfig saw in `make`: Kconfig itself records it in auto.conf.cmd."""
        cmd = self.out / "include" / "config" / "auto.conf.cmd"
        if not cmd.exists():
            raise InfraError(f"{cmd} is missing: run olddefconfig in {self.out} first")
        pairs = re.findall(r'^ifneq "\$\(([A-Za-z0-9_]+)\)" "(.*)"$', cmd.read_text(), re.MULTILINE)
        return tuple(pairs)

    def dumper(self) -> Path:
        """OUT/kconfig_dump-HASH, compiled in the builder against this tree's lkc objects."""
        source = DUMPER_SOURCE.read_bytes()
        binary = self.out / f"kconfig_dump-{hashlib.sha256(source).hexdigest()[:12]}"
        if binary.exists():
            return binary
        objdir = self.out / "scripts" / "kconfig"
        missing = [o for o in LKC_OBJECTS if not (objdir / o).exists()]
        if missing:
            raise InfraError(f"{objdir} lacks {', '.join(missing)}: run olddefconfig first")
        src_copy = self.out / "kconfig_dump.c"
        src_copy.write_bytes(source)
        kconfig_src = self.tree / "scripts" / "kconfig"
        partial = binary.with_name(binary.name + ".partial")  # a killed link is never used
        argv = ("gcc", "-O1", "-w", "-I", str(kconfig_src), "-I", str(self.tree / "scripts" / "include"),
                "-I", str(objdir), "-o", str(partial), str(src_copy),
                *(str(objdir / o) for o in LKC_OBJECTS))
        self._run(Step("kconfig:compile-dumper", argv, self.kbuild.mounts(self.out),
                       workdir=str(self.out), timeout_s=self.timeout_s))
        partial.replace(binary)
        return binary

    def adopt_conf(self, built: Path) -> bool:
        """Take the tree's `conf`, lkc objects and fixdep (scripts/kconfig, scripts/basic) from
        `built`, an output tree whose config target ran to the end in the same image with the
        same toolchain, instead of compiling them again: make finds them up to date (their .cmd
        files hold the same command lines), and builds them as before if anything differs.
        Only into a session that has none yet; False when nothing was taken."""
        if (self.out / "scripts" / "kconfig" / "conf").exists() or \
                not (built / "scripts" / "kconfig" / "conf").is_file():
            return False
        for sub in ("scripts/basic", "scripts/kconfig"):
            shutil.copytree(built / sub, self.out / sub, symlinks=True, dirs_exist_ok=True)
        self.log.write(f"kmatrix: {self.out}: conf and the lkc objects taken from {built}\n")
        return True

    def prepare_each(self, base: Config) -> Path:
        """Make OUT ready for resolve_each: the tree's conf and lkc objects (one olddefconfig of
        `base`, which also records the environment Kconfig saw) and the dumper. A prepared OUT
        is ready as it stands: nothing is run again."""
        if not (self.out / "include" / "config" / "auto.conf.cmd").exists():
            self.olddefconfig(base)
        return self.dumper()

    def resolve_each(self, configs: list[Config], work: Path) -> list[Config | None]:
        """`make olddefconfig` of every config in one container and one Kconfig parse (the
        dumper's --each: a child per config, each from the state right after parsing, as a
        fresh `conf --olddefconfig` in the environment `make` gave Kconfig). The resolved
        configs in order; None where one was not resolved (the caller resolves it with make)."""
        return [None if text is None else parse_config(text)
                for text in self.resolve_each_text(configs, work)]

    def resolve_each_text(self, configs: list[Config], work: Path) -> list[str | None]:
        """resolve_each, as the bytes `make olddefconfig` writes to .config for each config (a
        build tree can take them as its .config instead of running make olddefconfig)."""
        binary = self.dumper()
        work.mkdir(parents=True, exist_ok=True)
        files = []
        for i, config in enumerate(configs):
            path = work / f"{i:05d}.config"
            atomic_write(path, render_config(config))
            path.with_name(path.name + ".resolved").unlink(missing_ok=True)
            files.append(path)
        if not files:
            return []
        argv = [str(binary)]
        for path in files:
            argv += ["--each", str(path)]
        env = (("srctree", str(self.tree)),
               *((k, v) for k, v in self.kconfig_env() if k != "srctree"))
        result = self._step(Step("kconfig:olddefconfig-each", (*argv, "Kconfig"),
                                 self.kbuild.mounts(self.out, Mount(work, read_only=False)),
                                 workdir=str(self.out), env=env, timeout_s=self.timeout_s))
        out: list[str | None] = []
        for path in files:
            resolved = path.with_name(path.name + ".resolved")
            out.append(resolved.read_text() if result.ok and resolved.exists() else None)
        return out

    def dump(self, config_name: str = ".config", write: str | None = None) -> KconfigDump:
        """Dump OUT/config_name as Kconfig reads it (conf_read: the same as olddefconfig)."""
        binary = self.dumper()
        argv = [str(binary), "--config", config_name]
        if write:
            argv += ["--write", write]
        argv += ["--dump", "kconfig-dump.jsonl", "Kconfig"]
        env = (("srctree", str(self.tree)),
               *((k, v) for k, v in self.kconfig_env() if k != "srctree"))
        self._run(Step("kconfig:dump", tuple(argv), self.kbuild.mounts(self.out),
                       workdir=str(self.out), env=env, timeout_s=self.timeout_s))
        return KconfigDump.from_file(self.out / "kconfig-dump.jsonl")


