"""Speed, part two (issue 16): the whole run's shape, and its cost as the matrix grows.

For each matrix (the default one; synthetic ones of N object-tier combinations made from the
default matrix's kernel/module/ options) and each scheduler (`before`: every build at make -j1,
as before the core budget; `after`: the core budget of harness/cores.py), one cold run (a fresh,
empty KMATRIX_CACHE: no seed, no ccache, no trees; the unpacked kernel source and the builder
image are shared) and optionally a warm rerun, each measured:

  wall, CPU time of the run's own containers and processes, CPU busy % (that CPU time over
  cores x wall), compiler runs (the CC/AS/HOSTCC lines of the build logs), the resolve step's
  seconds, disk of the cache afterwards, the verdicts, the 1-minute load average, and the
  run's own cores busy against time (sampled every second from its containers' cgroups and
  /proc/stat), plotted into docs/ (matplotlib).

    python3 -m nox -s bench_speed                     # default matrix, before and after, cold
    python3 -m nox -s bench_speed -- --sizes default,x86-gcc,60,200 --warm
    python benchmarks/bench_speed.py --plot-only results/bench-speed.json --plot docs/x.png
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import bench_measure as measure
import yaml

ROOT = Path(__file__).resolve().parent.parent
Fig = dict[str, Any]


class Timeline(measure.Monitor):
    """The Monitor of bench_matrix.py, plus the run's own cores busy at every second."""

    def __init__(self, client: Any, prefixes: list[Path | str]) -> None:
        super().__init__(client, prefixes, interval=1.0)
        self.points: list[tuple[float, float, float]] = []  # (t, own cores busy, all cores busy)
        self._last: tuple[float, float, int] | None = None

    def sample(self) -> None:
        super().sample()
        now = time.monotonic()
        own = sum(self.cpu_ns.values()) / 1e9
        busy = measure.busy_jiffies()
        if self._last is not None:
            t0, own0, busy0 = self._last
            dt = max(1e-3, now - t0)
            self.points.append((round(now - self.t0, 1), round(max(0.0, own - own0) / dt, 2),
                                round((busy - busy0) / measure.CLK_TCK / dt, 2)))
        self._last = (now, own, busy)


def synthetic_matrix(n: int, seed: int, out: Path) -> Path:
    """N object-tier combinations over the default matrix's kernel/module/ options: each the
    union of one to three of its (non-boot) include entries, distinct, repaired where needed."""
    base = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    features = [e["config"] for e in base["include"] if not e.get("boot")]
    rng = random.Random(seed)
    seen: set[str] = set()
    include = []
    while len(include) < n and len(seen) < 10 * n + 100:
        picked = rng.sample(features, rng.randint(1, 3))
        config: dict[str, str] = {}
        for f in picked:
            config.update(f)
        key = json.dumps(sorted(config.items()))
        if key in seen:
            seen.add(key + "x")
            continue
        seen.add(key)
        include.append({"id": f"syn-{len(include):03d}", "config": config, "repair": True})
    matrix = {k: v for k, v in base.items() if k not in ("axes", "exclude", "include")}
    matrix["include"] = include
    matrix["kernel"] = dict(base["kernel"])
    path = out / f"matrix-synthetic-{n}.yaml"
    path.write_text(yaml.safe_dump(matrix, sort_keys=False))
    return path


def own_variant_matrix(out: Path) -> Path:
    """The default matrix without the combinations that set their own architecture or
    toolchain (clang-16, arm64): the 18 x86_64 gcc combinations issue 16's targets were set on."""
    base = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    base["include"] = [e for e in base["include"] if "arch" not in e and "toolchain" not in e]
    path = out / "matrix-default-x86-gcc.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def compiler_runs(run_dir: Path) -> int:
    logs = [run_dir / "seed.log", *run_dir.glob("*/build.log")]
    return sum(measure.count_tags(logs).values())


def disk_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_blocks * 512
    return total


def resolve_seconds(log: str) -> float | None:
    m = re.search(r"resolved \d+ combinations with Kconfig in (\d+) s", log)
    return float(m.group(1)) if m else None


def one_run(label: str, matrix: Path, cache: Path, results: Path, extra: list[str],
            client: Any, work: Path) -> Fig:
    env = dict(os.environ, KMATRIX_CACHE=str(cache))
    argv = [sys.executable, "-m", "harness", "run", str(matrix), "--results", str(results), *extra]
    log = work / f"{label}.log"
    with Timeline(client, [cache, results]) as mon:
        code = measure.run_logged(argv, log, mon, env=env, cwd=ROOT)
    fig = mon.figures()
    runs = sorted(p for p in results.iterdir() if p.is_dir() and not p.is_symlink())
    run_dir = runs[-1] if runs else None
    verdicts: dict[str, str] = {}
    if run_dir is not None:
        for record in run_dir.glob("*/record.json"):
            data = json.loads(record.read_text())
            verdicts[data["combination"]] = data.get("verdict") or "none"
    cores = os.cpu_count() or 1
    text = log.read_text(errors="replace")
    text = text[text.rfind("\n$ "):]  # this run's part (the log is appended to, run after run)
    fig.update({
        "label": label, "exit_status": code, "command": " ".join(argv),
        "combinations": len(verdicts), "verdicts": dict(sorted(verdicts.items())),
        "cpu_busy_pct": round(100 * fig["cpu_s"] / (cores * fig["wall_s"]), 1),
        "compiler_runs": compiler_runs(run_dir) if run_dir else 0,
        "resolve_s": resolve_seconds(text),
        "disk_cache_mib": round(disk_bytes(cache) / 2**20),
        "timeline": mon.points,
    })
    return fig


