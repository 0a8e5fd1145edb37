"""Measurement for benchmarks/bench_matrix.py: what an approach cost (wall, CPU of its containers
and host processes, the machine's busy time and load, peak memory), how many gcc steps ran and
the fewest a build needs, and the conditions of a run (machine, both sides' compilers, commit).

CPU and memory of containers come from cgroup v1 (`/sys/fs/cgroup/{cpuacct,memory}/docker`),
sampled every 0.25 s; a container is the approach's when its workdir label lies under one of
the approach's directories (other helpers' containers on a shared engine are not counted).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import re
import resource
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import bench_report as br

from harness import kconfig
from harness.container import WORKDIR_LABEL

ROOT = Path(__file__).resolve().parent.parent
Fig = dict[str, Any]  # one approach's figures, as they go into the JSON
CGROUP_CPU = Path("/sys/fs/cgroup/cpuacct/docker")
CGROUP_MEM = Path("/sys/fs/cgroup/memory/docker")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# kbuild's quiet tags for steps that run the gcc driver (compile, assemble, preprocess, host link)
GCC_TAGS = ("CC", "CC [M]", "AS", "HOSTCC", "HOSTCXX", "HOSTLD", "CPP", "LDS")
_TAG_RE = re.compile(r"^\s{1,2}(CC \[M\]|[A-Z][A-Z0-9_]*)\s+(\S+)\s*$")
_WILDCARD_RE = re.compile(r"\$\(wildcard include/config/([A-Za-z0-9_]+)\)")
_SAVEDCMD_RE = re.compile(r"^(?:saved)?cmd_(\S+) := (.*)$", re.M)


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
        self.loads: list[float] = []  # the 1-minute load average at every sample
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
        self.loads.append(os.getloadavg()[0])

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
            # the machine's load while the approach ran (everyone's, not only the approach's)
            "loadavg_mean": round(sum(self.loads) / len(self.loads), 2) if self.loads else None,
            "loadavg_max": round(max(self.loads), 2) if self.loads else None,
        }


def load_during(approaches: list[Fig]) -> Fig:
    """The machine's 1-minute load average over the measured approaches: the mean weighted by
    each approach's wall time, and the highest sample."""
    timed = [a for a in approaches if a.get("loadavg_mean") is not None and a.get("wall_s")]
    wall = sum(a["wall_s"] for a in timed)
    if not wall:
        return {}
    return {"loadavg_mean_during": round(sum(a["loadavg_mean"] * a["wall_s"] for a in timed)
                                         / wall, 2),
            "loadavg_max_during": max(a["loadavg_max"] for a in timed)}


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


def fresh_cache(work: Path, name: str) -> Path:
    """An empty KMATRIX_CACHE that shares only the unpacked kernel source (read-only)."""
    import shutil

    from harness import source

    cache = work / name
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    shared = source.cache_root() / "trees"
    if shared.is_dir():
        (cache / "trees").symlink_to(shared)
    return cache


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


# ---------------------------------------------------------------- the run's conditions

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


def tool_versions(client: Any, image: str, tux: str | None) -> Fig:
    """Both sides' compilers (TuxMake on the host: CROSS_COMPILE=x86_64-linux-gnu-), make,
    TuxMake and Docker, so a reader can see both sides compiled with the same gcc."""
    image_out = ""
    try:
        image_out = client.containers.run(
            image, ["sh", "-c", "gcc --version | head -1; dpkg-query -W -f '${Version}' "
                           "gcc-12; echo; make --version | head -1"],
            remove=True, network_mode="none").decode()
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        image_out = f"(could not run the builder image: {exc})"
    image_lines = image_out.splitlines() + ["", "", ""]
    host_gcc = _first_line(["x86_64-linux-gnu-gcc", "--version"])
    try:
        server = client.version().get("Version", "?")
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
