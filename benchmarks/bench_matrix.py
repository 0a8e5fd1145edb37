#!/usr/bin/env python3
"""Benchmark: kmatrix's object tier against the naive way and against TuxMake.

    python3 benchmarks/bench_matrix.py [--combos N] [--tuxmake-combos M] [--skip-tuxmake]
                                       [--skip-naive] [--out FILE.json] [--keep]

Same machine, same session, same kernel tree (Debian's linux-source-6.12 as kmatrix unpacks it:
harness.source.resolve("debian")), same combinations (the default matrix.yaml's object-tier
combinations, or the first N of them). For each approach it prints wall time, CPU time, compiler
invocations, peak memory, and the ratios the issue asks for (docs/performance.md).

Approaches:
  kmatrix-cold  `python3 -m harness run` with a fresh, empty KMATRIX_CACHE (no seed tree, no ccache,
                no warm trees; the builder image lives in Docker and is reused)
  kmatrix-warm  the same command again with the same cache
                (both with --trees nearest, the default; kmatrix-own-* and kmatrix-lanes-* are
                the same with --trees own / lanes, each policy with its own fresh cache)
  boot-cold, boot-warm
                the boot tier alone (`--only` each boot combination), fresh cache, then again
  naive         per combination, in turn: fresh output dir, `make <base>`, append the requested
                values, `make olddefconfig`, `make -j2 <build targets>`; same builder image, no ccache
  tuxmake       `tuxmake --runtime null ... --kconfig tinyconfig -K ... --targets config kernel` on
                the host (a full bzImage: TuxMake builds kernels, not single directories)

Measurements:
  wall          time.monotonic around the approach
  CPU           sum of the approach's containers' cgroup cpuacct.usage (sampled every 0.25 s while
                they run; a container shorter than that can be missed) + getrusage(RUSAGE_CHILDREN)
                of host processes (the kmatrix/pytest processes, TuxMake and its make)
  system busy   busy jiffies from /proc/stat over the approach (includes every other load)
  invocations   kbuild quiet lines of gcc steps (CC, AS, HOSTCC, HOSTLD, CPP, LDS, ...) in the logs
                (TuxMake runs make --silent: gcc commands in its trees' .cmd files instead); for
                kmatrix also ccache's hits and misses (`ccache --print-stats` in the builder
                image), which include kbuild's untagged compiler probes, so they are shown, not
                subtracted
  minimum       distinct (object, normalised command line, resolved values of the CONFIG_ symbols
                its .cmd file lists under include/config/) over all combinations' output trees
  peak memory   max over samples of (RSS of the approach's containers, from memory.stat total_rss,
                + RSS of its host process tree); also the system-wide MemAvailable drop
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_report as br  # noqa: E402

from harness import image as imagemod  # noqa: E402
from harness import kconfig, source  # noqa: E402
from harness import matrix as matrixmod  # noqa: E402
from harness.container import WORKDIR_LABEL, DockerRunner, Step, connect  # noqa: E402
from harness.kbuild import Toolchain  # noqa: E402

CGROUP_CPU = Path("/sys/fs/cgroup/cpuacct/docker")
CGROUP_MEM = Path("/sys/fs/cgroup/memory/docker")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# kbuild's quiet tags for steps that run the gcc driver (compile, assemble, preprocess, host link)
GCC_TAGS = ("CC", "CC [M]", "AS", "HOSTCC", "HOSTCXX", "HOSTLD", "CPP", "LDS")
_TAG_RE = re.compile(r"^\s{1,2}(CC \[M\]|[A-Z][A-Z0-9_]*)\s+(\S+)\s*$")
_WILDCARD_RE = re.compile(r"\$\(wildcard include/config/([A-Za-z0-9_]+)\)")
_SAVEDCMD_RE = re.compile(r"^(?:saved)?cmd_(\S+) := (.*)$", re.M)
STEP_TIMEOUT_S = 3600.0

Fig = dict[str, Any]  # one approach's figures, as they go into the JSON
Ctx = dict[str, Any]  # what every approach needs: matrix, tree, combinations, Docker, scratch


# ---------------------------------------------------------------- measurement


def busy_jiffies() -> int:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cgroup_rss(cid: str) -> int:
    try:
        for line in (CGROUP_MEM / cid / "memory.stat").read_text().splitlines():
            if line.startswith("total_rss "):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, rss bytes)."""
    table: dict[int, tuple[int, int]] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        table[int(entry)] = (int(rest[1]), int(rest[21]) * page)
    return table


