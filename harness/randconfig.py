"""`kmatrix run --randconfig N --seed S`: N random configs of the tree, each made by the tree's
own `make randconfig` with `KCONFIG_SEED` (recorded with the config, so it reproduces) and
`KCONFIG_ALLCONFIG` holding the matrix's fixed values, then checked like any combination
(config truth, build, link check). A random config that fails is reduced with the config bisect
(`harness/bisect/oracle.py`) against the matrix's base + fixed values, to the options that
matter, and reported that way.

Two scopes (`--randconfig-over`):
- `tree` (the default): everything the matrix does not fix is random, as the 0-day robot does;
- `axes`: only the matrix's axes (and what they make visible) are random, every other option
  keeps its base value: random sampling of the same option space a covering array samples.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import kconfig, results
from .container import Runner
from .kconfig import Config
from .kconfig.session import KconfigSession
from .matrix import Combination, Matrix
from .verdict import InfraError, InputError, Verdict

SCOPES = ("tree", "axes")
RANDCONFIG_JSON = "randconfig.json"
ALLCONFIG = "kmatrix.allconfig"
GOOD_CONFIG = "randconfig-good.config"  # base + fixed values, resolved: the bisects' good side
Say = Callable[[str], None]


@dataclass(frozen=True)
class RandomSpec:
    count: int
    seed: int = 0
    over: str = "tree"  # tree | axes

    def seeds(self) -> list[int]:
        """One KCONFIG_SEED per config: S, S+1, ... (32 bits, as Kconfig reads it)."""
        return [(self.seed + i) & 0xFFFFFFFF for i in range(self.count)]


def check_spec(count: int, seed: int, over: str) -> RandomSpec:
    if count < 1:
        raise InputError("--randconfig takes a number of random configs, 1 or more")
    if not 0 <= seed <= 0xFFFFFFFF:
        raise InputError("--seed takes a whole number from 0 to 4294967295 (KCONFIG_SEED)")
    if over not in SCOPES:
        raise InputError(f"--randconfig-over takes {' or '.join(SCOPES)}")
    return RandomSpec(count, seed, over)


def spec_from_args(args: argparse.Namespace) -> RandomSpec | None:
    """`kmatrix run --randconfig N --seed S --randconfig-over SCOPE`, checked (None without)."""
    if args.randconfig is None:
        return None
    if args.resume is not None or args.shard:
        raise InputError("--randconfig makes its own combinations: drop --resume and --shard")
    return check_spec(args.randconfig, args.seed, args.randconfig_over)


def allconfig(base: Config, fixed: Config, free: list[str], over: str) -> Config:
    """What KCONFIG_ALLCONFIG holds: the matrix's fixed values (fragments, common values);
    with `axes`, every base value too, except the axes (which stay random)."""
    if over == "tree":
        return dict(fixed)
    return {k: v for k, v in kconfig.merge(base, fixed).items() if k not in set(free)}


def random_config(session: KconfigSession, values: Config, seed: int) -> Config:
    """`make randconfig` with KCONFIG_SEED=seed and KCONFIG_ALLCONFIG=values: its .config."""
    path = session.out / ALLCONFIG
    session.out.mkdir(parents=True, exist_ok=True)
    results.atomic_write(path, kconfig.render_config(values))
    env = (("KCONFIG_SEED", f"0x{seed:08X}"), ("KCONFIG_ALLCONFIG", str(path)))
    resolved, result = session.config_target_step("randconfig", f"kconfig:randconfig-{seed:08x}",
                                                  env=env)
    if resolved is None:
        raise InfraError(f"make randconfig failed (exit {result.exit_code}): "
                         f"{' | '.join(result.tail[-3:])}; rerun: {session.commands[-1]}")
    return resolved


def random_values(base: Config, rand: Config) -> Config:
    """What a random config asks of Kconfig on top of the base: the values that differ, and
    every value of a symbol the base does not write at all. (An `n` there matters: a symbol
    the base never showed, like CRYPTO_MANAGER_DISABLE_TESTS under CRYPTO=n, has its own
    default, often y; left out, olddefconfig would give it that default.)"""
    from .resolve import delta_from

    return dict(sorted({**delta_from(base, rand),
                        **{k: v for k, v in rand.items() if k not in base}}.items()))


def combo_id(index: int, seed: int) -> str:
    return f"randconfig-{index + 1:02d}-seed-{seed:08x}"


def make_random(tree: Path, matrix: Matrix, runner: Runner, base: Config, fixed: Config,
                spec: RandomSpec, scratch: Path, run_dir: Path, log: IO[str],
                say: Say | None = None) -> list[Combination]:
    """N random configs as combinations (their values: what differs from the base), the
    matrix's combinations replaced by them; randconfig.json records each seed."""
    from .resolve import delta_from

    session = KconfigSession(tree, scratch / "randconfig", runner, log, arch=matrix.arch,
                             toolchain=matrix.toolchain)
    free = [a.symbol for a in matrix.axes]
    if spec.over == "axes" and not free:
        raise InputError(f"{matrix.path}: --randconfig-over axes needs axes in the matrix")
    values = allconfig(base, fixed, free, spec.over)
    results.atomic_write(run_dir / ALLCONFIG, kconfig.render_config(values))
    good = session.olddefconfig(kconfig.merge(base, fixed))
    results.atomic_write(run_dir / GOOD_CONFIG, kconfig.render_config(good))
    combos, record = [], []
    for i, seed in enumerate(spec.seeds()):
        made = random_config(session, values, seed)
        command = session.commands[-1]
        # what a build of it uses: `make` settles a randconfig .config as olddefconfig does,
        # and a randconfig .config is not always settled already (then asking for its values
        # would find some "dropped" that Kconfig itself changed)
        rand = session.olddefconfig(made)
        cid = combo_id(i, seed)
        combos.append(Combination(cid, tuple(random_values(base, rand).items()), 0))
        record.append({"id": cid, "seed": f"0x{seed:08X}", "config_hash": kconfig.config_hash(rand),
                       "reproduce": f"KCONFIG_SEED=0x{seed:08X} KCONFIG_ALLCONFIG="
                                    f"{run_dir / ALLCONFIG} make -C {tree} O=OUT "
                                    f"ARCH={matrix.arch.make_arch} randconfig",
                       "command": command,
                       "settled": sorted(f"{k}={v}" for k, v in delta_from(made, rand).items())})
        if say:
            say(f"kmatrix: {cid}: make randconfig KCONFIG_SEED=0x{seed:08X}: "
                f"{len(combos[-1].values)} options differ from the base")
    matrix.combinations = combos
    results.atomic_write(run_dir / RANDCONFIG_JSON, json.dumps(
        {"count": spec.count, "seed": spec.seed, "over": spec.over, "allconfig": ALLCONFIG,
         "good": GOOD_CONFIG, "configs": record}, indent=2) + "\n")
    return combos


