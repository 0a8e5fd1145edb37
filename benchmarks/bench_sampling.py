#!/usr/bin/env python3
"""How many builds reach 100 % pairwise coverage of the kernel/module/ options (issue 15):
pairwise sampling versus random sampling versus one option at a time, and their wall time.

Coverage after Kconfig is a property of the resolved configs, so each arm's number of builds
is exact from Kconfig alone (the tree's own `make olddefconfig` / `make randconfig` in the
builder container, no compiler). The Kconfig wall time of each arm is measured here; the build
time comes from real `kmatrix run`s: with `--build`, every arm is built (the pairwise matrix;
the first random seed's configs, each settled by olddefconfig and built with exactly its
values; the one-at-a-time combinations), each from a cold cache of its own; without it, from a
finished run of the pairwise matrix (`--run-dir`), the other arms estimated at its median time
per combination (said so in the table).

Arms, over the same axes and common values (default `matrix-pairwise.yaml`):
- pairwise: the covertable sample under Kconfig's constraints, then kmatrix's cover
  combinations until every satisfiable pair is covered (exactly what `kmatrix run` does);
- random: `make randconfig` restricted to the same options (what `kmatrix run --randconfig
  --randconfig-over axes` makes): KCONFIG_ALLCONFIG holds base + common values except the axes
  and the options the pairwise arm's repairs needed (so every value the pairwise arm reached is
  reachable), KCONFIG_SEED = seed*1000 + row; rows until every satisfiable pair is covered or
  --random-max; --random-seeds streams (side by side, one scratch tree each), the median
  reported;
- one at a time: the base, then each axis value that differs from the base alone, with repair
  (the default matrix's shape). It never covers two options on together.

    python3 benchmarks/bench_sampling.py --build --out bench-sampling.json   # every arm built
    python3 benchmarks/bench_sampling.py --run-dir results/latest --out bench-sampling.json
    python3 benchmarks/bench_sampling.py --report bench-sampling.json       # reprint the table
    python3 benchmarks/bench_sampling.py --report B.json --run-dir RUN --out B.json  # add builds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bench_measure
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import cover, coverage, kconfig, randconfig, resolve, session, source  # noqa: E402
from harness import matrix as matrixmod  # noqa: E402
from harness.kconfig import Config  # noqa: E402
from harness.kconfig.session import KconfigSession  # noqa: E402
from harness.matrix import Combination, Matrix  # noqa: E402
from harness.sample import Axis, Row, all_tuples  # noqa: E402
from harness.settings import RunSettings  # noqa: E402


def machine() -> dict[str, object]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "load": list(os.getloadavg())}


class Bench:
    """One tree, one Kconfig scratch area under the kmatrix cache, the resolution memo: every
    arm resolves through `harness.resolve.resolve_all`, as a run does."""

    def __init__(self, matrix_path: Path) -> None:
        self.matrix, tree, self.symbols = session.load_checked(
            session.Options(matrix=matrix_path, results=REPO / "results"))
        self.tree = tree.path
        cache = source.cache_root()
        self.tag, _client, self.runner = session.open_engine(cache)
        self.work = cache / "resolve" / f"bench-sampling-{session.new_run_id()}"
        self.work.mkdir(parents=True)
        self.log = (self.work / "kconfig.log").open("w")
        # cache=work: resolve.py's memo of resolutions lives in work/resolved, so every arm's
        # Kconfig time is measured cold (the kmatrix cache's memo would make it a lookup)
        self.settings = RunSettings(
            run_id="bench-sampling", matrix_path=str(self.matrix.path), run_dir=str(self.work),
            cache=str(self.work), tree=str(self.tree), kernel={"version": tree.version},
            image=self.tag, workers=1, jobs=2)
        self.base = KconfigSession(self.tree, self.work / "base", self.runner, self.log,
                                   arch=self.matrix.arch).config_target(self.matrix.base)
        self.fixed = cover.common_request(self.matrix, self.symbols)
        self.kconfig_s = 0.0

    def resolve(self, m: Matrix, _known: dict[str, resolve.Resolution]
                ) -> dict[str, resolve.Resolution]:
        start = time.monotonic()
        out = resolve.resolve_all(self.settings, m, self.symbols, self.runner, self.base,
                                  self.work / "scratch", self.log, workers=2)
        self.kconfig_s += time.monotonic() - start
        return out

    def held(self, found: dict[str, resolve.Resolution], axes: list[Axis]
             ) -> dict[str, dict[str, str]]:
        return {r.combination: coverage.axis_values(self.base, r.delta, axes)
                for r in found.values() if r.holds and not r.unsatisfiable}


def pairwise_arm(b: Bench) -> tuple[dict[str, object], list[Axis], set[Row], set[str]]:
    m = matrixmod.load_matrix(b.matrix.path)
    start, b.kconfig_s = time.monotonic(), 0.0
    impossible = cover.sample_first(b.tree, m, b.symbols, b.runner, b.base, b.work / "scratch",
                                    b.log, print)
    rows = len(m.combinations)
    found = b.resolve(m, {})
    found, cov = cover.complete(m, b.base, found, impossible, b.resolve, print)
    built = [c.id for c in m.combinations if found[c.id].holds and not found[c.id].unsatisfiable]
    unsat = {tuple(tuple(p) for p in u.values) for u in cov.unsatisfiable}
    satisfiable = {t for t in all_tuples(m.axes, 2) if t not in unsat}
    repaired = {s for r in found.values() for s in r.added}
    return ({"axes": [a.symbol for a in m.axes], "rows": rows, "builds": len(built),
             "added": cov.added, "coverage": cov.percent, "covered": cov.covered,
             "satisfiable": cov.satisfiable, "total": cov.total,
             "unsatisfiable": [[coverage.tuple_text(u.values), u.reason]
                               for u in cov.unsatisfiable],
             "uncovered": [[coverage.tuple_text(u.values), u.reason] for u in cov.uncovered],
             "combinations": [{"id": c.id, "values": dict(c.values)} for c in m.combinations],
             "kconfig_s": round(b.kconfig_s, 1), "wall_s": round(time.monotonic() - start, 1)},
            m.axes, satisfiable, repaired)


def random_arm(b: Bench, axes: list[Axis], satisfiable: set[Row], free: list[str], seed: int,
               limit: int) -> dict[str, object]:
    values = randconfig.allconfig(b.base, b.fixed, free, "axes")
    ks = KconfigSession(b.tree, b.work / f"random-{seed}", b.runner, b.log, arch=b.matrix.arch)
    held: set[Row] = set()
    curve: list[int] = []
    start = time.monotonic()
    configs: list[Config] = []
    for i in range(limit):
        config = randconfig.random_config(ks, values, seed * 1000 + i)
        configs.append(config)
        row = {a.symbol: coverage.resolved_value(config, {}, a.symbol) for a in axes}
        held |= {t for t in coverage.covered_tuples({"r": row}, 2) if t in satisfiable}
        curve.append(len(held))
        print(f"random seed {seed}: {i + 1} configs, {len(held)}/{len(satisfiable)} pairs",
              flush=True)
        if len(held) == len(satisfiable):
            break
    done = curve[-1] == len(satisfiable)
    return {"seed": seed, "builds": len(curve) if done else None, "tried": len(curve),
            "curve": curve, "coverage": 100.0 * curve[-1] / len(satisfiable),
            "missing": [coverage.tuple_text(t) for t in sorted(satisfiable - held)],
            "kconfig_s": round(time.monotonic() - start, 1), "configs": configs}


def one_at_a_time_arm(b: Bench, axes: list[Axis], satisfiable: set[Row]) -> dict[str, object]:
    m = matrixmod.load_matrix(b.matrix.path)
    m.axes, m.axes_from = axes, ()
    combos = [Combination("one-base", (), 0, None, True)]
    for a in axes:
        now = coverage.resolved_value(b.base, {}, a.symbol)
        combos += [Combination(f"one-{kconfig.bare_name(a.symbol).lower()}-{v}",
                               ((a.symbol, v),), 0, None, True) for v in a.values if v != now]
    m.combinations = combos
    b.kconfig_s = 0.0
    found = b.resolve(m, {})
    built = b.held(found, axes)
    got = len(satisfiable & set(coverage.covered_tuples(built, 2)))
    return {"builds": len(built), "combinations": len(combos), "covered": got,
            "coverage": 100.0 * got / len(satisfiable), "kconfig_s": round(b.kconfig_s, 1),
            "built": [{"id": c.id, "config": dict(c.values)} for c in combos
                      if c.id in built]}


def arm_matrix(src: Path, entries: list[dict[str, object]], repair: bool, out: Path) -> Path:
    """The pairwise matrix's kernel, base, fixed values, build and expectations, with `entries`
    (id, config) as its combinations instead of the sample."""
    data = yaml.safe_load(src.read_text())
    m = {k: v for k, v in data.items() if k not in ("axes", "exclude", "include", "sample")}
    m["repair"] = repair
    m["include"] = entries
    out.write_text(yaml.safe_dump(m, sort_keys=False))
    return out


def build_arm(name: str, matrix_path: Path, work: Path, extra: list[str]) -> dict[str, object]:
    """One arm built for real: `kmatrix run` of its matrix with a cold cache of its own (it
    shares only the unpacked kernel source), so no arm profits from another's ccache or trees.
    Wall time from the command's start to its end: resolve, seed, builds, link checks."""
    cache = bench_measure.fresh_cache(work, f"cache-{name}")
    results = work / f"results-{name}"
    argv = [sys.executable, "-m", "harness", "run", str(matrix_path), "--results", str(results),
            *extra]
    print(f"bench-sampling: building the {name} arm: {' '.join(argv)}", flush=True)
    start = time.monotonic()
    with (work / f"{name}.log").open("w") as log:
        code = subprocess.run(argv, cwd=REPO, env=dict(os.environ, KMATRIX_CACHE=str(cache)),
                              stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.monotonic() - start
    run_dir = (results / "latest").resolve()
    out = measured_builds(run_dir) if run_dir.is_dir() else {}
    shutil.rmtree(cache, ignore_errors=True)
    return {**out, "arm": name, "exit_status": code, "command": " ".join(argv),
            "total_s": round(wall, 1)}


def build_arms(b: Bench, data: dict, matrix_path: Path, work: Path) -> dict[str, object]:
    """Every arm's builds, for real: the pairwise matrix as `kmatrix run` samples and completes
    it; the first random seed's configs (settled by olddefconfig, as a build settles them),
    each a combination with exactly its values; the one-at-a-time combinations, repaired."""
    work.mkdir(parents=True, exist_ok=True)
    first = data["random"][0]
    ks = KconfigSession(b.tree, b.work / "settle", b.runner, b.log, arch=b.matrix.arch)
    rand: list[dict[str, object]] = [{"id": f"random-{i + 1:02d}",
             "config": randconfig.random_values(b.base, ks.olddefconfig(c))}
            for i, c in enumerate(first["configs"])]
    one = data["one_at_a_time"]["built"]
    return {
        "pairwise": build_arm("pairwise", matrix_path, work, []),
        "random": build_arm("random", arm_matrix(matrix_path, rand, False,
                                                 work / "matrix-random.yaml"), work, []),
        "one_at_a_time": build_arm("one-at-a-time", arm_matrix(
            matrix_path, one, True, work / "matrix-one-at-a-time.yaml"), work, []),
    }


def measured_builds(run_dir: Path) -> dict[str, object]:
    """A real `kmatrix run` of the pairwise matrix: its build wall time (first record start to
    last record end) and each combination's duration."""
    recs = [json.loads(p.read_text()) for p in run_dir.glob("*/record.json")]
    starts = [dt.datetime.fromisoformat(r["started"]) for r in recs]
    ends = [dt.datetime.fromisoformat(r["finished"]) for r in recs if r["finished"]]
    return {"run": str(run_dir), "combinations": len(recs),
            "verdicts": {r["combination"]: r["verdict"] for r in recs},
            "wall_s": round((max(ends) - min(starts)).total_seconds(), 1),
            "median_s": round(statistics.median(r["duration_s"] for r in recs
                                                if r["verdict"] != "unsatisfiable"), 1)}


def report(data: dict) -> str:
    p, o, rs = data["pairwise"], data["one_at_a_time"], data["random"]
    per = (data.get("builds") or {}).get("median_s")
    mach = data["machine"]
    lines = [f"Pairwise coverage of {len(p['axes'])} options on {data['date']} ({mach['cpus']} "
             f"cores, {mach['cpu']}; shared with other work: load {mach['load'][0]:.1f} at the "
             f"start, {data['load_end'][0]:.1f} at the end)",
             f"satisfiable pairs: {p['satisfiable']} of {p['total']} "
             f"({len(p['unsatisfiable'])} unsatisfiable)", "",
             "| arm | builds to 100 % | coverage reached | Kconfig wall time | build wall time |",
             "| --- | --- | --- | --- | --- |"]

    def est(n: int | None) -> str:
        return f"~{n * per / 60:.0f} min (estimated: {n} x {per:.0f} s)" if n and per else "-"

    real = data.get("built") or {}

    def measured(arm: str, fallback: str) -> str:
        r = real.get(arm)
        if not r:
            return fallback
        verdicts: dict[str, int] = {}
        for v in r.get("verdicts", {}).values():
            verdicts[v] = verdicts.get(v, 0) + 1
        return (f"{r['total_s'] / 60:.1f} min built (`kmatrix run`, cold cache: "
                f"{r.get('combinations', 0)} combinations, "
                f"{', '.join(f'{n} {v}' for v, n in sorted(verdicts.items()))}, exit "
                f"{r['exit_status']})")

    b = data.get("builds")
    built = measured("pairwise", f"{b['wall_s'] / 60:.1f} min (measured)" if b else "-")
    held = p["builds"] - len(p["added"])
    lines.append(f"| pairwise (covertable + cover) | {p['builds']} ({held} of {p['rows']} sampled "
                 f"rows hold, {len(p['added'])} added) | {p['coverage']:.1f} % | "
                 f"{p['kconfig_s']:.0f} s | {built} |")
    done = [r["builds"] for r in rs if r["builds"] is not None]
    med = statistics.median(done) if len(done) == len(rs) else None
    each = ", ".join(str(r["builds"]) if r["builds"] else f">{r['tried']}" for r in rs)
    lines.append(f"| random (randconfig over the same options, {len(rs)} seeds) | "
                 f"{'median ' + format(med, 'g') if med else 'not reached'} ({each}) | "
                 f"{statistics.median(r['coverage'] for r in rs):.1f} % (median) | "
                 f"{statistics.median(r['kconfig_s'] for r in rs):.0f} s (median) | "
                 f"""{measured('random', est(int(med)) if med else 'more than ' + est(
                     max(r['tried'] for r in rs)))} |""")
    lines.append(f"| one at a time | never ({o['builds']} builds) | {o['coverage']:.1f} % "
                 f"| {o['kconfig_s']:.0f} s | {measured('one_at_a_time', est(o['builds']))} |")
    if real.get("random"):
        lines.append(f"\nThe random arm built is seed 1's {data['random'][0]['tried']} configs.")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--matrix", type=Path, default=REPO / "matrix-pairwise.yaml")
    ap.add_argument("--run-dir", type=Path,
                    help="a finished `kmatrix run` of the same matrix: its build times")
    ap.add_argument("--random-seeds", type=int, default=3)
    ap.add_argument("--random-max", type=int, default=60, help="configs tried per random seed")
    ap.add_argument("--build", action="store_true",
                    help="build every arm for real (`kmatrix run`, a cold cache each): the "
                    "pairwise matrix, the first random seed's configs, the one-at-a-time ones")
    ap.add_argument("--work", type=Path, default=REPO / "results" / "bench-sampling-work",
                    help="with --build: the arms' matrices, logs, caches and results")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--report", type=Path, help="print the table of an earlier --out file")
    args = ap.parse_args()
    if args.report:  # reprint; with --run-dir, add the build times of a run finished since
        data = json.loads(args.report.read_text())
        if args.run_dir:
            data["builds"] = measured_builds(args.run_dir.resolve())
            if args.out:
                args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(report(data), end="")
        return 0
    b = Bench(args.matrix)
    data: dict[str, object] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "machine": machine(), "matrix": str(args.matrix)}
    p, axes, satisfiable, repaired = pairwise_arm(b)
    data["pairwise"] = p
    data["one_at_a_time"] = one_at_a_time_arm(b, axes, satisfiable)
    free = [a.symbol for a in axes] + sorted(repaired - {a.symbol for a in axes})
    data["random_free"] = free
    with ThreadPoolExecutor(max_workers=args.random_seeds) as pool:  # one scratch tree each
        data["random"] = list(pool.map(
            lambda seed: random_arm(b, axes, satisfiable, free, seed, args.random_max),
            range(1, args.random_seeds + 1)))
    if args.run_dir:
        data["builds"] = measured_builds(args.run_dir.resolve())
    if args.build:
        data["built"] = build_arms(b, data, args.matrix.resolve(), args.work.resolve())
    for r in data["random"]:
        r.pop("configs", None)  # whole .config files: kept out of the figures
    data["load_end"] = list(os.getloadavg())
    b.log.close()
    print(report(data), end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2) + "\n")
    shutil.rmtree(b.work, ignore_errors=True)  # this run's own scratch trees only
    return 0


if __name__ == "__main__":
    sys.exit(main())
