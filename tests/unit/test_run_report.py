"""`kmatrix run`'s exit status and reports come from what pytest ran *and* the records: a
combination that never got a record is an infra-error row in every report, never a lost row
and never exit 0 (issue 10, item 1). No Docker: the engine is unreachable on purpose."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from testhelpers import MINI_TREE

from harness import cli, results
from harness.kconfig import scan_symbols
from harness.pytest_plugin import RunTracker
from harness.settings import RunSettings
from harness.verdict import EXIT_INFRA, EXIT_KERNEL_FAILED, EXIT_OK, InputError, Verdict

MATRIX = """
    config: {CONFIG_MODULES: y}
    include:
      - id: one
        config: {CONFIG_MODULE_UNLOAD: y}
      - id: two
        config: {CONFIG_MODULE_UNLOAD: n}
    """


def prepared_run(tmp_path: Path) -> tuple[RunSettings, object]:
    """A run directory as `kmatrix run` prepares it (run.json, symbols.json), by hand."""
    from harness import matrix as matrixmod

    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(MATRIX).lstrip("\n"))
    run_dir = tmp_path / "results" / "run-1"
    run_dir.mkdir(parents=True)
    settings = RunSettings(run_id="run-1", matrix_path=str(path.resolve()), run_dir=str(run_dir),
                           cache=str(tmp_path / "cache"), tree=str(MINI_TREE), kernel={},
                           image="kmatrix-builder:none")
    settings.save()
    (run_dir / "symbols.json").write_text(json.dumps(scan_symbols(MINI_TREE).types))
    return settings, matrixmod.load_matrix(path)


def test_docker_gone_when_items_start_is_infra_error_for_every_combination(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    settings, matrix = prepared_run(tmp_path)
    code, tracker, records = cli.run_items(settings, matrix, ["-p", "no:xdist"])
    assert tracker.selected == ["one", "two"]
    assert [(r.combination, r.final) for r in records] == [("one", Verdict.INFRA_ERROR),
                                                           ("two", Verdict.INFRA_ERROR)]
    assert all("Docker" in r.reasons[0] for r in records), records[0].reasons
    assert cli.run_exit_status(code, tracker, [r.final for r in records]) == EXIT_INFRA
    run_dir = Path(settings.run_dir)
    suite = ET.parse(run_dir / "junit.xml").getroot()[0]
    assert (suite.get("tests"), suite.get("errors")) == ("2", "2")
    summary = (run_dir / "summary.md").read_text()
    assert "| one | infra-error |" in summary and "| two | infra-error |" in summary
    for combo in ("one", "two"):  # each got a valid record after all
        saved = results.Record.from_dict(json.loads((run_dir / combo / "record.json").read_text()))
        assert saved.verdict is Verdict.INFRA_ERROR


def record(combo: str, verdict: Verdict) -> results.Record:
    return results.Record(combination=combo, run_id="r", matrix="m.yaml", values={},
                          requested={}, status="done", verdict=verdict)


def test_a_selected_combination_without_record_is_a_row_in_every_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "r"
    results.write_record(run_dir, record("a", Verdict.PASS))
    got = results.finish_run(run_dir, "t", ["a", "b"])
    assert [(r.combination, r.final) for r in got] == [("a", Verdict.PASS),
                                                       ("b", Verdict.INFRA_ERROR)]
    assert "no record" in got[1].reasons[0]
    suite = ET.parse(run_dir / "junit.xml").getroot()[0]
    assert (suite.get("tests"), suite.get("errors")) == ("2", "1")
    assert "| b | infra-error |" in (run_dir / "summary.md").read_text()


def test_a_row_is_kept_when_even_its_record_cannot_be_written(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "r"
    results.write_record(run_dir, record("a", Verdict.PASS))
    (run_dir / "b").write_text("a file where the combination's directory should be")
    got = results.finish_run(run_dir, "t", ["a", "b"])
    assert [r.final for r in got] == [Verdict.PASS, Verdict.INFRA_ERROR]


def test_a_corrupted_record_is_an_infra_error_row_not_a_traceback(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "r"
    results.write_record(run_dir, record("a", Verdict.PASS))
    results.write_record(run_dir, record("b", Verdict.PASS))
    (run_dir / "b" / "record.json").write_text('{"combination": "b", "verd')
    (run_dir / "c").mkdir()
    (run_dir / "c" / "record.json").write_bytes(b"\xff\xfe[1, 2]")
    got = results.finish_run(run_dir, "t", ["a", "b", "c"])
    assert [(r.combination, r.final) for r in got] == [
        ("a", Verdict.PASS), ("b", Verdict.INFRA_ERROR), ("c", Verdict.INFRA_ERROR)]
    assert "cannot be read" in got[1].reasons[0]


def tracker(selected: list[str], outcomes: dict[str, str] | None = None,
            interrupted: bool = False) -> RunTracker:
    t = RunTracker()
    t.selected, t.outcomes, t.interrupted = selected, outcomes or {}, interrupted
    return t


def test_exit_status_from_pytest_and_the_records() -> None:
    ok = [Verdict.PASS, Verdict.PASS]
    assert cli.run_exit_status(0, tracker(["a", "b"]), ok) == EXIT_OK
    # pytest failed an item the records call passed: not a pass
    assert cli.run_exit_status(1, tracker(["a", "b"], {"b": "failed"}), ok) == EXIT_INFRA
    assert cli.run_exit_status(3, tracker(["a", "b"]), ok) == EXIT_INFRA  # pytest's own error
    assert cli.run_exit_status(1, tracker(["a"]), [Verdict.BUILD_ERROR]) == EXIT_KERNEL_FAILED
    assert cli.run_exit_status(1, tracker(["a"]), []) == EXIT_INFRA  # no records at all: 3
    assert cli.run_exit_status(2, tracker(["a"], interrupted=True), []) == 130
    with pytest.raises(InputError):  # -k selected nothing: bad input
        cli.run_exit_status(5, tracker([]), [])


def test_a_slow_end_of_the_workers_is_one_note_with_their_times(tmp_path: Path) -> None:
    from harness.pytest_plugin import WorkerEnd, slow_end_line

    assert slow_end_line(tmp_path, 100.0, 104.0) is None  # ending in time says nothing
    assert slow_end_line(tmp_path, 0.0, 104.0) is None  # no combination reported
    line = slow_end_line(tmp_path, 100.0, 121.0)
    assert line is not None and "21.0 s" in line and "no worker noted its end" in line
    end = WorkerEnd(tmp_path, "gw1")
    end.pytest_sessionfinish()
    end.pytest_unconfigure()
    (tmp_path / "workers.log").write_text((tmp_path / "workers.log").read_text()
                                          + "110.5 gw0 sessionfinish\nnot a note\n")
    assert len((tmp_path / "workers.log").read_text().splitlines()) == 4
    line = slow_end_line(tmp_path, 100.0, 121.0)
    assert line is not None and "gw1 sessionfinish at" in line and "gw1 unconfigure at" in line
    (tmp_path / "workers.log").write_text("bad\n110.5 gw0 sessionfinish\n")
    assert "gw0 sessionfinish at +10.5 s" in str(slow_end_line(tmp_path, 100.0, 121.0))
    # when every worker had finished: the rest of the wait was xdist stopping their processes
    line = str(slow_end_line(tmp_path, 100.0, 124.0, 100.4))
    assert "every worker finished at +0.4 s, then 23.6 s to stop the worker processes" in line
