"""A matrix run: everything checked and prepared before any build, and the reports after.

prepare_run: load and validate the matrix, resolve the kernel tree, check every symbol against
it, connect to the container engine (Docker or Podman), make sure the builder image exists,
create results/<run-id>/ and the prepared seed tree. Any problem here is one line and no build starts.
finish_run: every report (summary, JUnit, report.html, metadata.json) and results/latest,
from the records.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import container, kconfig, results, runinfo, runstate, source
from . import image as imagemod
from . import matrix as matrixmod
from . import runtime as runtimemod
from . import shard as shardmod
from .container import Runner, connect, make_runner
from .kconfig import SymbolTable
from .matrix import Matrix
from .randconfig import RandomSpec
from .seeds import ensure_seeds
from .settings import RunSettings
from .shard import ShardSpec
from .verdict import InfraError, InputError

MIN_FREE_BYTES = 4 << 30
Say = Callable[[str], None]


@dataclass
class Options:
    matrix: Path
    results: Path
    kernel: str | None = None  # overrides the matrix's kernel.source
    only: tuple[str, ...] = ()
    workers: int | None = None
    jobs: int | None = None
    pristine: bool = False
    ccache: bool = True
    boot: bool = True
    oversubscribe: bool = False
    trees: str | None = None  # overrides the matrix's build.trees
    shard: ShardSpec | None = None  # `--shard K/N`: this part of the matrix (harness/shard.py)
    random: RandomSpec | None = None  # `--randconfig N --seed S`: random configs instead
    runtime: str | None = None  # `--runtime`: overrides the matrix's build.runtime


MEM_PER_BUILD_MAX = 4 << 30  # a tinyconfig-based build peaks near 300 MiB (docs/performance.md)
MEM_PER_BUILD_MIN = 1 << 30


def mem_budget(available: int | None, workers: int) -> tuple[int, int]:
    """(workers, memory limit per build container): three quarters of the available memory
    split between the parallel builds, at most 4 GiB each; when that is under 1 GiB each, fewer
    builds run at once. Unknown memory: the 4 GiB limit."""
    if not available:
        return workers, MEM_PER_BUILD_MAX
    usable = available * 3 // 4
    fit = max(1, min(workers, usable // MEM_PER_BUILD_MIN))
    return fit, max(MEM_PER_BUILD_MIN, min(MEM_PER_BUILD_MAX, usable // fit))


def mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def disk_budget() -> int:
    """KMATRIX_DISK_BUDGET (GiB) in bytes: the output trees of a run are kept under it."""
    text = os.environ.get("KMATRIX_DISK_BUDGET", "").strip()
    if not text:
        return 0
    try:
        gib = float(text)
    except ValueError:
        gib = -1.0
    if gib <= 0:
        raise InputError(f"KMATRIX_DISK_BUDGET={text!r}: give the GiB the output trees may use "
                         "(a number above 0), or unset it")
    return int(gib * (1 << 30))


def cpu_budget(cores: int, combos: int, workers: int | None, jobs: int | None,
               oversubscribe: bool = False) -> tuple[int, int]:
    """Split the cores between parallel combinations and make -j (workers x jobs <= cores)."""
    if workers is None and jobs is None:
        workers = max(1, min(cores, combos))
        jobs = max(1, cores // workers)
    elif workers is None:
        workers = max(1, min(combos, cores // max(1, jobs or 1)))
    elif jobs is None:
        jobs = max(1, cores // workers)
    assert workers is not None and jobs is not None
    if workers * jobs > cores and not oversubscribe:
        raise InputError(f"--workers {workers} x --jobs {jobs} is more than the {cores} cores "
                         "here: lower one, or pass --oversubscribe")
    return workers, jobs


def load_checked(opts: Options) -> tuple[Matrix, source.KernelTree, SymbolTable]:
    matrix, tree, symbols, _ = load_checked_tree(opts)
    return matrix, tree, symbols


def load_checked_tree(opts: Options) -> tuple[Matrix, source.KernelTree, SymbolTable, str]:
    """load_checked, and the tree's Kconfig fingerprint (resolve.kconfig_fingerprint)."""
    matrix = matrixmod.load_matrix(opts.matrix)
    if opts.kernel:
        matrix.source = opts.kernel
    tree = source.resolve(matrix.source)
    symbols, fingerprint = tree_symbols(tree.path)
    matrixmod.check_against_tree(matrix, symbols)
    # sampled and random combinations are known after Kconfig: their ids are not checked here
    for combo_id in opts.only if not (matrix.deferred or opts.random) else ():
        matrix.combination(combo_id)
    return matrix, tree, symbols, fingerprint


