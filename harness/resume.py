"""`kmatrix run --resume [RUN_DIR]`: finish a run that was killed or interrupted, in its own
run directory, with its own settings (run.json): only the combinations without a finished
record run again; the reports then cover the whole run.

A run is resumed only when it is still the same run: the matrix (by content), the kernel, the
builder image and the selection must be what run.json's fingerprint recorded (one line names
what changed; start a new run then). The resumed run is `running` again (state.json, with this
process as its owner) until it ends; containers its killed process left are removed first, and
trees its stopped steps left half-written are repaired when claimed (harness/treeguard.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import container, results, runstate, source
from .matrix import Matrix
from .settings import RunSettings
from .verdict import InputError


def unfinished(run_dir: Path) -> list[str] | None:
    """The run's combinations without a finished record (None: the resolve step never finished,
    so which combinations the run holds is not known yet)."""
    from . import resolve

    if not (run_dir / resolve.RESOLVE_FILE).is_file():
        return None
    planned = resolve.load(run_dir)
    done = {r.combination for r in results.read_records(run_dir) if r.status == "done"}
    return [c for c in planned if c not in done]


def _runs(results_dir: Path) -> list[Path]:
    if not results_dir.is_dir():
        return []
    return sorted((p for p in results_dir.iterdir()
                   if p.is_dir() and not p.is_symlink() and (p / "run.json").is_file()
                   and not p.name.startswith("bisect")), reverse=True)


def find_run(results_dir: Path, given: Path | None) -> Path:
    """The run to resume: the one given, else the newest run in the results directory."""
    if given is not None:
        if not (given / "run.json").is_file():
            raise InputError(f"{given} is not a run directory (no run.json): give a "
                             f"{results_dir}/<run-id> directory")
        return given.resolve()
    runs = _runs(results_dir)
    if not runs:
        raise InputError(f"no run to resume in {results_dir}: start one with `kmatrix run`")
    return runs[0].resolve()


def prepare(results_dir: Path, given: Path | None,
            say: Callable[[str], None] = print) -> tuple[RunSettings, Matrix, list[str]]:
    """Check that the run is still the same, remake what the cache lost (the seed tree, the
    resolve step), and return its settings, its matrix and the combinations left to run."""
    from . import image as imagemod
    from . import session
    from . import shard as shardmod
    from .compare import selection
    from .seeds import ensure_seeds

    run_dir = find_run(results_dir, given)
    settings = RunSettings.load(run_dir)
    if settings.shard.get("merged"):
        raise InputError(f"{run_dir.name} is a merged run: resume each shard, then merge again")
    index = int(settings.shard.get("index", 0))
    chosen = list(settings.shard.get("selection", settings.only)) if index else settings.only
    opts = session.Options(matrix=Path(settings.matrix_path), results=run_dir.parent,
                           kernel=str(settings.kernel.get("origin") or settings.tree),
                           only=tuple(chosen))
    matrix, tree, symbols = session.load_checked(opts)
    tag, client, runner = session.open_engine(source.cache_root(), say, settings.runtime)
    kernel = {"version": tree.version, "origin": tree.origin, "commit": tree.commit}
    packages = imagemod.packages_of(tag, runner.image_id(), client, source.cache_root())
    now = shardmod.fingerprint(matrix, kernel, tag, packages,
                               chosen, settings.boot)
    differs = shardmod.fingerprint_difference(settings.fingerprint, now)
    if differs:
        raise InputError(f"cannot resume {run_dir.name}: the {differs} (recorded vs now): "
                         "start a new run with `kmatrix run`")
    state = runstate.load(run_dir)
    if state is not None and state.effective == runstate.RUNNING:
        raise InputError(f"run {run_dir.name} is still running ({state.owner}): wait for it or "
                         "stop it, then resume")
    container.reap(client)  # what the stopped run left running
    runstate.begin(run_dir)
    results.point_latest(run_dir.parent, run_dir)
    if not settings.pristine:  # the cache may have lost the seed tree since: same key, same tree
        with open(run_dir / "seed.log", "a") as log:
            ensure_seeds(settings, matrix, symbols, runner, log, settings.jobs)
        settings.save()
    todo = unfinished(run_dir)
    if todo is None:  # killed before the resolve step finished: do it again
        settings.only = chosen
        session.resolve_first(settings, matrix, symbols, runner, say)
        if index:
            spec = shardmod.ShardSpec(index, int(settings.shard["count"]))
            mine, parts = shardmod.restrict(run_dir, matrix, settings.boot, spec, say)
            settings.shard = shardmod.shard_info(spec, chosen, parts)
            settings.only = mine
        settings.save()
        todo = unfinished(run_dir) or []
    wanted = selection({"only": settings.only, "shard": settings.shard})
    say(f"kmatrix: resuming run {settings.run_id}: {len(todo)} of "
        f"{len(wanted) if wanted is not None else len(matrix.combinations)} combinations left")
    return settings, matrix, todo

