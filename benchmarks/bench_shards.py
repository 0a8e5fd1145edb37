#!/usr/bin/env python3
"""How kmatrix's nightly scales when runners are added (`nox -s bench_shards`).

Real part: a matrix run as N = 1, 2, 4, 8 shards (`--shards`), each shard in turn with this
machine's cores to itself and a cold cache of its own, as a fresh CI runner has them: an empty
KMATRIX_CACHE (no compiler cache, no seed tree, no output trees, no remembered Kconfig
resolutions); the builder image and the unpacked kernel tree are there (a runner restores the
first from its cache, and the tree is given with --kernel). Each shard's wall time is measured;
the slowest shard is the wall time N runners take, the sum is the machine time they spend.
The N shards are merged (`kmatrix merge`) and their verdicts checked against N = 1.

Synthetic part: the merge, compare and report cost for a run of `--synthetic` combinations
(1,000 by default) in 4 shard directories of fake records with logs and configs of real size.

    python3 benchmarks/bench_shards.py                                 # default object tier, N=1,2
    python3 benchmarks/bench_shards.py --shards 1,2,4,8 --all           # the whole default matrix
    python3 benchmarks/bench_shards.py --generate --shards 1,2,4,8      # the 64-combination matrix
    python3 benchmarks/bench_shards.py --skip-real                      # the synthetic part only
    python3 benchmarks/bench_shards.py --only dups-n.trace-n --only procfs --synthetic 50
                                                                        # the smallest check

Figures go to standard output (Markdown) and to --out (JSON); docs/nightly.md holds the
measured ones with machine and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# the default matrix's object tier (its 15 combinations without a boot)
OBJECT_TIER = ["dups-y.trace-y", "dups-y.trace-n", "dups-n.trace-n", "stats", "taint-tracking",
               "decompress", "signing", "modversions", "kallsyms", "procfs", "sysfs",
               "tree-lookup", "kmemleak", "kdb", "livepatch"]

GENERATED = """# 64 combinations: six kernel/module/ objects, each on and off (benchmarks/bench_shards.py)
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y}}
axes:
  CONFIG_PROC_FS: [y, n]
  CONFIG_SYSFS: [y, n]
  CONFIG_KALLSYMS: [y, n]
  CONFIG_MODULE_UNLOAD: [y, n]
  CONFIG_MODVERSIONS: [y, n]
  CONFIG_MODULE_SIG: [y, n]
short_names:
  CONFIG_PROC_FS: procfs
  CONFIG_SYSFS: sysfs
  CONFIG_KALLSYMS: kallsyms
  CONFIG_MODULE_UNLOAD: unload
  CONFIG_MODVERSIONS: modversions
  CONFIG_MODULE_SIG: sig
