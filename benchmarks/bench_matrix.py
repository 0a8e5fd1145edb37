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
import datetime as dt
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import image as imagemod  # noqa: E402
from harness import kconfig, source  # noqa: E402
from harness import matrix as matrixmod  # noqa: E402
from harness.container import WORKDIR_LABEL, DockerRunner, connect  # noqa: E402
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


# ---------------------------------------------------------------- measurement


def ccache_cell(r: dict) -> str:
    return f"{r['ccache_hits']}/{r['ccache_misses']}" if "ccache_hits" in r else "-"

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
    table = {}
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

    def __init__(self, client, prefixes: list[str], interval: float = 0.25) -> None:
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

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.wall = time.monotonic() - self.t0
        self.busy = (busy_jiffies() - self.busy0) / CLK_TCK
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.host_cpu = ru.ru_utime + ru.ru_stime - self.ru0
        self.load1 = os.getloadavg()

    def figures(self) -> dict:
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


def run_logged(argv: list[str], log: Path, monitor: Monitor, env=None, cwd=None) -> int:
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
    keys = set()
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
    keys: set = set()
    for tree in trees:
        keys |= object_keys(tree)
    return len(keys)


def ccache_stats(client, image: str, ccache_dir: Path) -> dict[str, int]:
    if not ccache_dir.is_dir():
        return {}
    out = client.containers.run(image, ["ccache", "--print-stats"], remove=True,
                                network_mode="none", user=f"{os.getuid()}:{os.getgid()}",
                                environment={"CCACHE_DIR": str(ccache_dir)},
                                volumes={str(ccache_dir): {"bind": str(ccache_dir), "mode": "rw"}})
    stats = {}
    for line in out.decode().splitlines():
        if "\t" in line:
            key, value = line.split("\t", 1)
            if value.strip().isdigit():
                stats[key] = int(value)
    return stats


def ccache_hits(before: dict, after: dict) -> tuple[int, int]:
    def diff(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)
    return diff("direct_cache_hit") + diff("preprocessed_cache_hit"), diff("cache_miss")


# ---------------------------------------------------------------- approaches

def run_kmatrix(label: str, ctx: dict, results_dir: Path, cache: Path | None = None,
                extra: tuple[str, ...] = (), combos: list | None = None) -> dict:
    """`kmatrix run` on the combinations (default: the object tier) with KMATRIX_CACHE=cache."""
    cache = cache or ctx["kmcache"]
    env = dict(os.environ, KMATRIX_CACHE=str(cache))
    argv = [sys.executable, "-m", "harness", "run", str(ctx["matrix_path"]),
            "--kernel", str(ctx["tree"].path), "--results", str(results_dir), *extra]
    if combos is not None or not ctx["all_combos"]:
        for combo in combos if combos is not None else ctx["combos"]:
            argv += ["--only", combo.id]
    combos = combos if combos is not None else ctx["combos"]
    before = ccache_stats(ctx["client"], ctx["image"], cache / "ccache")
    log = ctx["tmp"] / f"{label}.log"
    with Monitor(ctx["client"], [cache, results_dir]) as mon:
        code = run_logged(argv, log, mon, env=env, cwd=ROOT)
    after = ccache_stats(ctx["client"], ctx["image"], cache / "ccache")
    hits, misses = ccache_hits(before, after)
    runs = sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.is_symlink())
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
    configs_in: dict[Path, set] = {}
    for r in records:
        if r.get("output_dir"):
            configs_in.setdefault(Path(r["output_dir"]), set()).add(r.get("resolved_config_hash"))
    shared = any(len(v) > 1 for v in configs_in.values())
    seed_s = sum(float(x) for x in re.findall(r"kmatrix: step \S+ exited \d+ after ([\d.]+) s",
                                               (run_dir / "seed.log").read_text(errors="replace")))
    invocations = sum(tags.values())
    fig = mon.figures()
    fig.update({
        "approach": label, "combos": len(records), "exit_status": code, "run_dir": str(run_dir),
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
        "boot_s": {r["combination"]: r.get("boot", {}).get("duration_s")
                   for r in records if r.get("boot")},
    })
    return fig


