"""Results: atomic writes, records, JUnit XML, the summaries, results/latest, and the verdicts'
exit statuses."""

from __future__ import annotations

import errno
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import results
from harness.results import Record, StageRecord
from harness.verdict import (
    EXIT_BAD_INPUT,
    EXIT_INFRA,
    EXIT_KERNEL_FAILED,
    EXIT_OK,
    InfraError,
    InputError,
    Verdict,
    exit_status_for,
)


def record(combo: str, verdict: str, reasons: list[str] | None = None, **kw: object) -> Record:
    defaults: dict[str, object] = dict(run_id="r1", matrix="/src/matrix.yaml",
                                       values={"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"},
                                       requested={"CONFIG_MODULES": "y"}, status="done",
                                       duration_s=12.34,
                                       reproducer=f"kmatrix run /src/matrix.yaml --only {combo}")
    defaults.update(kw)
    return Record(combination=combo, verdict=verdict, reasons=reasons or [], **defaults)  # type: ignore[arg-type]


RECORDS = [
    record("dups-y", "pass"),
    record("dups-n", "config-dropped",
           ["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y dropped by Kconfig (resolved: not set)"]),
    record("stats", "build-error", ["make failed: kernel/module/stats.c:3:1: error: a < b & \"c\"",
                                    "make[3]: *** [x] Error 1"]),
    record("sig", "link-mismatch", ["kernel/module/: expected but not linked: signing.o"]),
    record("slow", "infra-error", ["build timed out after 1800 s: raise build.timeout"]),
    record("killed", "", status="running", reproducer=""),
]


# --- atomic_write -----------------------------------------------------------------------------

def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "record.json"
    results.atomic_write(target, "one\n")
    results.atomic_write(target, "two\n")
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["record.json"]
    assert target.stat().st_mode & 0o777 == 0o644  # a shared results directory can read it


