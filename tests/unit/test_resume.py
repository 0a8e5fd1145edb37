"""Resume: which combinations an interrupted run still owes, which run to resume; and
results/latest, which never names an incomplete run; the comparison at the top of a summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import resolve, results, resume
from harness.resolve import Resolution
from harness.results import Record
from harness.verdict import InputError


def rec(cid: str, verdict: str | None, status: str = "done") -> Record:
    return Record(combination=cid, run_id="r", matrix="/x/m.yaml", values={}, requested={},
                  status=status, verdict=verdict, reasons=[] if verdict == "pass" else ["why"])


def make_run(root: Path, name: str, records: list[Record], planned: list[str] | None = None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"matrix_path": "/x/m.yaml", "run_id": name}))
    for r in records:
        results.write_record(run, r)
    if planned is not None:
        resolve.save(run, {c: Resolution(c) for c in planned})
    return run


def test_unfinished_is_every_planned_combination_without_a_done_record(tmp_path: Path) -> None:
    run = make_run(tmp_path, "20260101T000000Z-0001",
                   [rec("a", "pass"), rec("b", "infra-error", "interrupted"), rec("c", None, "running"),
                    rec("d", "build-error")], planned=["a", "b", "c", "d", "e"])
    assert resume.unfinished(run) == ["b", "c", "e"]  # a judged build-error is finished
    assert resume.unfinished(make_run(tmp_path, "20260101T000000Z-0002", [])) is None


def test_find_run_takes_the_newest_run_or_the_one_given(tmp_path: Path) -> None:
    old = make_run(tmp_path, "20260101T000000Z-0001", [])
    new = make_run(tmp_path, "20260102T000000Z-0002", [])
    make_run(tmp_path, "bisect-20260103T000000Z-0003", [])
    assert resume.find_run(tmp_path, None) == new.resolve()
    assert resume.find_run(tmp_path, old) == old.resolve()
    with pytest.raises(InputError, match="not a run directory"):
        resume.find_run(tmp_path, tmp_path / "nope")
    with pytest.raises(InputError, match="no run to resume"):
        resume.find_run(tmp_path / "empty", None)


def test_a_stopped_run_is_latest_but_never_the_baseline(tmp_path: Path) -> None:
    """results/latest names the newest run from its start (a killed run shows as killed, not
    the run before it: harness/runstate.py); a run that did not finish is never what the next
    run compares with."""
    from harness import runstate

    done = make_run(tmp_path, "20260101T000000Z-0001", [rec("a", "pass"), rec("b", "pass")])
    results.finish_run(done, "first")
    assert os.readlink(tmp_path / "latest") == done.name
    cut = make_run(tmp_path, "20260102T000000Z-0002",
                   [rec("a", "pass"), rec("b", "infra-error", "interrupted")])
    runstate.begin(cut)
    results.finish_run(cut, "second")
    runstate.end(cut, runstate.INTERRUPTED)
    assert (cut / "summary.md").is_file()  # the reports of what finished are written
    assert os.readlink(tmp_path / "latest") == cut.name
    whole = make_run(tmp_path, "20260103T000000Z-0003", [rec("a", "pass"), rec("b", "pass")])
    results.finish_run(whole, "third")
    assert json.loads((whole / "comparison.json").read_text())["base"] == done.name


def test_the_summary_starts_with_the_comparison_with_the_previous_run(tmp_path: Path) -> None:
    first = make_run(tmp_path, "20260101T000000Z-0001", [rec("a", "pass"), rec("b", "pass")])
    results.finish_run(first, "first")
    assert "## Since" not in (first / "summary.md").read_text()
    assert not (first / "comparison.json").exists()
    second = make_run(tmp_path, "20260102T000000Z-0002", [rec("a", "pass"), rec("b", "link-mismatch")])
    results.finish_run(second, "second")
    summary = (second / "summary.md").read_text()
    assert summary.startswith("# second\n") and "\n## Since 20260101T000000Z-0001\n" in summary
    assert summary.index("**New failures: 1**") < summary.index("| combination |")
    data = json.loads((second / "comparison.json").read_text())
    assert [c["combination"] for c in data["new_failures"]] == ["b"] and data["base"] == first.name