build: {{targets: [kernel/module/], timeout: 1800}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    procfs.o: PROC_FS
    sysfs.o: SYSFS
    kallsyms.o: KALLSYMS
    version.o: MODVERSIONS
    signing.o: MODULE_SIG
    tree_lookup.o: MODULES_TREE_LOOKUP
    tracking.o: MODULE_UNLOAD_TAINT_TRACKING
"""


def machine() -> dict[str, object]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cores": os.cpu_count(), "cpu": model, "load_at_start": os.getloadavg(),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def kmatrix(*args: str, env: dict[str, str]) -> tuple[int, float, str]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harness", *args], env=env, cwd=REPO,
                          capture_output=True, text=True)
    return done.returncode, time.monotonic() - start, done.stdout + done.stderr


def verdicts(run: Path) -> dict[str, str]:
    from harness.results import read_records

    return {r.combination: r.verdict_text for r in read_records(run)}


def real(matrix: Path, kernel: str, shards: list[int], only: list[str], extra: list[str],
         root: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    reference: dict[str, str] | None = None
    for n in shards:
        results = root / f"results-n{n}"
        shard_dirs, times = [], []
        for k in range(1, n + 1):
            cache = root / f"cache-n{n}-k{k}"  # empty: a fresh runner's cold cache
            env = {**os.environ, "KMATRIX_CACHE": str(cache), "PYTHONPATH": str(REPO)}
            before = set(results.glob("*/run.json"))
            status, seconds, out = kmatrix("run", str(matrix), "--shard", f"{k}/{n}",
                                           "--results", str(results), "--kernel", kernel,
                                           *[a for c in only for a in ("--only", c)], *extra,
                                           env=env)
            made = sorted(set(results.glob("*/run.json")) - before)
            if status not in (0, 1) or not made:
                raise SystemExit(f"shard {k}/{n} failed (exit {status}):\n{out[-3000:]}")
            shard_dirs.append(made[0].parent)
            combos = len(json.loads(made[0].read_text())["only"])
            times.append(seconds)
            print(f"N={n} shard {k}: {combos} combinations, {seconds:.0f} s (exit {status})",
                  flush=True)
            shutil.rmtree(cache, ignore_errors=True)
        merged = results / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-merged"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        status, merge_s, out = kmatrix("merge", str(merged), *map(str, shard_dirs), env=env)
        if status not in (0, 1):
            raise SystemExit(f"merge of N={n} failed (exit {status}):\n{out[-3000:]}")
        found = verdicts(merged)
        reference = reference or found
        rows.append({"shards": n, "shard_s": [round(t, 1) for t in times],
                     "wall_s": round(max(times), 1), "machine_s": round(sum(times), 1),
                     "merge_s": round(merge_s, 1), "combinations": len(found),
                     "same_verdicts_as_first": found == reference})
    base = rows[0]["wall_s"] if rows else 0
    for row in rows:
        row["speedup"] = round(float(base) / float(row["wall_s"]), 2) if row["wall_s"] else 0
    return rows


def synthetic(count: int, root: Path) -> dict[str, object]:
    """Merge, compare and reports of `count` combinations in 4 shards of fake records."""
    from harness import compare, history, merge, results
    from harness.results import Record, StageRecord
    from harness.settings import RunSettings

    log = "  CC      kernel/module/main.o\n" * 700  # about 25 KB, like a real build.log
    config = "CONFIG_X=y\n" * 1400  # about 15 KB, like a tinyconfig-based .config
    names = [f"c{i:04d}" for i in range(count)]
    parts = [names[i::4] for i in range(4)]
    fingerprint = {"matrix": "m.yaml x", "kernel": "k", "image": "i", "selection": "all",
                   "digest": "d"}

    def make(run_id: str, index: int, fail: set[str]) -> Path:
        run = root / "synthetic" / run_id
        settings = RunSettings(run_id=run_id, matrix_path="/x/m.yaml", run_dir=str(run),
                               cache="/c", tree="/t", kernel={"version": "6.12"}, image="i",
                               fingerprint=fingerprint, only=parts[index - 1],
                               shard={"index": index, "count": 4, "selection": [],
                                      "partition": parts, "partition_digest": "p"})
        run.mkdir(parents=True)
        settings.save()
        for cid in parts[index - 1]:
            verdict = "link-mismatch" if cid in fail else "pass"
            results.write_record(run, Record(
                combination=cid, run_id=run_id, matrix="/x/m.yaml", values={"CONFIG_A": "y"},
                requested={"CONFIG_A": "y", "CONFIG_MODULES": "y"}, status="done",
                verdict=verdict, reasons=["kernel/module/: unexpected x.o"] if cid in fail else [],
                stages=[StageRecord("build", "pass", 4.0, "docker run ...")],
                resolved_config_hash="h", duration_s=5.0, kernel={"version": "6.12"},
                image={"id": "sha:1"}))
            (run / cid / "build.log").write_text(log)
            (run / cid / "config").write_text(config)
        return run

    out: dict[str, object] = {"combinations": count}
    merged = []
    for night, fail in ((1, set()), (2, {names[7]})):
        shard_dirs = [make(f"2026010{night}T00000{k}Z-s{k}", k, fail) for k in range(1, 5)]
        target = root / "synthetic" / f"2026010{night}T010000Z-nightly"
        start = time.monotonic()
        settings = merge.merge(target, shard_dirs)
        out[f"merge_s_night{night}"] = round(time.monotonic() - start, 2)
        start = time.monotonic()
        results.finish_run(Path(settings.run_dir), "synthetic")
        out[f"reports_s_night{night}"] = round(time.monotonic() - start, 2)
        merged.append(target)
    start = time.monotonic()
    comparison = compare.compare_runs(merged[0], merged[1])
    out["compare_s"] = round(time.monotonic() - start, 3)
    out["new_failures"] = [c.combination for c in comparison.new_failures]
    start = time.monotonic()
    found = history.history(root / "synthetic", 10)
    out["history_s"] = round(time.monotonic() - start, 3)
    out["history_runs"] = len(found.runs)
    out["reports"] = sorted(p.name for p in merged[1].iterdir() if p.is_file())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", type=Path, default=REPO / "matrix.yaml")
    parser.add_argument("--generate", action="store_true",
                        help="the 64-combination matrix (six objects on and off)")
    parser.add_argument("--all", action="store_true",
                        help="every combination of the matrix (default: the object tier of the "
                        "default matrix)")
    parser.add_argument("--only", action="append", default=[], metavar="ID",
                        help="only these combinations (repeatable; the smallest check of the "
                        "script: --only dups-n.trace-n --shards 1,2)")
    parser.add_argument("--shards", default="1,2", help="comma-separated N (default 1,2)")
    parser.add_argument("--kernel", help="an unpacked kernel tree (default: Debian's, unpacked "
                        "in the cache)")
    parser.add_argument("--synthetic", type=int, default=1000)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("run_options", nargs="*", help="after --: options for every shard's run")
    args = parser.parse_args()

    from harness import source

    kernel = args.kernel or str(source.resolve("debian").path)
    report: dict[str, object] = {"machine": machine()}
    root = Path(tempfile.mkdtemp(prefix="kmatrix-bench-shards-", dir="/var/tmp"))
    try:
        if not args.skip_real:
            matrix, only = args.matrix, args.only or ([] if args.all else OBJECT_TIER)
            if args.generate:
                matrix, only = root / "matrix-64.yaml", args.only
                matrix.write_text(GENERATED.format(tree=kernel))
            report["matrix"] = matrix.name + (f" ({len(only)} combinations: --only)" if only else "")
            report["real"] = real(matrix, kernel, [int(n) for n in args.shards.split(",")], only,
                                  args.run_options, root)
        report["synthetic"] = synthetic(args.synthetic, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    for row in report.get("real", []):  # type: ignore[union-attr]
        print(f"| {row['shards']} | {row['wall_s']} | {row['machine_s']} | {row['speedup']} | "
              f"{row['merge_s']} | {row['same_verdicts_as_first']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