def reduce_failures(run_dir: Path, matrix_path: Path, results_dir: Path, kernel: str | None,
                    jobs: int | None, say: Say = print) -> list[str]:
    """Config-bisect every random config that failed (a kernel verdict other than
    config-dropped) against base + fixed values: summary lines, also kept in randconfig.json."""
    from .bisect.oracle import config_bisect_on_tree
    from .bisect.trial import open_env

    info_path = run_dir / RANDCONFIG_JSON
    info = json.loads(info_path.read_text())
    lines: list[str] = []
    for entry in info["configs"]:
        record_path = run_dir / entry["id"] / results.RECORD
        if not record_path.is_file():
            continue
        record = results.Record.from_dict(json.loads(record_path.read_text()))
        if not record.final.is_kernel_failure or record.final is Verdict.CONFIG_DROPPED:
            continue
        try:
            env = open_env(matrix_path, results_dir, kernel, jobs, "bisect-config", say)
            result = config_bisect_on_tree(env, str(run_dir / GOOD_CONFIG),
                                           str(run_dir / entry["id"] / "config"))
        except (InputError, InfraError) as exc:
            entry["reduced"] = {"error": exc.message}
            lines.append(f"- {entry['id']} (KCONFIG_SEED={entry['seed']}): not reduced: "
                         f"{exc.message}")
            continue
        entry["reduced"] = {"culprits": result.culprits, "message": result.message,
                            "configs_tried": len(result.tried), "bisect": env.settings.run_dir}
        lines.append(f"- {entry['id']} (KCONFIG_SEED={entry['seed']}, {record.final.value}): "
                     f"{result.message} ({len(result.tried)} configs, {env.settings.run_dir})")
    results.atomic_write(info_path, json.dumps(info, indent=2) + "\n")
    return ([f"## Failing random configs, reduced: {len(lines)}"] + lines) if lines else []


def randconfig_arguments(run: argparse.ArgumentParser) -> None:
    """`kmatrix run`'s randconfig options."""
    run.add_argument("--randconfig", type=int, metavar="N",
                     help="build N random configs of the tree instead of the matrix's "
                     "combinations (make randconfig, KCONFIG_ALLCONFIG = the matrix's fixed "
                     "values); a failing one is reduced with bisect-config")
    run.add_argument("--seed", type=int, default=0, metavar="S",
                     help="KCONFIG_SEED of the first random config (the next ones: S+1, ...)")
    run.add_argument("--randconfig-over", choices=("tree", "axes"), default="tree",
                     help="what is random: the whole tree except the matrix's fixed values "
                     "(default), or only the matrix's axes (every other option as the base)")


def report_reductions(run_dir: Path, matrix_path: Path, results_dir: Path, kernel: str | None,
                      jobs: int | None) -> None:
    """After a random run: reduce its failing configs, add the answers to summary.md, print them."""
    lines = reduce_failures(run_dir, matrix_path, results_dir, kernel, jobs)
    if lines:
        summary = run_dir / "summary.md"
        results.atomic_write(summary, summary.read_text() + "\n" + "\n".join(lines) + "\n")
        print("\n" + "\n".join(lines))
