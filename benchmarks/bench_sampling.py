#!/usr/bin/env python3
"""How many builds reach 100 % pairwise coverage of the kernel/module/ options (issue 15):
pairwise sampling versus random sampling versus one option at a time.

Every arm is resolved with the tree's own Kconfig (no compiler): coverage after Kconfig is a
property of the resolved configs, so the number of builds each arm needs is exact without
building them. The wall time of a build is then measured on a subset (the pairwise arm's
combinations through `kmatrix run`, object tier) and multiplied out, said so in the output.

Arms (the same axes, common values and repair as the matrix, default `matrix-pairwise.yaml`):
- pairwise: the covertable sample under Kconfig's constraints, then kmatrix's cover
  combinations until every satisfiable pair is covered (what `kmatrix run` does);
- random: rows of uniformly random axis values (Python's random.Random(seed), one stream per
  seed), repaired like the sample's rows, resolved one by one until every satisfiable pair (the
  set the pairwise arm established) is covered or --random-max rows were tried; --random-seeds
  seeds, the median reported;
- one-at-a-time: the base, then each axis value that differs from the base alone (today's
  default matrix's shape): its coverage, which never reaches 100 % (two options are never both
  on together).

    python3 benchmarks/bench_sampling.py --out docs/bench/sampling.json          # Kconfig only
    python3 benchmarks/bench_sampling.py --build --out docs/bench/sampling.json  # + timed builds
    python3 benchmarks/bench_sampling.py --report docs/bench/sampling.json       # reprint
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import cover, coverage, kconfig, resolve, session, source  # noqa: E402
from harness import matrix as matrixmod  # noqa: E402
from harness.kconfig.session import KconfigSession  # noqa: E402
from harness.matrix import Combination, Matrix  # noqa: E402
from harness.sample import Axis  # noqa: E402
from harness.settings import RunSettings  # noqa: E402


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "load_before": os.getloadavg()[0]}


class Bench:
    """One tree, one Kconfig scratch area, one resolution memo: every arm resolves through
    `harness.resolve.resolve_all`, as a run does."""

    def __init__(self, matrix_path: Path, work: Path) -> None:
        self.matrix, tree, self.symbols = session.load_checked(
            session.Options(matrix=matrix_path, results=work / "results"))
        self.tree = tree.path
        cache = source.cache_root()
        self.tag, _client, self.runner = session.open_engine(cache)
        self.work = work
        self.log = open(work / "kconfig.log", "w")  # noqa: SIM115 - closed at the end
        self.settings = RunSettings(
            run_id="bench-sampling", matrix_path=str(self.matrix.path), run_dir=str(work),
            cache=str(cache), tree=str(self.tree), kernel={"version": tree.version},
            image=self.tag, workers=1, jobs=2)
        base_session = KconfigSession(self.tree, work / "base", self.runner, self.log,
                                      arch=self.matrix.arch)
        self.base = base_session.config_target(self.matrix.base)
        self.kconfig_s = 0.0

    def resolve(self, m: Matrix, known: dict[str, resolve.Resolution]
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


def pairwise_arm(b: Bench) -> dict[str, object]:
    m = matrixmod.load_matrix(b.matrix.path)
    start = time.monotonic()
    b.kconfig_s = 0.0
    impossible = cover.sample_first(b.tree, m, b.symbols, b.runner, b.base, b.work / "scratch",
                                    b.log, print)
    rows = len(m.combinations)
    found = b.resolve(m, {})
    found, cov = cover.complete(m, b.base, found, impossible, b.resolve, print)
    return {"axes": [a.symbol for a in m.axes], "rows": rows, "builds": len(found),
            "added": cov.added, "coverage": cov.percent, "covered": cov.covered,
            "satisfiable": cov.satisfiable, "total": cov.total,
            "unsatisfiable": [[coverage.tuple_text(u.values), u.reason] for u in cov.unsatisfiable],
            "uncovered": [[coverage.tuple_text(u.values), u.reason] for u in cov.uncovered],
            "combinations": [{"id": c.id, "values": dict(c.values)} for c in m.combinations],
            "kconfig_s": round(b.kconfig_s, 1), "wall_s": round(time.monotonic() - start, 1),
            "_satisfiable_set": None}


def random_arm(b: Bench, axes: list[Axis], satisfiable: set[tuple], seed: int, limit: int
               ) -> dict[str, object]:
    rng = random.Random(seed)
    m = matrixmod.load_matrix(b.matrix.path)
    m.combinations, m.axes, m.axes_from = [], axes, ()
    found: dict[str, resolve.Resolution] = {}
    curve = []
    start, b.kconfig_s = time.monotonic(), 0.0
    for i in range(limit):
        values = tuple((a.symbol, rng.choice(a.values)) for a in axes)
        m.combinations.append(Combination(f"random-{seed}-{i + 1:03d}", values, 0, None, True))
        found = b.resolve(m, found)
        held = coverage.covered_tuples(b.held(found, axes), 2)
        got = len(satisfiable & set(held))
        curve.append(got)
        print(f"random seed {seed}: {i + 1} rows, {got}/{len(satisfiable)} pairs", flush=True)
        if got == len(satisfiable):
            break
    builds = len(curve) if curve and curve[-1] == len(satisfiable) else None
    return {"seed": seed, "builds": builds, "tried": len(curve), "curve": curve,
            "coverage": 100.0 * curve[-1] / len(satisfiable),
            "kconfig_s": round(b.kconfig_s, 1), "wall_s": round(time.monotonic() - start, 1)}


def one_at_a_time_arm(b: Bench, axes: list[Axis], satisfiable: set[tuple]) -> dict[str, object]:
    m = matrixmod.load_matrix(b.matrix.path)
    m.axes, m.axes_from = axes, ()
    combos = [Combination("one-base", (), 0, None, True)]
    for a in axes:
        now = coverage.resolved_value(b.base, {}, a.symbol)
        for v in a.values:
            if v != now:
                combos.append(Combination(f"one-{kconfig.bare_name(a.symbol).lower()}-{v}",
                                          ((a.symbol, v),), 0, None, True))
    m.combinations = combos
    start, b.kconfig_s = time.monotonic(), 0.0
    found = b.resolve(m, {})
    held = coverage.covered_tuples(b.held(found, axes), 2)
    got = len(satisfiable & set(held))
    return {"builds": len(combos), "covered": got, "coverage": 100.0 * got / len(satisfiable),
            "kconfig_s": round(b.kconfig_s, 1), "wall_s": round(time.monotonic() - start, 1)}


def timed_builds(matrix_path: Path, work: Path) -> dict[str, object]:
    """The pairwise arm's combinations through `kmatrix run` (object tier, -j2, warm cache):
    the wall time of the run and each combination's duration."""
    results = work / "build-results"
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(matrix_path),
                           "--results", str(results), "--workers", "1", "--jobs", "2"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    run_dir = (results / "latest").resolve()
    per = {}
    for rec in run_dir.glob("*/record.json"):
        data = json.loads(rec.read_text())
        per[data["combination"]] = {"verdict": data["verdict"], "duration_s": data["duration_s"]}
    return {"exit": done.returncode, "wall_s": round(wall, 1), "combinations": per,
            "median_s": statistics.median([p["duration_s"] for p in per.values()]) if per else None,
            "tail": done.stdout[-1500:]}


