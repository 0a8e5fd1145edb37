"""A pytest plugin that collects a matrix file: one test item per combination.

`kmatrix run` prepares the run (results/<run-id>/run.json) and calls pytest with this plugin, so
pytest-xdist spreads combinations over workers, and `-k`, `--lf` and node ids select them:
    pytest -p harness.pytest_plugin --kmatrix-run-dir results/<run-id> matrix.yaml -n 2
Each item runs the whole chain for its combination and writes its record; the item fails with
the verdict's reasons when the kernel (or the infrastructure) failed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import TerminalRepr, TracebackStyle

from . import cover, estimate, resolve, results, runstate
from . import matrix as matrixmod
from .cores import CoreBudget
from .matrix import Combination, Matrix
from .pipeline import run_combination, tree_of
from .session import load_symbols
from .settings import Job, RunSettings
from .verdict import KmatrixError, Verdict


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kmatrix")
    group.addoption("--kmatrix-run-dir", default=None,
                    help="a run directory made by `kmatrix run` (holds run.json)")
    group.addoption("--kmatrix-resume", action="store_true", default=False,
                    help="skip the combinations that already have a finished record")


class CombinationFailed(Exception):
    def __init__(self, verdict: str, reasons: list[str], reproducer: str) -> None:
        super().__init__(verdict)
        self.verdict, self.reasons, self.reproducer = verdict, reasons, reproducer


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    run_dir = parent.config.getoption("--kmatrix-run-dir")
    if not run_dir or file_path.suffix not in (".yaml", ".yml"):
        return None
    settings = RunSettings.load(Path(run_dir))
    if file_path.resolve() != Path(settings.matrix_path):
        return None
    return MatrixFile.from_parent(parent, path=file_path)


class MatrixFile(pytest.File):
    def collect(self) -> Iterator[CombinationItem]:
        run_dir = Path(self.config.getoption("--kmatrix-run-dir"))
        settings = RunSettings.load(run_dir)
        matrix = cover.load_combinations(matrixmod.load_matrix(self.path), run_dir)
        places = resolve.load(run_dir)
        combos = [c for c in matrix.combinations if not settings.only or c.id in settings.only]
        if self.config.getoption("--kmatrix-resume"):  # kmatrix run --resume (harness/resume.py)
            from .resume import unfinished

            left = set(unfinished(run_dir) or ())
            combos = [c for c in combos if c.id in left]
        # the costliest trees first (a bootable kernel's minutes are the critical path: it must
        # not start last), each tree's combinations in the order the schedule chose (nearest
        # config first); `kmatrix run` keeps this order for xdist (--no-loadscope-reorder)
        estimates = estimate.Estimates.load(run_dir)
        rank = estimate.tree_rank(estimates)

        def group(combo: Combination) -> str:  # its tree, or its warm directory (estimate.py)
            return estimates.tree.get(combo.id) or tree_of(places.get(combo.id), combo)

        combos.sort(key=lambda c: (rank.get(group(c), len(rank)),
                                   places[c.id].position if c.id in places else 0))
        for combo in combos:
            item = CombinationItem.from_parent(self, name=combo.id, combo=combo,
                                               matrix=matrix, settings=settings)
            # Combinations that share an output tree go to the same worker, one after the
            # other (pytest-xdist --dist loadgroup), instead of one worker waiting on the other.
            item.add_marker(pytest.mark.xdist_group(group(combo)))
            yield item


class CombinationItem(pytest.Item):
    def __init__(self, *, combo: Combination, matrix: Matrix, settings: RunSettings,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.combo, self.matrix, self.settings = combo, matrix, settings

    def runtest(self) -> None:
        try:
            symbols = load_symbols(Path(self.settings.run_dir))
            job = Job(self.settings, self.matrix, self.combo, symbols, self.settings.runner())
            record = run_combination(job)
            if self.settings.disk_budget and record.output_dir:
                from .cache import keep_under

                try:  # a tree that cannot be pruned now is pruned after a later one
                    keep_under(self.settings.work_dir(), self.settings.disk_budget,
                               Path(record.output_dir))
                except OSError:
                    pass
        except Exception as exc:
            message = exc.message if isinstance(exc, KmatrixError) else \
                f"kmatrix failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            self._write_failed_record(message)
            raise CombinationFailed(Verdict.INFRA_ERROR.value, [message], "") from exc
        self.user_properties.append(("verdict", record.verdict_text))
        if not record.passed:
            raise CombinationFailed(record.verdict_text, record.reasons, record.reproducer)

    def _write_failed_record(self, message: str) -> None:
        """An infra-error record for a combination that failed before its record was finished
        (best effort: when even this cannot be written, `kmatrix run` still reports the row)."""
        run_dir = Path(self.settings.run_dir)
        path = run_dir / self.combo.id / results.RECORD
        try:
            old = results.Record.from_dict(json.loads(path.read_text())) if path.is_file() \
                else None
        except (OSError, ValueError, TypeError):
            old = None
        record = old or results.Record(combination=self.combo.id, run_id=self.settings.run_id,
                                       matrix=str(self.matrix.path),
                                       values=self.combo.axis_values, requested={})
        if record.verdict is not None and record.status == "done":
            return
        record.status, record.verdict = "done", Verdict.INFRA_ERROR
        record.reasons = [message]
        record.finished = results.now()
        try:
            results.write_record(run_dir, record)
        except (OSError, KmatrixError):
            pass

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: TracebackStyle | None = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, CombinationFailed):
            exc = excinfo.value
            return "\n".join([f"{self.combo.id}: {exc.verdict}", *[f"  {r}" for r in exc.reasons],
                              f"  reproduce: {exc.reproducer}"])
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.combo.line - 1, f"combination {self.combo.id}"


class Progress:
    """Done / running / queued combinations and an estimate of the time left, one line per
    finished combination (readable in a terminal and in a CI log alike). The time left is the
    expected cost of what is left (harness/estimate.py: each tier's own cost, the last run's
    durations where known), scaled by how fast the finished ones went against their own
    expected cost (the load); without estimates, the mean of what finished."""

    def __init__(self, workers: int, estimates: estimate.Estimates | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.workers = max(1, workers)
        self.estimates = estimates or estimate.Estimates()
        self.clock = clock
        self.total = 0
        self.ids: list[str] = []  # every selected combination, once collection is known
        self.running: dict[str, float] = {}  # nodeid -> when it started
        self.finished_ids: dict[str, float] = {}  # combination -> its duration
        self.durations: list[float] = []

    @property
    def queued(self) -> int:
        return max(0, self.total - len(self.durations) - len(self.running))

    def started(self, nodeid: str) -> None:
        self.running[nodeid] = self.clock()

    def finished(self, nodeid: str, outcome: str, duration: float) -> str:
        self.running.pop(nodeid, None)
        self.durations.append(duration)
        name = combination_of(nodeid)
        self.finished_ids[name] = duration
        done = len(self.durations)
        return (f"kmatrix: [{done}/{self.total} done, {len(self.running)} running, "
                f"{self.queued} queued] {name} {outcome} in {duration:.0f} s; "
                f"about {self.left():.0f} s left")

    def left(self) -> float:
        now = self.clock()
        running = {combination_of(n): now - t for n, t in self.running.items()}
        if self.estimates.seconds and self.ids:
            queued = [c for c in self.ids if c not in self.finished_ids and c not in running]
            return estimate.time_left(self.estimates, queued, running, self.workers,
                                      estimate.pace(self.estimates, self.finished_ids))
        done = len(self.durations)
        mean = sum(self.durations) / done if done else 0.0
        return mean * (self.queued + len(self.running) / 2) / self.workers


def pytest_configure(config: pytest.Config) -> None:
    run_dir = config.getoption("--kmatrix-run-dir")
    if run_dir and hasattr(config, "workerinput"):
        # an xdist worker sent SIGTERM stops its step (and removes its container) like Ctrl-C
        runstate.install_terminate_as_interrupt()
        config.pluginmanager.register(WorkerEnd(Path(run_dir), config.workerinput.get(
            "workerid", "gw?")), "kmatrix-worker-end")
    if run_dir and not hasattr(config, "workerinput"):
        settings = RunSettings.load(Path(run_dir))
        config.pluginmanager.register(
            ProgressReporter(Progress(settings.workers, estimate.Estimates.load(Path(run_dir))),
                             settings.core_budget(), Path(run_dir)), "kmatrix-progress")


WORKERS_LOG = "workers.log"
SLOW_END_S = 5.0


class WorkerEnd:
    """When each xdist worker ended its session and its configuration, in the run directory's
    workers.log: the controller names them when the workers took long to end after the last
    combination (once seen: 20 s between the last record and the reports, with no container
    running and the run's own processes idle)."""

    def __init__(self, run_dir: Path, worker: str) -> None:
        self.path, self.worker = run_dir / WORKERS_LOG, worker

    def _note(self, what: str) -> None:
        try:
            with open(self.path, "a") as f:
                f.write(f"{time.time():.3f} {self.worker} {what}\n")
        except OSError:
            pass  # a diagnostic only

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self._note("sessionfinish")

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        self._note("unconfigure")


def slow_end_line(run_dir: Path, last_report: float, ended: float,
                  loop_ended: float = 0.0) -> str | None:
    """One line when pytest took over SLOW_END_S (wall clock) from the last combination's
    report to the end of its session, with what workers.log says of each worker's end and
    when every worker had finished (`loop_ended`: the rest is xdist stopping the worker
    processes); None otherwise."""
    if not last_report or ended - last_report <= SLOW_END_S:
        return None
    notes = []
    try:
        lines = (run_dir / WORKERS_LOG).read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            at, worker, what = line.split(" ", 2)
            notes.append(f"{worker} {what} at +{float(at) - last_report:.1f} s")
        except ValueError:
            continue
    if loop_ended:
        notes.append(f"every worker finished at +{loop_ended - last_report:.1f} s, then "
                     f"{ended - loop_ended:.1f} s to stop the worker processes")
    return (f"kmatrix: note: pytest took {ended - last_report:.1f} s after the last "
            f"combination's report to end its session ({'; '.join(notes) or 'no worker noted its end'})")


class ProgressReporter:
    """The progress line, and the number of combinations not started yet for the workers'
    core budget (harness/cores.py: the last builds take the cores the idle workers leave)."""

    def __init__(self, progress: Progress, budget: CoreBudget | None = None,
                 run_dir: Path | None = None) -> None:
        self.progress = progress
        self.budget = budget
        self.run_dir = run_dir
        self.last_report = 0.0  # wall clock: compared with the workers' notes

    def _collected(self, ids: list[str]) -> None:
        self.progress.total = len(ids)
        self.progress.ids = [combination_of(i) for i in ids]
        self._tell_budget()

    def _tell_budget(self) -> None:
        if self.budget is not None:
            try:
                self.budget.set_queued(self.progress.queued)
            except OSError:
                pass  # the budget then assumes plenty queued: never worse than before

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._collected([item.nodeid for item in session.items])

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.progress.started(nodeid)
        self._tell_budget()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            verdict = dict(report.user_properties).get("verdict", report.outcome)
            line = self.progress.finished(report.nodeid, str(verdict), report.duration)
            self._tell_budget()
            print("\n" + line, flush=True)
            self.last_report = time.time()

    @pytest.hookimpl(hookwrapper=True)  # around xdist's own, which stops the workers
    def pytest_sessionfinish(self) -> Generator[None, None, None]:
        loop_ended = time.time()  # every worker has reported its session finished
        yield
        if self.run_dir is not None:
            line = slow_end_line(self.run_dir, self.last_report, time.time(), loop_ended)
            if line:
                print("\n" + line, flush=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self._collected(ids)


def combination_of(nodeid: str) -> str:
    """`matrix.yaml::dups-y@tree` (xdist adds @group) -> `dups-y`."""
    return nodeid.rsplit("::", 1)[-1].split("@", 1)[0]


class RunTracker:
    """What pytest selected and ran, seen from the controlling process (`kmatrix run` passes it
    to pytest.main): the exit status and the reports cover every selected combination, with or
    without a record."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir
        self.selected: list[str] = []
        self.outcomes: dict[str, str] = {}
        self.interrupted = False

    def _select(self, ids: list[str]) -> None:
        before = len(self.selected)
        for nodeid in ids:
            combo = combination_of(nodeid)
            if combo not in self.selected:
                self.selected.append(combo)
        if self.run_dir is not None and len(self.selected) != before:
            # on disk at once: a run killed later still names every combination it had
            runstate.set_expected(self.run_dir, self.selected)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._select([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self._select(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        combo = combination_of(report.nodeid)
        if report.failed or combo not in self.outcomes:
            self.outcomes[combo] = report.outcome

    def pytest_keyboard_interrupt(self, excinfo: object) -> None:
        self.interrupted = True