def plot(data: Fig, path: Path, labels: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in data["runs"] if r.get("timeline") and (
        r["label"] in labels if labels else
        r["label"].endswith("-cold") and r["label"].startswith("default-") and
        "x86-gcc" not in r["label"])]
    if not runs:
        return
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 2.6 * len(runs)), sharex=True,
                             squeeze=False)
    cores = data["machine"].get("cores", 2)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        t = [p[0] for p in run["timeline"]]
        ax.fill_between(t, [p[1] for p in run["timeline"]], step="post", alpha=0.6,
                        label="this run's containers")
        ax.plot(t, [p[2] for p in run["timeline"]], linewidth=0.6, color="grey",
                label="whole machine (other users too)")
        ax.axhline(cores, color="black", linewidth=0.5)
        ax.set_ylim(0, cores + 0.3)
        ax.set_ylabel("cores busy")
        ax.set_title(f"{run['label']}: {run['wall_s']:.0f} s wall, {run['cpu_busy_pct']} % of "
                     f"{cores} cores x wall, load avg {run.get('loadavg_mean')}", fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds since the run started")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def table(data: Fig) -> str:
    lines = ["| run | combinations | wall s | CPU s | CPU busy % | compiler runs | resolve s | "
             "disk MiB | load avg | exit |", "|" + " --- |" * 10]
    for r in data["runs"]:
        lines.append(f"| {r['label']} | {r['combinations']} | {r['wall_s']} | {r['cpu_s']} | "
                     f"{r['cpu_busy_pct']} | {r['compiler_runs']} | {r['resolve_s']} | "
                     f"{r['disk_cache_mib']} | {r.get('loadavg_mean')} | {r['exit_status']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="default", help="default (the default matrix; 18 is "
                    "accepted too), x86-gcc (its combinations that build with its own arch and "
                    "toolchain: the 18 of issue 16) and/or N: a synthetic matrix of N "
                    "object-tier combinations (comma-separated)")
    ap.add_argument("--modes", default="before,after", help="before (make -j1) and/or after")
    ap.add_argument("--warm", action="store_true", help="also a warm rerun after each cold one")
    ap.add_argument("--work", default="results/bench-speed-work", help="caches and results")
    ap.add_argument("--out", default=time.strftime("results/bench-speed-%Y%m%dT%H%M%SZ.json",
                                                   time.gmtime()),
                    help="the figures (JSON); default: stamped, so no run overwrites another")
    ap.add_argument("--plot", default="docs/bench/cpu-timeline.png")
    ap.add_argument("--plot-only", nargs="+", metavar="JSON",
                    help="only draw --plot from these JSON files (their runs together)")
    ap.add_argument("--labels", help="the runs to plot (comma-separated labels; default: "
                    "the default matrix's cold runs)")
    ap.add_argument("--keep", action="store_true", help="keep the caches (disk) afterwards")
    args = ap.parse_args(argv)
    if args.plot_only:
        parts = [json.loads(Path(p).read_text()) for p in args.plot_only]
        data = {**parts[0], "runs": [r for part in parts for r in part["runs"]]}
        plot(data, Path(args.plot), args.labels.split(",") if args.labels else None)
        print(table(data))
        return 0
    from harness.container import connect

    client = connect()
    work = (ROOT / args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data: Fig = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "machine": {**measure.machine(), "cores": os.cpu_count()},
                 "commit": measure._git("rev-parse", "HEAD"), "runs": []}
    for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        if size in ("default", "18"):
            matrix, name = ROOT / "matrix.yaml", "default"
        elif size == "x86-gcc":
            matrix, name = own_variant_matrix(work), "default-x86-gcc"
        else:
            matrix, name = synthetic_matrix(int(size), 1, work), f"synthetic-{size}"
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            extra = ["--jobs", "1"] if mode == "before" else []
            cache = measure.fresh_cache(work, f"cache-{name}-{mode}")
            results = work / f"results-{name}-{mode}"
            shutil.rmtree(results, ignore_errors=True)
            for temp in ("cold", "warm") if args.warm else ("cold",):
                fig = one_run(f"{name}-{mode}-{temp}", matrix, cache, results, extra, client, work)
                data["runs"].append(fig)
                print(table({"runs": [fig]}).splitlines()[-1], flush=True)
                Path(args.out).write_text(json.dumps(data, indent=1))
            if not args.keep:
                shutil.rmtree(cache, ignore_errors=True)
    data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    Path(args.out).write_text(json.dumps(data, indent=1))
    plot(data, Path(args.plot))
    print(table(data))
    # the verdicts of both schedulers must agree, combination by combination
    differ = []
    for r in data["runs"]:
        other = r["label"].replace("-after-", "-before-")
        match = next((x for x in data["runs"] if x["label"] == other), None)
        if match is not None and other != r["label"] and match["verdicts"] != r["verdicts"]:
            differ.append(r["label"])
    if differ:
        print(f"verdicts differ between the schedulers: {differ}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