def tree_symbols(tree: Path) -> tuple[SymbolTable, str]:
    """The symbols the tree's Kconfig files define, and the files' fingerprint. The scan is
    remembered in the cache by that fingerprint (every Kconfig file's path, size and mtime): an
    unchanged tree is listed and stat'ed, not read again; a damaged memo is scanned again."""
    from .resolve import kconfig_fingerprint

    files = kconfig.kconfig_files(tree)
    fingerprint = kconfig_fingerprint(tree, files)
    types = results.remembered_strings(source.cache_root() / "symbols" / f"{fingerprint[:32]}.json",
                                       lambda: kconfig.scan_symbols(tree, files).types)
    return SymbolTable(types), fingerprint


def check_disk(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise InfraError(f"only {free >> 20} MiB free under {path}: a matrix run needs "
                         f"{MIN_FREE_BYTES >> 30} GiB; free some space and rerun")


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def open_engine(cache: Path, say: Say = print,
                runtime: str | None = None) -> tuple[str, object, Runner]:
    """Connect to the container engine (`runtime`: docker, the default, or podman) and make
    sure the builder image exists in it: its tag, the client and the runner every step of the
    run goes through."""
    engine = runtimemod.runtime(runtime)
    client = connect(engine)
    tag = imagemod.ensure_image(client, imagemod.read_spec(), cache, log=say,
                                donor=lambda: runtimemod.donor(engine))
    return tag, client, make_runner(tag, client, runtime=engine)


def prepare_run(opts: Options, say: Say = print) -> tuple[RunSettings, Matrix]:
    matrix, tree, symbols, fingerprint = load_checked_tree(opts)
    cache = source.cache_root()
    check_disk(cache)
    check_disk(opts.results)
    engine = opts.runtime or matrix.build.runtime
    tag, client, _ = open_engine(cache, say, engine)
    combos = [c for c in matrix.combinations if not opts.only or c.id in opts.only]
    later = matrix.deferred or opts.random is not None  # combinations made after Kconfig
    # a sample's size is known after Kconfig: budget for many; fit_to_trees lowers it then
    workers, jobs = cpu_budget(os.cpu_count() or 1, len(combos) if not later else 1 << 10,
                               opts.workers, opts.jobs, opts.oversubscribe)
    fit, mem_bytes = mem_budget(mem_available(), workers)
    if fit < workers:
        say(f"kmatrix: memory for {fit} build(s) at once, not {workers}: running {fit}")
        workers, jobs = fit, jobs if opts.jobs else max(1, (os.cpu_count() or 1) // fit)
    reaped = container.reap(client)
    if reaped:
        say(f"kmatrix: removed {len(reaped)} container(s) of killed runs: {', '.join(reaped)}")
    run_id = new_run_id()
    run_dir = (opts.results / run_id).resolve()
    run_dir.mkdir(parents=True)
    runstate.begin(run_dir)
    results.point_latest(opts.results, run_dir)  # a run killed from here on shows as killed
    runner = container.make_runner(tag, client, run_id, runtimemod.runtime(engine))
    try:
        image_id = runner.image_id()
        settings = RunSettings(
            run_id=run_id, matrix_path=str(matrix.path), run_dir=str(run_dir), cache=str(cache),
            tree=str(tree.path),
            kernel={"version": tree.version, "origin": tree.origin, "commit": tree.commit,
                    "path": str(tree.path)},
            image=tag, image_id=image_id, jobs=jobs, workers=workers,
            cpus_per_build=float(jobs), mem_bytes=mem_bytes, pristine=opts.pristine,
            ccache=opts.ccache, adaptive_jobs=opts.jobs is None, disk_budget=disk_budget(),
            boot=opts.boot, only=list(opts.only),
            trees="own" if opts.pristine else (opts.trees or matrix.build.trees),
            image_packages=imagemod.packages_of(tag, image_id, client, cache),
            matrix_info=runinfo.describe_matrix(matrix), runtime=engine,
            runtime_version=runtimemod.engine_version(client))
        settings.fingerprint = shardmod.fingerprint(matrix, settings.kernel, tag,
                                                    settings.image_packages, list(opts.only),
                                                    opts.boot)
        if opts.shard:
            settings.shard = {"index": opts.shard.index, "count": opts.shard.count}
        settings.save()
        results.atomic_write(run_dir / runinfo.MATRIX_COPY, matrix.path.read_text())
        results.atomic_write(run_dir / "symbols.json", json.dumps(symbols.types))
        if opts.random is not None:
            count = f"{opts.random.count} random configs (make randconfig, KCONFIG_SEED " \
                f"{opts.random.seed}..{opts.random.seed + opts.random.count - 1})"
        elif matrix.deferred:
            count = f"{matrix.sample.describe()}, made with the tree's Kconfig below" + \
                (f", and {len(combos)} included combinations" if combos else "") + ";"
        else:
            count = f"{len(combos)} combinations"
        say(f"kmatrix: run {run_id}: {matrix.path.name}: {count} on "
            f"Linux {tree.version} ({tree.origin}), {workers} in parallel x make -j{jobs}, "
            f"{mem_bytes >> 20} MiB each, in {settings.runtime_version or engine}")
        with open(run_dir / "seed.log", "w") as log:
            # the resolve step's Kconfig sessions are prepared side by side with the seeds
            from .resolve import prepare_session
            from .seeds import seed_dir

            ensure_seeds(settings, matrix, symbols, runner, log, os.cpu_count() or 1,
                         sessions=lambda view, own: prepare_session(
                             settings, view, runner, fingerprint,
                             seed_dir(settings, view, symbols), own))
        settings.save()
        resolve_first(settings, matrix, symbols, runner, say, opts.random, fingerprint)
        if matrix.deferred or opts.random is not None:  # the combinations are known now
            settings.matrix_info = runinfo.describe_matrix(matrix)
            settings.save()
        if opts.shard:
            mine, parts = shardmod.restrict(run_dir, matrix, opts.boot, opts.shard, say)
            settings.shard = shardmod.shard_info(opts.shard, list(opts.only), parts)
            settings.only = mine
            settings.save()
        warm = warm_combinations(settings, matrix)
        fit_to_trees(settings, opts, say, warm)
        from . import estimate, seeds

        estimate.prepare(run_dir, {c.id for c in matrix.combinations
                                   if c.boot is not None and settings.boot},
                         seeds.unmade(settings, matrix), warm)
        return settings, matrix
    except BaseException as exc:
        container.reap(client, run_id)
        runstate.end(run_dir, runstate.INTERRUPTED if isinstance(exc, KeyboardInterrupt)
                     else runstate.FAILED)
        raise


def fit_to_trees(settings: RunSettings, opts: Options, say: Say = print,
                 warm: dict[str, str] | None = None) -> None:
    """Combinations of one tree run one after the other: with fewer trees than workers, give
    the idle workers' cores to make -j instead (unless --workers/--jobs said otherwise). A
    warm combination (`warm`: warm_combinations) is scheduled by its own directory, so each
    warm directory counts as one more thing that can run at once; a run mostly warm gets one
    worker more than cores (warm_workers)."""
    from . import resolve

    warm = warm or {}
    found = resolve.load(Path(settings.run_dir))
    live = {c: r for c, r in found.items() if not r.unsatisfiable}
    units = {("dir", warm[c]) if c in warm else ("tree", r.tree_group) for c, r in live.items()}
    trees = len(units) or 1
    cores = os.cpu_count() or 1
    if opts.workers is None and opts.jobs is None and \
            warm_workers(settings, cores, trees, sum(c in warm for c in live), len(live), say):
        return
    workers, jobs = cpu_budget(cores, trees, opts.workers, opts.jobs, opts.oversubscribe)
    if (workers, jobs) != (settings.workers, settings.jobs) and workers <= settings.workers:
        settings.workers, settings.jobs, settings.cpus_per_build = workers, jobs, float(jobs)
        settings.save()
        say(f"kmatrix: {trees} output tree(s): {workers} in parallel x make -j{jobs}")


def warm_workers(settings: RunSettings, cores: int, units: int, warm: int, combos: int,
                 say: Say = print) -> bool:
    """A run whose combinations are mostly built already (at least half of them warm) is a run
    of no-op makes that spend much of their time waiting on the container engine (a container
    created, started and removed for a second of make): one worker more than cores keeps every
    core busy through those waits (docs/speed.md: a warm rerun of the default matrix 86 to 89 %
    of the machine busy with one worker per core, 93 to 95 % with one more, the wall the same
    or shorter). Only with more things to run at once than cores, and memory for every build."""
    extra = cores + 1
    if warm * 2 < combos or units <= cores:
        return False
    fit, mem_bytes = mem_budget(mem_available(), extra)
    if fit < extra:
        return False
    settings.workers, settings.jobs, settings.cpus_per_build = extra, 1, 1.0
    settings.mem_bytes = min(settings.mem_bytes, mem_bytes)
    settings.save()
    say(f"kmatrix: {warm} of {combos} combinations built already (no-op makes that mostly wait "
        f"on the container engine): {extra} in parallel x make -j1 on {cores} cores")
    return True


def warm_combinations(settings: RunSettings, matrix: Matrix) -> dict[str, str]:
    """The combinations whose output directory already holds their .config
    (pipeline.kept_config), each with that directory's name: a rerun's no-op makes, which the
    estimates count as such and which need no other directory of their tree (each directory
    has its own lock), so they are scheduled by directory, not by tree. None under
    --pristine, nor with `build.trees: lanes` (one directory per tree)."""
    from . import pipeline, resolve

    if settings.pristine or settings.trees == "lanes":
        return {}
    found = resolve.load(Path(settings.run_dir))
    warm = {}
    for combo in matrix.combinations:
        r = found.get(combo.id)
        if r is None or r.unsatisfiable:
            continue
        where = pipeline.branch_of(found, r, r.tree_group, settings.trees)[0]
        if pipeline.kept_config(settings.work_dir(matrix.built_with(combo).variant) / where,
                                r) is not None:
            warm[combo.id] = where
    return warm


def resolve_first(settings: RunSettings, matrix: Matrix, symbols: SymbolTable,
                  runner: Runner, say: Say = print, random: RandomSpec | None = None,
                  fingerprint: str = "") -> None:
    """Every combination through Kconfig before any build: duplicates, unsatisfiable, repairs.
    `fingerprint`: the tree's kconfig_fingerprint, if the caller made it already."""
    import time

    from . import cover, resolve

    run_dir = Path(settings.run_dir)
    fingerprint = fingerprint or resolve.kconfig_fingerprint(Path(settings.tree))
    # scratch output trees of this run only: concurrent runs must never share a .config
    scratch = Path(settings.cache) / "resolve" / settings.run_id
    start = time.monotonic()
    with open(run_dir / "resolve.log", "w") as log:
        base = resolve.base_config(settings, matrix, runner, scratch, log)
        workers = max(1, min(2, settings.workers * settings.jobs))
        deferred = matrix.deferred or random is not None
        impossible = []
        if random is not None:  # the random configs replace the matrix's combinations
            from . import randconfig

            if matrix.axes_from:
                matrix.axes = cover.tree_axes(matrix, Path(settings.tree), symbols)
            randconfig.make_random(Path(settings.tree), matrix, runner, base,
                                   cover.common_request(matrix, symbols), random, scratch,
                                   run_dir, log, say)
        elif deferred:
            impossible = cover.sample_first(Path(settings.tree), matrix, symbols, runner, base,
                                            scratch, log, say)
        found = resolve.resolve_all(settings, matrix, symbols, runner, base, scratch, log,
                                    workers=workers, fingerprint=fingerprint)
        # coverage after Kconfig, and cover combinations for the gaps
        if matrix.sample.sampled and not settings.only and random is None:
            found, measured = cover.complete(
                matrix, base, found, impossible,
                lambda m, _: resolve.resolve_all(settings, m, symbols, runner, base, scratch,
                                                 log, workers=workers,
                                                 fingerprint=fingerprint), say)
            measured.save(run_dir)
        if deferred:
            cover.save_combinations(run_dir, matrix)
    shutil.rmtree(scratch, ignore_errors=True)
    resolve.save(run_dir, found)
    say(f"kmatrix: resolved {len(found)} combinations with Kconfig in "
        f"{time.monotonic() - start:.0f} s")
    for line in resolve.report_lines(found) + resolve.tree_lines(found):
        say(f"kmatrix:   {line}")


def sampled_matrix(opts: Options, say: Say = print) -> tuple[Matrix, list[str]]:
    """`kmatrix list` of a sampled matrix (or axes from the tree): the sample as a run makes
    it before resolution (the tree, and Kconfig in the builder for the constraints), and the
    values Kconfig rules out, one line each."""
    import hashlib

    from . import cover
    from .kconfig.session import KconfigSession

    matrix, tree, symbols = load_checked(opts)
    cache = source.cache_root()
    _tag, _client, runner = open_engine(cache, say, matrix.build.runtime)
    key = hashlib.sha256(f"{tree.path}|{matrix.path}".encode()).hexdigest()[:12]
    scratch = cache / "sample" / key
    scratch.mkdir(parents=True, exist_ok=True)
    with open(scratch / "kconfig.log", "w") as log:
        if matrix.base in matrixmod.BASES:
            base = KconfigSession(tree.path, scratch / "base", runner, log,
                                  arch=matrix.arch,
                                  toolchain=matrix.toolchain).config_target(matrix.base)
        else:
            base = kconfig.parse_config(Path(matrix.base).read_text())
        impossible = cover.sample_first(tree.path, matrix, symbols, runner, base, scratch, log)
    from .coverage import tuple_text

    return matrix, [f"{tuple_text(i.values)}: {i.reason}" for i in impossible]


def load_symbols(run_dir: Path) -> SymbolTable:
    return SymbolTable(json.loads((run_dir / "symbols.json").read_text()))


def run_title(settings: RunSettings) -> str:
    shard = settings.shard
    part = (f" (shard {shard['index']}/{shard['count']})" if shard.get("index") else
            f" (merged from {shard['count']} shards)" if shard.get("merged") else "")
    return (f"kmatrix run {settings.run_id}: {Path(settings.matrix_path).name} on Linux "
            f"{settings.kernel.get('version')}{part}")


def finish_run(settings: RunSettings, expected: list[str] | None = None,
               interrupted: bool = False) -> list[results.Record]:
    """The end of every run, however it ended: remove the run's containers that are still
    there (a worker killed mid-step leaves its step running), mark the records that never
    finished, write the reports with a row for every expected combination (those pytest
    selected), and record how the run ended."""
    run_dir = Path(settings.run_dir)
    container.reap_run(settings.run_id, runtimemod.runtime(settings.runtime))
    if interrupted:
        results.mark_unfinished(run_dir, "interrupted (Ctrl-C or SIGTERM) before this "
                                "combination finished")
    records = results.finish_run(run_dir, run_title(settings), expected, settings.matrix_path,
                                 "it had not started when the run was interrupted"
                                 if interrupted else "")
    runstate.end(run_dir, runstate.INTERRUPTED if interrupted else runstate.COMPLETE)
    return records