def boot_figures(fig: dict, boots: list) -> dict:
    """The boot tier's lane: the first kernel is a full build, the others follow it."""
    order = [c.id for c in boots]
    per = fig.get("per_combo_s", {})
    first = max(order, key=lambda c: per.get(c) or 0)  # the one that built the kernel
    rest = [per[c] for c in order if c != first and per.get(c) is not None]
    fig.update({"boot_tier": True, "boot_first": first, "boot_first_s": per.get(first),
                "boot_marginal_s": round(statistics.median(rest), 1) if rest else None})
    return fig


def run_naive(ctx: dict) -> dict:
    matrix, tree, symbols = ctx["matrix"], ctx["tree"], ctx["symbols"]
    runner = DockerRunner(ctx["image"], ctx["client"])
    tc = Toolchain(tree.path, matrix.arch, jobs=2, cpus=2.0, ccache_dir=None)
    root = ctx["tmp"] / "naive"
    root.mkdir()
    per_combo, verdicts, logs, trees = {}, {}, [], []
    with Monitor(ctx["client"], [root]) as mon:
        for combo in ctx["combos"]:
            out = root / combo.id
            out.mkdir()
            logp = root / f"{combo.id}.log"
            logs.append(logp)
            trees.append(out)
            start = time.monotonic()
            requested = matrixmod.requested_config(matrix, combo, symbols)
            with open(logp, "w") as log:
                steps = [tc.make_step("base", out, matrix.base, timeout_s=STEP_TIMEOUT_S, jobs=1)]
                ok = runner.run(steps[0], log).ok
                if ok:
                    with open(out / ".config", "a") as cfg:
                        cfg.write(kconfig.render_config(requested))
                    ok = runner.run(tc.make_step("olddefconfig", out, "olddefconfig",
                                                 timeout_s=STEP_TIMEOUT_S, jobs=1), log).ok
                if ok:
                    resolved = kconfig.parse_config((out / ".config").read_text())
                    dropped = kconfig.config_truth(requested, resolved)
                    ok = runner.run(tc.make_step("build", out, *matrix.build.targets,
                                                 timeout_s=STEP_TIMEOUT_S, jobs=2), log).ok
                    verdicts[combo.id] = ("built" if ok else "build-failed") + (
                        f" ({len(dropped)} requested values dropped, unnoticed)" if dropped else "")
                else:
                    verdicts[combo.id] = "config-failed"
            per_combo[combo.id] = round(time.monotonic() - start, 1)
    tags = count_tags(logs)
    fig = mon.figures()
    fig.update({"approach": "naive", "combos": len(ctx["combos"]), "verdicts": verdicts,
                "per_combo_s": per_combo,
                "marginal_median_s": round(statistics.median(per_combo.values()), 1),
                "invocations": sum(tags.values()), "invocation_tags": tags,
                "real_compiles": sum(tags.values()), "minimum": minimum_invocations(trees)})
    return fig


def tuxmake_kconfig_args(requested: dict) -> list[str]:
    args = []
    for name, value in requested.items():
        args += ["-K", f"# {name} is not set" if value == "n" else f"{name}={value}"]
    return args


def run_tuxmake(ctx: dict, count: int, mode: str = "kernel") -> dict:
    """mode "kernel": targets config + kernel (a bzImage, how TuxMake users build);
    mode "dir": targets config + `-M <the matrix's build targets>` (like for like with kmatrix)."""
    name = "tuxmake" if mode == "kernel" else "tuxmake-dir"
    tux = shutil.which("tuxmake")
    if tux is None:
        return {"approach": name, "error": "tuxmake is not installed: pip install tuxmake"}
    matrix, tree, symbols = ctx["matrix"], ctx["tree"], ctx["symbols"]
    root = ctx["tmp"] / name
    root.mkdir()
    targets = ["config", "kernel"] if mode == "kernel" else \
        ["config"] + [a for t in ctx["matrix"].build.targets for a in ("-M", t)]
    per_combo, verdicts, logs, trees = {}, {}, [], []
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
            code = run_logged(argv, root / f"{combo.id}.log", mon)
            per_combo[combo.id] = round(time.monotonic() - start, 1)
            verdicts[combo.id] = f"exit {code}"
            logs += [root / f"{combo.id}.log", output / "build.log"]
            trees.append(build)
    tags = count_tags(logs)  # empty: TuxMake runs make --silent
    invocations = tree_invocations(trees)
    fig = mon.figures()
    fig.update({"approach": name, "combos": len(combos), "verdicts": verdicts,
                "per_combo_s": per_combo,
                "marginal_median_s": round(statistics.median(per_combo.values()), 1),
                "invocations": invocations, "invocation_tags": tags,
                "invocations_from": "gcc steps in the build trees' .cmd files (make --silent)",
                "real_compiles": invocations, "minimum": minimum_invocations(trees),
                "note": "targets " + " ".join(targets)})
    return fig