def report(data: dict) -> str:
    p, o, rs = data["pairwise"], data["one_at_a_time"], data["random"]
    built = [r["builds"] for r in rs if r["builds"] is not None]
    per_build = (data.get("builds") or {}).get("median_s")
    lines = [f"# Pairwise coverage of {len(p['axes'])} options, {data['date']} "
             f"({data['machine']['cpus']} cores, {data['machine']['cpu']}; load "
             f"{data['machine']['load_before']:.1f} at the start)",
             f"satisfiable pairs: {p['satisfiable']} of {p['total']} "
             f"({len(p['unsatisfiable'])} unsatisfiable)",
             "",
             "| arm | builds to 100 % | coverage reached | Kconfig time | est. build time |",
             "| --- | --- | --- | --- | --- |"]

    def est(n: int | None) -> str:
        return f"{n * per_build / 60:.0f} min" if n and per_build else "-"

    lines.append(f"| pairwise (covertable + cover) | {p['builds']} ({p['rows']} sampled + "
                 f"{len(p['added'])} added) | {p['coverage']:.1f} % | {p['kconfig_s']:.0f} s "
                 f"| {est(p['builds'])} |")
    med = statistics.median(built) if built else None
    lines.append(f"| random ({len(rs)} seeds) | median {med if med is not None else '-'} "
                 f"(each: {', '.join(str(r['builds'] or '>' + str(r['tried'])) for r in rs)}) "
                 f"| {statistics.median([r['coverage'] for r in rs]):.1f} % "
                 f"| {statistics.median([r['kconfig_s'] for r in rs]):.0f} s "
                 f"| {est(int(med) if med else None)} |")
    lines.append(f"| one at a time | never ({o['builds']} builds) | {o['coverage']:.1f} % "
                 f"| {o['kconfig_s']:.0f} s | {est(o['builds'])} |")
    if per_build:
        b = data["builds"]
        lines += ["", f"Build time per combination: median {per_build:.0f} s, measured on the "
                  f"pairwise arm's {len(b['combinations'])} combinations through `kmatrix run` "
                  f"(object tier, make -j2, warm cache; the run took {b['wall_s']:.0f} s wall)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--matrix", type=Path, default=REPO / "matrix-pairwise.yaml")
    ap.add_argument("--random-seeds", type=int, default=3)
    ap.add_argument("--random-max", type=int, default=60, help="rows tried per random seed")
    ap.add_argument("--build", action="store_true",
                    help="also run the pairwise arm's combinations through kmatrix run (timed)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--report", type=Path, help="print the table of an earlier --out file")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())), end="")
        return 0
    work = Path(tempfile.mkdtemp(prefix="kmatrix-bench-sampling-", dir=args.workdir))
    try:
        b = Bench(args.matrix, work)
        data: dict[str, object] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                   "machine": machine(), "matrix": str(args.matrix)}
        p = pairwise_arm(b)
        axes = [Axis(s, ("y", "n")) for s in p["axes"]]  # type: ignore[union-attr]
        known = {a.symbol: a for a in cover.tree_axes(matrixmod.load_matrix(args.matrix),
                                                      b.tree, b.symbols)}
        axes = [known.get(a.symbol, a) for a in axes]
        unsat = {u[0] for u in p["unsatisfiable"]}  # type: ignore[union-attr]
        from harness.sample import all_tuples

        satisfiable = {t for t in all_tuples(axes, 2) if coverage.tuple_text(t) not in unsat}
        p.pop("_satisfiable_set")
        data["pairwise"] = p
        data["one_at_a_time"] = one_at_a_time_arm(b, axes, satisfiable)
        data["random"] = [random_arm(b, axes, satisfiable, seed, args.random_max)
                          for seed in range(1, args.random_seeds + 1)]
        if args.build:
            data["builds"] = timed_builds(args.matrix, work)
        text = report(data)
        print(text, end="")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(data, indent=2) + "\n")
        b.log.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
