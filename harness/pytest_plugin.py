"""A pytest plugin that collects a matrix file: one test item per combination.

`kmatrix run` prepares the run (results/<run-id>/run.json) and calls pytest with this plugin, so
pytest-xdist spreads combinations over workers, and `-k`, `--lf` and node ids select them:
    pytest -p harness.pytest_plugin --kmatrix-run-dir results/<run-id> matrix.yaml -n 2
Each item runs the whole chain for its combination and writes its record; the item fails with
the verdict's reasons when the kernel (or the infrastructure) failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import TerminalRepr, TracebackStyle

from . import cover, resolve, results, runstate
from . import matrix as matrixmod
from .matrix import Combination, Matrix
from .pipeline import run_combination, tree_name
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
        # each tree's combinations in the order the schedule chose (nearest config first)
        combos.sort(key=lambda c: places[c.id].position if c.id in places else 0)
        for combo in combos:
            item = CombinationItem.from_parent(self, name=combo.id, combo=combo,
                                               matrix=matrix, settings=settings)
            # Combinations that share an output tree go to the same worker, one after the
            # other (pytest-xdist --dist loadgroup), instead of one worker waiting on the other.
            item.add_marker(pytest.mark.xdist_group(tree_name(settings, combo)))
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
    finished combination (readable in a terminal and in a CI log alike)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.total = 0
        self.running: set[str] = set()
        self.durations: list[float] = []

    def started(self, nodeid: str) -> None:
        self.running.add(nodeid)

    def finished(self, nodeid: str, outcome: str, duration: float) -> str:
        self.running.discard(nodeid)
        self.durations.append(duration)
        done = len(self.durations)
        queued = max(0, self.total - done - len(self.running))
        mean = sum(self.durations) / done
        left = mean * (queued + len(self.running) / 2) / self.workers
        name = nodeid.rsplit("::", 1)[-1].split("@", 1)[0]  # xdist adds @group
        return (f"kmatrix: [{done}/{self.total} done, {len(self.running)} running, {queued} "
                f"queued] {name} {outcome} in {duration:.0f} s; about {left:.0f} s left")


def pytest_configure(config: pytest.Config) -> None:
    run_dir = config.getoption("--kmatrix-run-dir")
    if run_dir and hasattr(config, "workerinput"):
        # an xdist worker sent SIGTERM stops its step (and removes its container) like Ctrl-C
        runstate.install_terminate_as_interrupt()
    if run_dir and not hasattr(config, "workerinput"):
        settings = RunSettings.load(Path(run_dir))
        config.pluginmanager.register(ProgressReporter(Progress(settings.workers)),
                                      "kmatrix-progress")


class ProgressReporter:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.total = len(session.items)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.progress.started(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            verdict = dict(report.user_properties).get("verdict", report.outcome)
            line = self.progress.finished(report.nodeid, str(verdict), report.duration)
            print("\n" + line, flush=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self.progress.total = len(ids)


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