def tuxmake_dropped_case(ctx: dict) -> dict:
    """FACTS: TuxMake builds a config whose requested option Kconfig dropped and says PASS."""
    tux = shutil.which("tuxmake")
    if tux is None:
        return {"error": "tuxmake is not installed"}
    root = ctx["tmp"] / "tuxmake-dropped"
    requested = ["CONFIG_MODULES=y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y"]
    argv = [tux, "--runtime", "null", "--target-arch", "x86_64", "--toolchain", "gcc",
            "--jobs", "2", "--kconfig", "tinyconfig", "-K", requested[0], "-K", requested[1],
            "--build-dir", str(root / "build"), "--output-dir", str(root / "out"),
            "--directory", str(ctx["tree"].path), "config"]
    root.mkdir()
    done = subprocess.run(argv, capture_output=True, text=True)
    config = root / "build" / ".config"
    text = config.read_text() if config.is_file() else ""
    summary = [ln for ln in (done.stdout + done.stderr).splitlines()
               if re.search(r"\b(PASS|FAIL|I: config|I: build output)", ln)]
    return {"command": " ".join(argv), "exit_status": done.returncode, "summary": summary[-4:],
            "dups_in_config": "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y" in text,
            "kmatrix_verdict": "config-dropped (names CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS)"}


# ---------------------------------------------------------------- report

