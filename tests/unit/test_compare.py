"""compare: every combination of two runs lands in exactly one list."""

from __future__ import annotations

import json
from pathlib import Path

from harness import compare, results
from harness.results import Record


def rec(cid: str, verdict: str, reason: str = "", status: str = "done") -> Record:
    return Record(combination=cid, run_id="r", matrix="m.yaml", values={}, requested={},
                  status=status, verdict=verdict or None, reasons=[reason] if reason else [])


BASE = [rec("a", "pass"), rec("b", "pass"), rec("c", "build-error", "x.c:1: error"),
        rec("d", "link-mismatch", "dups.o missing"), rec("e", "pass"), rec("gone", "pass"),
        rec("f", "infra-error", "docker"), rec("g", "pass")]
NEW = [rec("a", "pass"), rec("b", "boot-fail", "panic"), rec("c", "build-error", "y.c:2: error"),
       rec("d", "pass"), rec("e", "infra-error", "disk full"), rec("new", "config-dropped", "X"),
       rec("f", "build-error", "z"), rec("g", "", status="running")]


def test_every_combination_lands_in_one_list() -> None:
    c = compare.compare(BASE, NEW, "r1", "r2")
    assert [x.combination for x in c.new_failures] == ["b", "f"]
    assert [x.combination for x in c.fixed] == ["d"]
    assert [x.combination for x in c.still_failing] == ["c"] and c.still_failing[0].reason_changed
    assert [x.combination for x in c.not_judged] == ["e", "g"]  # infra now: neither way
    assert [x.combination for x in c.added] == ["new"]
    assert [x.combination for x in c.removed] == ["gone"]
    assert c.unchanged_passes == 1 and c.regressed


def test_markdown_puts_new_failures_first() -> None:
    text = compare.compare(BASE, NEW, "r1", "r2").markdown()
    assert text.index("New failures: 2") < text.index("Fixed: 1") < text.index("Still failing")
    assert "- `b`: pass -> boot-fail: panic" in text
    assert "(reason changed)" in text
    same = compare.compare(BASE[:2], BASE[:2], "r1", "r2")
    assert not same.regressed and "No change: 2 combinations pass" in same.markdown()


def write_run(results_dir: Path, name: str, matrix: str) -> Path:
    run = results_dir / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"matrix_path": matrix}))
    results.write_record(run, rec("a", "pass"))
    return run


def test_previous_comparable_run_is_the_newest_older_run_of_the_same_matrix(tmp_path: Path) -> None:
    old = write_run(tmp_path, "20260101T000000Z-aaaa", "/x/matrix.yaml")
    write_run(tmp_path, "20260102T000000Z-bbbb", "/x/other.yaml")
    write_run(tmp_path, "bisect-20260102T000000Z-cccc", "/x/matrix.yaml")
    now = write_run(tmp_path, "20260103T000000Z-dddd", "/y/matrix.yaml")
    assert compare.previous_comparable_run(tmp_path, now) == old
    assert compare.previous_comparable_run(tmp_path, old) is None
    assert compare.compare_dirs(old, now).unchanged_passes == 1