def test_an_exception_mid_write_leaves_the_old_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "record.json"
    target.write_text('{"status": "done"}\n')
    seen: list[str] = []

    def crash(fd: int) -> None:
        # the new text is in the temporary file by now: the moment a crash would truncate
        temps = [p for p in tmp_path.iterdir() if p.name != "record.json"]
        seen.extend(p.read_text() for p in temps)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        results.atomic_write(target, '{"status": "interrupted", "long": "' + "x" * 100000 + '"}\n')
    assert seen and seen[0].startswith('{"status": "interrupted"')  # the crash really was mid-write
    assert target.read_text() == '{"status": "done"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_a_failed_rename_leaves_no_file_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: str, dst: str) -> None:
        raise PermissionError(errno.EACCES, "no")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        results.atomic_write(tmp_path / "new.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_is_an_infra_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(InfraError, match=r"disk full while writing .*record\.json: free some space"):
        results.atomic_write(tmp_path / "record.json", "{}")
    assert list(tmp_path.iterdir()) == []


# --- records ----------------------------------------------------------------------------------

def test_records_round_trip_through_the_run_directory(tmp_path: Path) -> None:
    rec = record("dups-y", "pass", stages=[StageRecord("olddefconfig", "pass", 1.5, "make x"),
                                           StageRecord("build", "pass", 20.0, "make y")],
                 link={"kernel/module/": {"members": ["main.o"], "expected": ["main.o"],
                                          "missing": [], "unexpected": []}})
    path = results.write_record(tmp_path, rec)
    assert path == tmp_path / "dups-y" / "record.json"
    data = json.loads(path.read_text())
    assert data["verdict"] == "pass" and data["stages"][1]["command"] == "make y"
    assert results.read_records(tmp_path) == [rec]


def test_from_dict_ignores_keys_it_does_not_know(tmp_path: Path) -> None:
    data = json.loads(record("x", "pass").to_json())
    data["added_by_a_newer_kmatrix"] = 1
    assert Record.from_dict(data) == Record.from_dict(json.loads(record("x", "pass").to_json()))


def test_read_records_sorted_by_combination(tmp_path: Path) -> None:
    for rec in RECORDS:
        results.write_record(tmp_path, rec)
    (tmp_path / "not-a-combination").mkdir()
    assert [r.combination for r in results.read_records(tmp_path)] == sorted(
        r.combination for r in RECORDS)


def test_an_unfinished_record_counts_as_infra_error() -> None:
    assert record("x", "", status="running").final is Verdict.INFRA_ERROR
    assert record("x", "garbage").final is Verdict.INFRA_ERROR
    assert record("x", "link-mismatch").final is Verdict.LINK_MISMATCH


# --- JUnit ------------------------------------------------------------------------------------

def test_junit_xml_is_well_formed_with_failures_and_errors() -> None:
    root = ET.fromstring(results.junit_xml(RECORDS))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.attrib == {"name": "kmatrix", "tests": "6", "failures": "3", "errors": "2",
                            "time": f"{12.34 * 6:.1f}"}
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == [r.combination for r in RECORDS]
    assert cases["dups-y"].get("classname") == "kmatrix.matrix.yaml"
    assert cases["dups-y"].get("time") == "12.3"
    assert list(cases["dups-y"]) == []
    for name, kind, verdict in [("dups-n", "failure", "config-dropped"),
                                ("stats", "failure", "build-error"),
                                ("sig", "failure", "link-mismatch"),
                                ("slow", "error", "infra-error"),
                                ("killed", "error", "infra-error")]:
        children = list(cases[name])
        assert [c.tag for c in children] == [kind], name
        assert children[0].get("type") == verdict, name
    failure = cases["stats"].find("failure")
    assert failure is not None
    assert failure.get("message") == 'make failed: kernel/module/stats.c:3:1: error: a < b & "c"'
    assert failure.text == ('make failed: kernel/module/stats.c:3:1: error: a < b & "c"\n'
                            "make[3]: *** [x] Error 1\n"
                            "reproduce: kmatrix run /src/matrix.yaml --only stats")
    killed = cases["killed"].find("error")
    assert killed is not None and killed.get("message") == "" and killed.text is None


def test_junit_message_is_capped_and_single_line() -> None:
    rec = record("long", "build-error", ["x" * 800 + "\nsecond line"])
    failure = ET.fromstring(results.junit_xml([rec])).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "x" * 500


def test_junit_of_no_records() -> None:
    suite = ET.fromstring(results.junit_xml([])).find("testsuite")
    assert suite is not None and suite.get("tests") == "0" and suite.get("failures") == "0"


def test_junit_xml_stays_well_formed_with_control_characters() -> None:
    rec = record("color", "build-error", ["make failed: \x1b[01;31merror:\x1b[0m boom\x00"])
    failure = ET.fromstring(results.junit_xml([rec])).find("testsuite/testcase/failure")
    assert failure is not None and "boom" in (failure.get("message") or "")


# --- summaries --------------------------------------------------------------------------------

def test_summary_markdown_table() -> None:
    repaired = record("rep", "pass", repaired=["CONFIG_MODULE_DEBUG=y"])
    text = results.summary_markdown(RECORDS[:3] + [record("pipe", "build-error", ["a | b\nc"]),
                                                   repaired], "kmatrix run r1")
    lines = text.splitlines()
    assert lines[0] == "# kmatrix run r1"
    assert lines[2] == "2 build-error, 1 config-dropped, 2 pass"
    assert lines[4] == "| combination | verdict | time | reason | reproduce |"
    assert lines[6] == "| dups-y | pass | 12 s |  |  |"
    assert lines[7] == ("| dups-n | config-dropped | 12 s | CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y "
                        "dropped by Kconfig (resolved: not set) | "
                        "`kmatrix run /src/matrix.yaml --only dups-n` |")
    assert lines[9] == ("| pipe | build-error | 12 s | a \\| b c | "
                        "`kmatrix run /src/matrix.yaml --only pipe` |")
    assert lines[10] == "| rep | pass | 12 s | repaired: CONFIG_MODULE_DEBUG=y |  |"
    assert len(lines) == 11


def test_summary_markdown_unfinished_record() -> None:
    text = results.summary_markdown([RECORDS[-1]], "t")
    assert "1 unfinished" in text
    assert "| killed | running | 12 s |  |  |" in text


def test_summary_text_table() -> None:
    text = results.summary_text([RECORDS[0], RECORDS[1], RECORDS[4]])
    assert text.splitlines() == [
        "combination  verdict          time  reason",
        "dups-y       pass              12s  ",
        "dups-n       config-dropped    12s  CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y dropped by Kconfig "
        "(resolved: not set)",
        "             reproduce: kmatrix run /src/matrix.yaml --only dups-n",
        "slow         infra-error       12s  build timed out after 1800 s: raise build.timeout",
        "             reproduce: kmatrix run /src/matrix.yaml --only slow",
    ]


def test_finish_run_writes_reports_and_points_latest(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    for run in ("run-1", "run-2"):
        for rec in RECORDS[:2]:
            results.write_record(results_dir / run, rec)
        got = results.finish_run(results_dir / run, f"kmatrix {run}")
        assert [r.combination for r in got] == ["dups-n", "dups-y"]
        assert os.readlink(results_dir / "latest") == run
        assert (results_dir / "latest" / "summary.md").read_text().startswith(f"# kmatrix {run}\n")
        ET.parse(results_dir / run / "junit.xml")
    assert sorted(p.name for p in results_dir.iterdir()) == ["latest", "run-1", "run-2"]


# --- verdicts and exit statuses ---------------------------------------------------------------

@pytest.mark.parametrize("verdicts, status", [
    ([], EXIT_OK),
    ([Verdict.PASS, Verdict.PASS], EXIT_OK),
    ([Verdict.PASS, Verdict.CONFIG_DROPPED], EXIT_KERNEL_FAILED),
    ([Verdict.BUILD_ERROR], EXIT_KERNEL_FAILED),
    ([Verdict.LINK_MISMATCH, Verdict.PASS], EXIT_KERNEL_FAILED),
    ([Verdict.BOOT_TIMEOUT], EXIT_KERNEL_FAILED),
    ([Verdict.INFRA_ERROR], EXIT_INFRA),
    ([Verdict.LINK_MISMATCH, Verdict.INFRA_ERROR, Verdict.PASS], EXIT_INFRA),
])
def test_exit_status_for(verdicts: list[Verdict], status: int) -> None:
    assert exit_status_for(verdicts) == status


def test_exit_statuses_are_distinct_and_errors_carry_theirs() -> None:
    assert (EXIT_OK, EXIT_KERNEL_FAILED, EXIT_BAD_INPUT, EXIT_INFRA) == (0, 1, 2, 3)
    assert InputError("x").exit_status == EXIT_BAD_INPUT
    assert InfraError("x").exit_status == EXIT_INFRA
    assert [v for v in Verdict if not v.is_kernel_failure] == [Verdict.PASS, Verdict.INFRA_ERROR]