def tree_rss(root_pids: set[int]) -> int:
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, list(root_pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo += children.get(pid, [])
    return total


class Monitor:
    """Samples the approach's containers (by their workdir label) and host process tree."""

    def __init__(self, client: Any, prefixes: list[Path | str], interval: float = 0.25) -> None:
        self.client = client
        self.prefixes = [str(p) for p in prefixes]
        self.interval = interval
        self.pids: set[int] = set()
        self.cpu_ns: dict[str, int] = {}
        self.mine: dict[str, bool] = {}
        self.peak_rss = 0
        self.peak_container_rss = 0
        self.peak_cgroup_max = 0
        self.min_avail = mem_available()
        self.others_seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _is_mine(self, cid: str) -> bool:
        if cid not in self.mine:
            try:
                labels = self.client.api.inspect_container(cid)["Config"]["Labels"] or {}
                workdir = labels.get(WORKDIR_LABEL, "")
                self.mine[cid] = any(workdir.startswith(p) for p in self.prefixes)
            except Exception:  # noqa: BLE001 - gone already
                return False
        return self.mine[cid]

    def sample(self) -> None:
        container_rss = 0
        if CGROUP_CPU.is_dir():
            for entry in CGROUP_CPU.iterdir():
                cid = entry.name
                if len(cid) != 64 or not entry.is_dir():
                    continue
                if not self._is_mine(cid):
                    self.others_seen.add(cid)
                    continue
                usage = _read_int(entry / "cpuacct.usage")
                if usage is not None:
                    self.cpu_ns[cid] = max(self.cpu_ns.get(cid, 0), usage)
                container_rss += _cgroup_rss(cid)
                self.peak_cgroup_max = max(self.peak_cgroup_max,
                                           _read_int(CGROUP_MEM / cid / "memory.max_usage_in_bytes")
                                           or 0)
        host = tree_rss(self.pids) if self.pids else 0
        self.peak_container_rss = max(self.peak_container_rss, container_rss)
        self.peak_rss = max(self.peak_rss, container_rss + host)
        self.min_avail = min(self.min_avail, mem_available())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a sample lost to a race is fine
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> Monitor:
        self.t0 = time.monotonic()
        self.busy0 = busy_jiffies()
        self.avail0 = mem_available()
        self.load0 = os.getloadavg()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.ru0 = ru.ru_utime + ru.ru_stime
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wall = time.monotonic() - self.t0
        self.busy = (busy_jiffies() - self.busy0) / CLK_TCK
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.host_cpu = ru.ru_utime + ru.ru_stime - self.ru0
        self.load1 = os.getloadavg()

    def figures(self) -> Fig:
        container_cpu = sum(self.cpu_ns.values()) / 1e9
        return {
            "wall_s": round(self.wall, 1),
            "cpu_s": round(container_cpu + self.host_cpu, 1),
            "cpu_containers_s": round(container_cpu, 1),
            "cpu_host_s": round(self.host_cpu, 1),
            "system_busy_s": round(self.busy, 1),
            "containers": len(self.cpu_ns),
            "peak_rss_mib": round(self.peak_rss / 2**20),
            "peak_container_rss_mib": round(self.peak_container_rss / 2**20),
            "peak_cgroup_usage_mib": round(self.peak_cgroup_max / 2**20),
            "system_mem_drop_mib": round(max(0, self.avail0 - self.min_avail) / 2**20),
            "other_containers_seen": len(self.others_seen),
            "loadavg_start": round(self.load0[0], 2),
            "loadavg_end": round(self.load1[0], 2),
        }


def run_logged(argv: list[str], log: Path, monitor: Monitor,
               env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    with open(log, "ab") as out:
        out.write(("\n$ " + " ".join(argv) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        monitor.pids.add(proc.pid)
        code = proc.wait()
        monitor.pids.discard(proc.pid)
        return code


# ---------------------------------------------------------------- counting

def count_tags(paths: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            m = _TAG_RE.match(line)
            if m and m.group(1) in GCC_TAGS:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def _normalise_cmd(cmd: str, out: Path) -> str:
    cmd = cmd.replace(str(out), "$O").strip()
    if cmd.startswith("ccache "):
        cmd = cmd[len("ccache "):]
    return " ".join(cmd.split())


def object_keys(out: Path) -> set[tuple[str, str, str]]:
    """(target, command hash, hash of the values of the CONFIG_ symbols it depends on) for every
    gcc step recorded in an output tree's .cmd files."""
    config_path = out / ".config"
    if not config_path.is_file():
        return set()
    config = kconfig.parse_config(config_path.read_text(errors="replace"))
    keys: set[tuple[str, str, str]] = set()
    for cmd_file in out.rglob(".*.cmd"):
        try:
            text = cmd_file.read_text(errors="replace")
        except OSError:
            continue
        m = _SAVEDCMD_RE.search(text)
        if not m:
            continue
        # tools/ builds (objtool) record absolute output paths: normalise the target too
        target, cmd = m.group(1).replace(str(out), "$O"), _normalise_cmd(m.group(2), out)
        first = cmd.split(" ", 1)[0]
        if not (first.endswith("gcc") or first in ("cc", "gcc")):
            continue
        syms = sorted(set(_WILDCARD_RE.findall(text)))
        values = ";".join(f"{s}={config.get('CONFIG_' + s, 'n')}" for s in syms)
        keys.add((target, hashlib.sha256(cmd.encode()).hexdigest()[:16],
                  hashlib.sha256(values.encode()).hexdigest()[:16]))
    return keys


def tree_invocations(trees: list[Path]) -> int:
    """gcc steps recorded in fresh output trees (one .cmd file per step that ran): the count for
    tools whose logs are quiet (TuxMake runs `make --silent`)."""
    return sum(len(object_keys(tree)) for tree in trees)


def minimum_invocations(trees: list[Path]) -> int:
    keys: set[tuple[str, str, str]] = set()
    for tree in trees:
        keys |= object_keys(tree)
    return len(keys)


def ccache_stats(client: Any, image: str, ccache_dir: Path) -> dict[str, int]:
    if not ccache_dir.is_dir():
        return {}
    out = client.containers.run(image, ["ccache", "--print-stats"], remove=True,
                                network_mode="none", user=f"{os.getuid()}:{os.getgid()}",
                                environment={"CCACHE_DIR": str(ccache_dir)},
                                volumes={str(ccache_dir): {"bind": str(ccache_dir), "mode": "rw"}})
    stats: dict[str, int] = {}
    for line in out.decode().splitlines():
        if "\t" in line:
            key, value = line.split("\t", 1)
            if value.strip().isdigit():
                stats[key] = int(value)
    return stats


def ccache_hits(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    def diff(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)
    return diff("direct_cache_hit") + diff("preprocessed_cache_hit"), diff("cache_miss")


# ---------------------------------------------------------------- approaches

def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _member_paths(out: Path, directory: str, members: list[str]) -> list[Path]:
    """Archive members as files: thin-archive paths are relative to the archive's directory
    (kmatrix may also record them relative to the tree)."""
    paths = []
    for m in members:
        near = out / directory / m
        paths.append(near if near.exists() or not (out / m).exists() else out / m)
    return paths


def run_kmatrix(label: str, ctx: Ctx, results_dir: Path, cache: Path | None = None,
                extra: tuple[str, ...] = (), combos: list[Any] | None = None) -> Fig:
    """`kmatrix run` on the combinations (default: the object tier) with KMATRIX_CACHE=cache."""
    cache = cache or ctx["kmcache"]
    env = dict(os.environ, KMATRIX_CACHE=str(cache))
    argv = [sys.executable, "-m", "harness", "run", str(ctx["matrix_path"]),
            "--kernel", str(ctx["tree"].path), "--results", str(results_dir), *extra]
    if combos is not None or not ctx["all_combos"]:
        for combo in combos if combos is not None else ctx["combos"]:
            argv += ["--only", combo.id]
    combos = combos if combos is not None else ctx["combos"]
    cold = label.endswith("-cold")
    before = ccache_stats(ctx["client"], ctx["image"], cache / "ccache")
    log = ctx["tmp"] / f"{label}.log"
    with Monitor(ctx["client"], [cache, results_dir]) as mon:
        code = run_logged(argv, log, mon, env=env, cwd=ROOT)
    after = ccache_stats(ctx["client"], ctx["image"], cache / "ccache")
    hits, misses = ccache_hits(before, after)
    runs = sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.is_symlink()) \
        if results_dir.is_dir() else []
    fig = mon.figures()
    fig.update({"approach": label, "exit_status": code, "command": " ".join(argv)})
    if not runs:
        fig.update({"combos": 0, "error": f"exit status {code}, no run directory: "
                    + br.first_error_line(_read(log))})
        return br.judge(fig)
    run_dir = runs[-1]
    records = []
    for combo in combos:
        path = run_dir / combo.id / "record.json"
        if path.is_file():
            records.append(json.loads(path.read_text()))
    logs = [run_dir / "seed.log"] + [run_dir / r["combination"] / "build.log" for r in records]
    tags = count_tags(logs)
    durations = [r.get("duration_s") or 0.0 for r in records]
    trees = [Path(r["output_dir"]) for r in records if r.get("output_dir")]
    # a tree shared by different configs holds only its last one's state (duplicates are fine)
    configs_in: dict[Path, set[str]] = {}
    for r in records:
        if r.get("output_dir"):
            configs_in.setdefault(Path(r["output_dir"]), set()).add(r.get("resolved_config_hash"))
    shared = any(len(v) > 1 for v in configs_in.values())
    seed_s = sum(float(x) for x in re.findall(r"kmatrix: step \S+ exited \d+ after ([\d.]+) s",
                                               _read(run_dir / "seed.log")))
    invocations = sum(tags.values())
    # checks: every combination has a record with verdict pass and the objects its link check
    # listed exist in its tree; a cold run compiled at least every distinct object once
    checks: dict[str, Fig] = {}
    by_id = {r["combination"]: r for r in records}
    every_object: dict[str, Path] = {}
    for combo in combos:
        r = by_id.get(combo.id)
        if r is None:
            checks[combo.id] = br.check(code, [], None, 0, error="no record.json: "
                                        + br.first_error_line(_read(log)))
            continue
        out = Path(r.get("output_dir") or run_dir / combo.id / "missing-output-dir")
        arts: list[Path] = []
        for directory, link in (r.get("link") or {}).items():
            arts.append(out / directory / "built-in.a")
            members = _member_paths(out, directory, link.get("members", []))
            arts += members
            for m in link.get("members", []):
                every_object.setdefault(f"{directory}{m}", members[link["members"].index(m)])
        if r.get("boot") is not None:
            arts.append(out / "arch" / "x86" / "boot" / "bzImage")
        verdict = r.get("verdict")
        reason = "" if verdict == "pass" else \
            f"verdict {verdict}: " + ("; ".join(r.get("reasons", [])) or "(no reason recorded)")
        checks[combo.id] = br.check(0 if verdict == "pass" else code, arts, None, 0,
                                    error=reason[:240])
    if cold:
        checks["(compiler runs, whole run)"] = br.check(
            code, list(every_object.values()), invocations, len(every_object),
            _read(log))
    fig.update({
        "combos": len(records), "run_dir": str(run_dir), "cold": cold, "checks": checks,
        "verdicts": {r["combination"]: r.get("verdict") for r in records},
        "per_combo_s": {r["combination"]: r.get("duration_s") for r in records},
        "stages": {r["combination"]: {s["name"]: s["duration_s"] for s in r.get("stages", [])}
                   for r in records},
        "marginal_median_s": round(statistics.median(durations), 1) if durations else None,
        "seed_s": round(seed_s, 1),
        "invocations": invocations, "invocation_tags": tags,
        # ccache also answers kbuild's compiler probes (cc-option & co, run at every make and
        # olddefconfig), which print no tag: its hits are reported, never subtracted
        "ccache_hits": hits, "ccache_misses": misses,
        "real_compiles": invocations,
        "minimum": None if shared else minimum_invocations(trees),
        "trees": len(set(trees)),
        "boot_s": {r["combination"]: (r.get("boot") or {}).get("duration_s")
                   for r in records if r.get("boot")},
    })
    return br.judge(fig)


def boot_figures(fig: Fig, boots: list[Any]) -> Fig:
    """The boot tier's lane: the first kernel is a full build, the others follow it."""
    order = [c.id for c in boots]
    per = fig.get("per_combo_s", {})
    first = max(order, key=lambda c: per.get(c) or 0)  # the one that built the kernel
    rest = [per[c] for c in order if c != first and per.get(c) is not None]
    fig.update({"boot_tier": True, "boot_first": first, "boot_first_s": per.get(first),
                "boot_marginal_s": round(statistics.median(rest), 1) if rest else None})
    return fig


def run_boot(label: str, ctx: Ctx, results_dir: Path, cache: Path, boots: list[Any]) -> Fig:
    """The boot tier alone, through `kmatrix run --only` each boot combination."""
    return boot_figures(run_kmatrix(label, ctx, results_dir, cache, (), boots), boots)


def _with_make(step: Step, make: str | None) -> Step:
    """The step with another make program (tests break the naive approach with one)."""
    return dataclasses.replace(step, argv=(make, *step.argv[1:])) if make else step


def run_naive(ctx: Ctx) -> Fig:
    """Per combination, in turn: a fresh tree, base config, the values, olddefconfig, build."""
    matrix, tree, symbols = ctx["matrix"], ctx["tree"], ctx["symbols"]
    runner = DockerRunner(ctx["image"], ctx["client"])
    tc = Toolchain(tree.path, matrix.arch, jobs=2, cpus=2.0, ccache_dir=None)
    make = ctx.get("naive_make")
    root = ctx["tmp"] / "naive"
    root.mkdir()
    per_combo: dict[str, float] = {}
    verdicts: dict[str, str] = {}
    checks: dict[str, Fig] = {}
    logs: list[Path] = []
    trees: list[Path] = []
    targets = list(matrix.build.targets)
    with Monitor(ctx["client"], [root]) as mon:
        for combo in ctx["combos"]:
            out = root / combo.id
            out.mkdir()
            logp = root / f"{combo.id}.log"
            logs.append(logp)
            trees.append(out)
            start = time.monotonic()
            requested = matrixmod.requested_config(matrix, combo, symbols)
            exit_status: int | None = 0
            error = ""
            with open(logp, "w") as log:
                try:
                    res = runner.run(_with_make(tc.make_step(
                        "base", out, matrix.base, timeout_s=STEP_TIMEOUT_S, jobs=1), make), log)
                    if res.ok:
                        with open(out / ".config", "a") as cfg:
                            cfg.write(kconfig.render_config(requested))
                        res = runner.run(_with_make(tc.make_step(
                            "olddefconfig", out, "olddefconfig", timeout_s=STEP_TIMEOUT_S,
                            jobs=1), make), log)
                    if res.ok:
                        resolved = kconfig.parse_config((out / ".config").read_text())
                        dropped = kconfig.config_truth(requested, resolved)
                        res = runner.run(_with_make(tc.make_step(
                            "build", out, *targets, timeout_s=STEP_TIMEOUT_S, jobs=2), make), log)
                        verdicts[combo.id] = ("built" if res.ok else "build-failed") + (
                            f" ({len(dropped)} requested values dropped, unnoticed)"
                            if dropped else "")
                    else:
                        verdicts[combo.id] = "config-failed"
                    exit_status = res.exit_code
                except Exception as exc:  # noqa: BLE001 - Docker could not run the step
                    exit_status, error = 127, f"{type(exc).__name__}: {exc}".splitlines()[0]
                    verdicts[combo.id] = "step-not-run"
            per_combo[combo.id] = round(time.monotonic() - start, 1)
            compiles = sum(count_tags([logp]).values())
            checks[combo.id] = br.check(exit_status, br.expected_artifacts(out, targets), compiles,
                                        br.cold_minimum(out, targets), _read(logp), error)
    tags = count_tags(logs)
    fig = mon.figures()
    fig.update({"approach": "naive", "combos": len(ctx["combos"]), "verdicts": verdicts,
                "cold": True, "checks": checks, "per_combo_s": per_combo,
                "marginal_median_s": round(statistics.median(per_combo.values()), 1),
                "invocations": sum(tags.values()), "invocation_tags": tags,
                "real_compiles": sum(tags.values()), "minimum": minimum_invocations(trees)})
    return br.judge(fig)


def tuxmake_kconfig_args(requested: dict[str, str]) -> list[str]:
    args = []
    for name, value in requested.items():
        args += ["-K", f"# {name} is not set" if value == "n" else f"{name}={value}"]
    return args


def tuxmake_program(ctx: Ctx) -> str | None:
    env = ctx.get("tuxmake_env") or os.environ
    return shutil.which("tuxmake", path=env.get("PATH"))


def run_tuxmake(ctx: Ctx, count: int, mode: str = "kernel") -> Fig:
    """mode "kernel": targets config + kernel (a bzImage, how TuxMake users build);
    mode "dir": targets config + `-M <the matrix's build targets>` (like for like with kmatrix).
    TuxMake runs with `--runtime null`, on the host, with the host's gcc (benchmarks/README.md)."""
    name = "tuxmake" if mode == "kernel" else "tuxmake-dir"
    tux = tuxmake_program(ctx)
    if tux is None:
        return br.judge({"approach": name, "error": "tuxmake is not installed (nox -s bench "
                         "installs it; by hand: pip install tuxmake)"})
    matrix, tree, symbols = ctx["matrix"], ctx["tree"], ctx["symbols"]
    root = ctx["tmp"] / name
    root.mkdir()
    built = ["kernel"] if mode == "kernel" else list(matrix.build.targets)
    targets = ["config", "kernel"] if mode == "kernel" else \
        ["config"] + [a for t in matrix.build.targets for a in ("-M", t)]
    per_combo: dict[str, float] = {}
    verdicts: dict[str, str] = {}
    checks: dict[str, Fig] = {}
    logs: list[Path] = []
    trees: list[Path] = []
    combos = ctx["combos"][:count]
    with Monitor(ctx["client"], [root]) as mon:
        for combo in combos:
            requested = matrixmod.requested_config(matrix, combo, symbols)
            build, output = root / combo.id / "build", root / combo.id / "out"
            argv = [tux, "--runtime", "null", "--target-arch", matrix.arch, "--toolchain", "gcc",
                    "--jobs", "2", "--kconfig", matrix.base, *tuxmake_kconfig_args(requested),
                    "--build-dir", str(build), "--output-dir", str(output),
                    "--directory", str(tree.path), *targets]
            start = time.monotonic()
            logp = root / f"{combo.id}.log"
            code = run_logged(argv, logp, mon, env=ctx.get("tuxmake_env"))
            per_combo[combo.id] = round(time.monotonic() - start, 1)
            verdicts[combo.id] = f"exit {code}"
            logs += [logp, output / "build.log"]
            trees.append(build)
            compiles = len(object_keys(build))  # make --silent: the .cmd files say what ran
            checks[combo.id] = br.check(code, br.expected_artifacts(build, built), compiles,
                                        br.cold_minimum(build, built),
                                        _read(logp) + "\n" + _read(output / "build.log"))
    tags = count_tags(logs)  # empty: TuxMake runs make --silent
    invocations = tree_invocations(trees)
    fig = mon.figures()
    fig.update({"approach": name, "combos": len(combos), "verdicts": verdicts, "cold": True,
                "checks": checks, "per_combo_s": per_combo,
                "marginal_median_s": round(statistics.median(per_combo.values()), 1),
                "invocations": invocations, "invocation_tags": tags,
                "invocations_from": "gcc steps in the build trees' .cmd files (make --silent)",
                "real_compiles": invocations, "minimum": minimum_invocations(trees),
                "note": "targets " + " ".join(targets)})
    return br.judge(fig)


def tuxmake_dropped_case(ctx: Ctx) -> Fig:
    """FACTS: TuxMake builds a config whose requested option Kconfig dropped and says PASS."""
    tux = tuxmake_program(ctx)
    if tux is None:
        return {"error": "tuxmake is not installed"}
    root = ctx["tmp"] / "tuxmake-dropped"
    requested = ["CONFIG_MODULES=y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y"]
    argv = [tux, "--runtime", "null", "--target-arch", "x86_64", "--toolchain", "gcc",
            "--jobs", "2", "--kconfig", "tinyconfig", "-K", requested[0], "-K", requested[1],
            "--build-dir", str(root / "build"), "--output-dir", str(root / "out"),
            "--directory", str(ctx["tree"].path), "config"]
    root.mkdir()
    done = subprocess.run(argv, capture_output=True, text=True, env=ctx.get("tuxmake_env"))
    config = root / "build" / ".config"
    text = config.read_text() if config.is_file() else ""
    summary = [ln for ln in (done.stdout + done.stderr).splitlines()
               if re.search(r"\b(PASS|FAIL|I: config|I: build output)", ln)]
    return {"command": " ".join(argv), "exit_status": done.returncode, "summary": summary[-4:],
            "dups_in_config": "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y" in text,
            "config_built": config.is_file(),
            "kmatrix_verdict": "config-dropped (names CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS)"}


# ---------------------------------------------------------------- report

def machine() -> Fig:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    load = os.getloadavg()
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "cpu": cpu,
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "kernel": platform.release(), "os": _os_name(), "python": platform.python_version(),
            "loadavg_start": [round(x, 2) for x in load],
            "kmatrix_commit": _git("rev-parse", "--short", "HEAD"),
            "kmatrix_branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
            "kmatrix_dirty_files": len(_git("status", "--porcelain", "--", "harness").splitlines())}


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def _first_line(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({argv[0]}: {exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else f"({argv[0]} exited {done.returncode})"


def tool_versions(ctx: Ctx) -> Fig:
    """Both sides' compilers (TuxMake on the host: CROSS_COMPILE=x86_64-linux-gnu-), make,
    TuxMake and Docker, so a reader can see both sides compiled with the same gcc."""
    tux = tuxmake_program(ctx)
    image_out = ""
    try:
        image_out = ctx["client"].containers.run(
            ctx["image"], ["sh", "-c", "gcc --version | head -1; dpkg-query -W -f '${Version}' "
                           "gcc-12; echo; make --version | head -1"],
            remove=True, network_mode="none").decode()
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        image_out = f"(could not run the builder image: {exc})"
    image_lines = image_out.splitlines() + ["", "", ""]
    host_gcc = _first_line(["x86_64-linux-gnu-gcc", "--version"])
    try:
        server = ctx["client"].version().get("Version", "?")
    except Exception:  # noqa: BLE001
        server = "?"
    return {
        "host_gcc": host_gcc,
        "host_gcc_package": _first_line(["dpkg-query", "-W", "-f", "${Version}", "gcc-12"]),
        "host_make": _first_line(["make", "--version"]),
        "image_gcc": image_lines[0], "image_gcc_package": image_lines[1],
        "image_make": image_lines[2],
        "same_compiler": br.same_compiler({"host_gcc": host_gcc, "image_gcc": image_lines[0]}),
        "tuxmake": tux, "tuxmake_version": _first_line([tux, "--version"]) if tux else None,
        "tuxmake_runtime": "null",
        "docker": server,
    }


def write_docs(result: Fig, json_path: Path, readme: Path, perf: Path) -> None:
    """Rewrite the generated sections of README.md and docs/performance.md from the JSON."""
    for doc, detail in ((readme, False), (perf, True)):
        link = os.path.relpath(json_path.resolve(), doc.resolve().parent)
        body = br.markdown(result, link, detail=detail)
        source = os.path.relpath(json_path.resolve(), ROOT)
        doc.write_text(br.replace_section(doc.read_text(), body, source))
        print(f"bench: rewrote the generated section of {doc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--matrix", type=Path, default=ROOT / "matrix.yaml")
    ap.add_argument("--combos", type=int, help="only the first N combinations (default: all)")
    ap.add_argument("--tuxmake-combos", type=int,
                    help="TuxMake builds only the first M of them (a full kernel each; "
                         "default: all); the ratio extrapolates its per-combination mean")
    ap.add_argument("--skip-tuxmake", action="store_true")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-kmatrix", action="store_true")
    ap.add_argument("--policies", default="nearest,own,lanes",
                    help="kmatrix tree policies to measure on the object tier, cold and warm "
                    "(comma-separated; default: nearest,own,lanes; nearest is the default one)")
    ap.add_argument("--skip-boot", action="store_true", help="leave out the boot tier")
    ap.add_argument("--out", type=Path, help="write every figure as JSON to this file")
    ap.add_argument("--workdir", type=Path, help="scratch directory (default: a new temporary "
                    "directory under /var/tmp, removed at the end unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--report", type=Path, metavar="FILE.json",
                    help="print the table of an earlier --out file and exit (builds nothing)")
    ap.add_argument("--markdown", action="store_true",
                    help="with --report: print the Markdown section instead of the text table")
    ap.add_argument("--write-docs", action="store_true",
                    help="with --report: rewrite the generated sections (between the "
                    "bench:begin/bench:end markers) of README.md and docs/performance.md")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md", help=argparse.SUPPRESS)
    ap.add_argument("--perf-doc", type=Path, default=ROOT / "docs" / "performance.md",
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        if args.write_docs:
            write_docs(saved, args.report, args.readme, args.perf_doc)
        elif args.markdown:
            print(br.markdown(saved, args.report.name))
        else:
            print(br.report(saved))
        return 0
    if args.markdown or args.write_docs:
        ap.error("--markdown and --write-docs need --report FILE.json")

    matrix = matrixmod.load_matrix(args.matrix)
    tree = source.resolve(matrix.source)  # the tree in the user's normal kmatrix cache
    symbols = kconfig.scan_symbols(tree.path)
    matrixmod.check_against_tree(matrix, symbols)
    combos = [c for c in matrix.combinations if c.boot is None]  # the object tier
    boots = [c for c in matrix.combinations if c.boot is not None]
    all_combos = len(combos) == len(matrix.combinations)
    if args.combos:
        all_combos = all_combos and args.combos >= len(combos)
        combos = combos[:args.combos]
    client = connect()
    image = imagemod.ensure_image(client, imagemod.read_spec(), source.cache_root())
    tmp = Path(tempfile.mkdtemp(prefix="kmatrix-bench-", dir=args.workdir or "/var/tmp"))
    ctx: Ctx = {"matrix": matrix, "matrix_path": matrix.path, "tree": tree, "symbols": symbols,
                "combos": combos, "all_combos": all_combos, "client": client, "image": image,
                "tmp": tmp, "kmcache": tmp / "kmatrix-cache", "boots": boots}
    print(f"bench: {len(combos)} combinations, tree {tree.path}, image {image}, scratch {tmp}",
          flush=True)
    started = time.monotonic()
    busy0 = busy_jiffies()
    mach = machine()
    mach.update(tool_versions(ctx))
    command = os.environ.get("KMATRIX_BENCH_COMMAND") or \
        "python3 benchmarks/bench_matrix.py " + " ".join(sys.argv[1:])
    result: Fig = {"machine": mach, "command": command.strip(), "combos": len(combos),
                   "combination_ids": [c.id for c in combos],
                   "tuxmake_combos": 0 if args.skip_tuxmake else
                   min(args.tuxmake_combos or len(combos), len(combos)),
                   "tree": {"path": str(tree.path), "version": tree.version, "origin": tree.origin},
                   "image": image, "tools": {"tuxmake_version": mach.get("tuxmake_version"),
                                             "tuxmake_runtime": "null"},
                   "approaches": []}

    def save() -> None:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")

    def record(name: str, run: Callable[[], Fig]) -> None:
        try:
            fig = run()
        except Exception as exc:  # noqa: BLE001 - a broken approach is a FAILED row, not a crash
            fig = br.judge({"approach": name,
                            "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:240]})
        result["approaches"].append(fig)
        status = "ok" if fig.get("status") == "ok" else f"FAILED: {fig.get('error')}"
        print(f"bench: {fig.get('approach')}: {status} " + json.dumps(
            {k: fig.get(k) for k in ("wall_s", "cpu_s", "marginal_median_s", "invocations",
                                     "minimum", "peak_rss_mib")}), flush=True)
        save()

    try:
        if not args.skip_kmatrix:
            for policy in [p.strip() for p in args.policies.split(",") if p.strip()]:
                name = "kmatrix" if policy == "nearest" else f"kmatrix-{policy}"
                trees = ("--trees", policy)
                for phase in ("cold", "warm"):  # the warm run reuses the cold run's cache
                    label = f"{name}-{phase}"
                    record(label, functools.partial(run_kmatrix, label, ctx,
                                                    tmp / f"results-{label}",
                                                    tmp / f"cache-{policy}", trees))
        if not args.skip_boot and boots:
            for label in ("boot-cold", "boot-warm"):
                record(label, functools.partial(run_boot, label, ctx, tmp / f"results-{label}",
                                                tmp / "boot-cache", boots))
        if not args.skip_naive:
            record("naive", lambda: run_naive(ctx))
        if not args.skip_tuxmake:
            count = args.tuxmake_combos or len(combos)
            result["tuxmake_dropped"] = tuxmake_dropped_case(ctx)
            record("tuxmake-dir", lambda: run_tuxmake(ctx, count, "dir"))
            record("tuxmake", lambda: run_tuxmake(ctx, count, "kernel"))
        mach["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        mach["duration_s"] = round(time.monotonic() - started, 1)
        mach["system_busy_s"] = round((busy_jiffies() - busy0) / CLK_TCK, 1)
        text = br.report(result)
        result["report"] = text
        save()
        print()
        print(text)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [r["approach"] for r in result["approaches"] if r.get("status") != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
