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
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_measure as measure  # noqa: E402
import bench_report as br  # noqa: E402
from bench_measure import Fig, Monitor, run_logged  # noqa: E402

from harness import image as imagemod  # noqa: E402
from harness import kconfig, source, variants  # noqa: E402
from harness import matrix as matrixmod  # noqa: E402
from harness.container import DockerRunner, Step, connect  # noqa: E402
from harness.kbuild import Kbuild  # noqa: E402

STEP_TIMEOUT_S = 3600.0

Ctx = dict[str, Any]  # what every approach needs: matrix, tree, combinations, Docker, scratch


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
    before = measure.ccache_stats(ctx["client"], ctx["image"], cache / "ccache" / variants.DEFAULT)
    log = ctx["tmp"] / f"{label}.log"
    with Monitor(ctx["client"], [cache, results_dir]) as mon:
        code = run_logged(argv, log, mon, env=env, cwd=ROOT)
    after = measure.ccache_stats(ctx["client"], ctx["image"], cache / "ccache" / variants.DEFAULT)
    hits, misses = measure.ccache_hits(before, after)
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
    tags = measure.count_tags(logs)
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
            arts.append(out / ctx["matrix"].arch.image_path)
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
        "minimum": None if shared else measure.minimum_invocations(trees),
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
    tc = Kbuild(tree.path, matrix.arch, jobs=2, cpus=2.0, ccache_dir=None)
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
            compiles = sum(measure.count_tags([logp]).values())
            checks[combo.id] = br.check(exit_status, br.expected_artifacts(out, targets), compiles,
                                        br.cold_minimum(out, targets), _read(logp), error)
    tags = measure.count_tags(logs)
    fig = mon.figures()
    fig.update({"approach": "naive", "combos": len(ctx["combos"]), "verdicts": verdicts,
                "cold": True, "checks": checks, "per_combo_s": per_combo,
                "marginal_median_s": round(statistics.median(per_combo.values()), 1),
                "invocations": sum(tags.values()), "invocation_tags": tags,
                "real_compiles": sum(tags.values()), "minimum": measure.minimum_invocations(trees)})
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
    built = [matrix.arch.image_path] if mode == "kernel" else list(matrix.build.targets)
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
            argv = [tux, "--runtime", "null", "--target-arch", matrix.arch.name, "--toolchain", "gcc",
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
            compiles = len(measure.object_keys(build))  # make --silent: the .cmd files say what ran
            checks[combo.id] = br.check(code, br.expected_artifacts(build, built), compiles,
                                        br.cold_minimum(build, built),
                                        _read(logp) + "\n" + _read(output / "build.log"))
    tags = measure.count_tags(logs)  # empty: TuxMake runs make --silent
    invocations = measure.tree_invocations(trees)
    fig = mon.figures()
    fig.update({"approach": name, "combos": len(combos), "verdicts": verdicts, "cold": True,
                "checks": checks, "per_combo_s": per_combo,
                "marginal_median_s": round(statistics.median(per_combo.values()), 1),
                "invocations": invocations, "invocation_tags": tags,
                "invocations_from": "gcc steps in the build trees' .cmd files (make --silent)",
                "real_compiles": invocations, "minimum": measure.minimum_invocations(trees),
                "note": "targets " + " ".join(targets)})
    return br.judge(fig)


def tuxmake_dropped_case(ctx: Ctx) -> Fig:
    """FACTS: TuxMake builds a config whose requested option Kconfig dropped and says PASS."""
    tux = tuxmake_program(ctx)
    if tux is None:
        return {"error": "tuxmake is not installed"}
    root = ctx["tmp"] / "tuxmake-dropped"
    requested = ["CONFIG_MODULES=y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y"]
    argv = [tux, "--runtime", "null", "--target-arch", ctx["matrix"].arch.name, "--toolchain", "gcc",
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
    ap.add_argument("--note", default="", help="what else ran on the machine (recorded in the "
                    "JSON and printed with the figures), e.g. \"shared with 4 other engineers\"")
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
    busy0 = measure.busy_jiffies()
    mach = measure.machine()
    mach.update(measure.tool_versions(client, image, tuxmake_program(ctx)))
    command = os.environ.get("KMATRIX_BENCH_COMMAND") or \
        "python3 benchmarks/bench_matrix.py " + " ".join(sys.argv[1:])
    result: Fig = {"machine": mach, "command": command.strip(), "note": args.note,
                   "combos": len(combos),
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
        mach["system_busy_s"] = round((measure.busy_jiffies() - busy0) / measure.CLK_TCK, 1)
        mach.update(measure.load_during(result["approaches"]))
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