def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(), "cpu": cpu,
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "kmatrix_commit": _git("rev-parse", "--short", "HEAD"),
            "kmatrix_dirty_files": len(_git("status", "--porcelain", "--", "harness").splitlines())}


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def report(result: dict) -> str:
    rows = [r for r in result["approaches"] if "wall_s" in r]
    lines = [f"kmatrix benchmark {result['machine']['date']} on {result['machine']['cores']} cores "
             f"({result['machine']['cpu']}), Linux {result['tree']['version']} "
             f"({result['tree']['origin']}), {result['combos']} combinations", ""]
    head = (f"{'approach':<18}{'combos':>7}{'wall s':>9}{'cpu s':>9}{'sys busy':>9}{'median/c':>9}"
            f"{'gcc steps':>10}{'minimum':>8}{'/min':>8}{'ccache h/m':>11}{'peak MiB':>9}")
    lines += [head, "-" * len(head)]
    # each object compiled once per distinct set of its config inputs, counted on fresh
    # per-combination trees (naive, or kmatrix with --trees own); lanes keep only the last state
    minimum = next((r["minimum"] for r in rows if r.get("minimum") and not r.get("boot_tier")
                    and r["approach"] in ("naive", "kmatrix-own-cold", "kmatrix-cold")), None)
    for r in rows:
        # whole kernels (the boot tier, TuxMake's bzImages) against their own minimum
        whole = r.get("boot_tier") or r["approach"] == "tuxmake"
        mn = minimum if minimum and not whole else r.get("minimum")
        lines.append(f"{r['approach']:<18}{r['combos']:>7}{r['wall_s']:>9}{r['cpu_s']:>9}"
                     f"{r['system_busy_s']:>9}{str(r.get('marginal_median_s')):>9}"
                     f"{r['invocations']:>10}{str(mn):>8}"
                     f"{ratio(r['invocations'], mn):>8}"
                     f"{ccache_cell(r):>11}"
                     f"{r['peak_rss_mib']:>9}")
    by = {r["approach"]: r for r in rows}
    lines.append("")
    n = result["combos"]
    for name in [r["approach"] for r in rows
                 if r["approach"].startswith("kmatrix") and not r.get("boot_tier")]:
        if name in by and "naive" in by:
            lines.append(f"naive / {name}: wall {ratio(by['naive']['wall_s'], by[name]['wall_s'])}"
                         f", cpu {ratio(by['naive']['cpu_s'], by[name]['cpu_s'])}")
        for tname in ("tuxmake", "tuxmake-dir"):
            if name not in by or tname not in by:
                continue
            t = by[tname]
            est = t["wall_s"] / t["combos"] * n
            cpu_est = t["cpu_s"] / t["combos"] * n
            lines.append(f"{tname} / {name}: wall {ratio(est, by[name]['wall_s'])}, cpu "
                         f"{ratio(cpu_est, by[name]['cpu_s'])}"
                         + (f" (TuxMake ran {t['combos']} of {n}: its per-combination mean "
                            f"extrapolated to {n})" if t["combos"] != n else ""))
    if "kmatrix-cold" in by:
        lines.append(f"marginal cost of one more combination (median per-combination duration): "
                     f"cold {by['kmatrix-cold']['marginal_median_s']} s, warm "
                     f"{by.get('kmatrix-warm', {}).get('marginal_median_s')} s (target <= 10 s)")
    for name in ("boot-cold", "boot-warm"):
        if name not in by:
            continue
        r = by[name]
        seq = sorted(r["per_combo_s"].items(), key=lambda kv: kv[0])
        rest = r.get("boot_marginal_s")
        lines.append(f"{name}: " + ", ".join(f"{c} {s} s" for c, s in seq)
                     + f"; first kernel of the lane {r.get('boot_first_s')} s, each further boot "
                     f"combination (median) {rest} s (target <= 120 s); boots "
                     + ", ".join(f"{v} s" for v in r.get("boot_s", {}).values()))
    if result.get("tuxmake_dropped"):
        d = result["tuxmake_dropped"]
        lines.append(f"TuxMake on a silently dropped option: exit {d.get('exit_status')}, "
                     f"{' | '.join(d.get('summary', []))}; DUPS in .config: "
                     f"{d.get('dups_in_config')}")
    return "\n".join(lines)


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
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0

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
    ctx = {"matrix": matrix, "matrix_path": matrix.path, "tree": tree, "symbols": symbols,
           "combos": combos, "all_combos": all_combos, "client": client, "image": image,
           "tmp": tmp, "kmcache": tmp / "kmatrix-cache", "boots": boots}
    print(f"bench: {len(combos)} combinations, tree {tree.path}, image {image}, scratch {tmp}",
          flush=True)
    result = {"machine": machine(), "combos": len(combos), "combination_ids": [c.id for c in combos],
              "tree": {"path": str(tree.path), "version": tree.version, "origin": tree.origin},
              "image": image, "approaches": []}

    def record(fig: dict) -> None:
        result["approaches"].append(fig)
        print(f"bench: {fig.get('approach')}: " + json.dumps(
            {k: fig.get(k) for k in ("wall_s", "cpu_s", "marginal_median_s", "invocations",
                                     "real_compiles", "minimum", "peak_rss_mib", "error")}),
            flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")

    try:
        if not args.skip_kmatrix:
            for policy in [p.strip() for p in args.policies.split(",") if p.strip()]:
                name = "kmatrix" if policy == "nearest" else f"kmatrix-{policy}"
                trees = ("--trees", policy)
                for phase in ("cold", "warm"):  # the warm run reuses the cold run's cache
                    record(run_kmatrix(f"{name}-{phase}", ctx, tmp / f"results-{name}-{phase}",
                                       tmp / f"cache-{policy}", trees))
        if not args.skip_boot and boots:
            for label in ("boot-cold", "boot-warm"):
                record(boot_figures(run_kmatrix(label, ctx, tmp / f"results-{label}",
                                                tmp / "boot-cache", (), boots), boots))
        if not args.skip_naive:
            record(run_naive(ctx))
        if not args.skip_tuxmake:
            result["tuxmake_dropped"] = tuxmake_dropped_case(ctx)
            record(run_tuxmake(ctx, args.tuxmake_combos or len(combos), "dir"))
            record(run_tuxmake(ctx, args.tuxmake_combos or len(combos), "kernel"))
        text = report(result)
        result["report"] = text
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        print()
        print(text)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
