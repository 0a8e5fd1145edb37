"""The benchmark's checks and reports (benchmarks/bench_report.py), on fake results: a failed
approach is a FAILED row with its first error line and takes part in no ratio. No timings are
asserted: the figures here are made up."""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_measure  # noqa: E402
import bench_report as br  # noqa: E402

FLEX_LOG = """\
$ tuxmake --runtime null --target-arch x86_64 ... config -M kernel/module/
W: Support for running offline not available (socat not found)
I: config: make ... tinyconfig
  HOSTCC  scripts/basic/fixdep
  LEX     scripts/kconfig/lexer.lex.c
/bin/sh: 1: flex: not found
make[2]: *** [scripts/Makefile.host:9: scripts/kconfig/lexer.lex.c] Error 127
make[1]: *** [Makefile:680: tinyconfig] Error 2
I: config: FAIL in 0:00:02.117
"""


def thin_archive(members: list[str]) -> bytes:
    """A GNU thin archive as `ar cDPrST` writes it (long names in the // table)."""
    names = b"".join(m.encode() + b"/\n" for m in members)
    out = b"!<thin>\n"
    out += b"//".ljust(16) + b" " * 32 + str(len(names)).encode().ljust(10) + b"`\n" + names
    if len(names) & 1:
        out += b"\n"
    offset = 0
    for m in members:
        out += f"/{offset}".encode().ljust(16) + b"0".ljust(12) + b"0".ljust(6) + \
            b"0".ljust(6) + b"644".ljust(8) + b"1234".ljust(10) + b"`\n"
        offset += len(m) + 2
    return out


def make_tree(tmp: Path, objects: list[str], with_objects: bool = True) -> Path:
    out = tmp / "out"
    (out / "kernel" / "module").mkdir(parents=True)
    (out / "kernel" / "module" / "built-in.a").write_bytes(thin_archive(objects))
    if with_objects:
        for o in objects:
            (out / "kernel" / "module" / o).write_bytes(b"\x7fELF")
    return out


def approach(name: str, wall: float, cpu: float, combos: int = 4, ok: bool = True,
             error_log: str = FLEX_LOG) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for i in range(combos):
        if ok or i:
            checks[f"c{i}"] = {"ok": True, "artifacts": 5, "compiles": 10, "min_compiles": 5,
                               "problems": []}
        else:
            checks[f"c{i}"] = {"ok": False, "error": br.first_error_line(error_log),
                               "problems": ["exit status 2"], "artifacts": 5, "compiles": 0,
                               "min_compiles": 5}
    fig = {"approach": name, "combos": combos, "wall_s": wall, "cpu_s": cpu,
           "system_busy_s": cpu, "marginal_median_s": wall / combos, "invocations": 40,
           "minimum": 20, "peak_rss_mib": 100, "checks": checks}
    return br.judge(fig)


def result(*approaches: dict[str, Any], combos: int = 4) -> dict[str, Any]:
    return {"machine": {"date": "2026-11-29T21:00:00+00:00", "cores": 2, "cpu": "AMD EPYC",
                        "mem_gib": 23.5, "kernel": "6.18", "kmatrix_commit": "abc1234",
                        "loadavg_start": [1.0, 1.0, 1.0], "loadavg_end": [2.0, 1.5, 1.0],
                        "host_gcc": "gcc 12", "image_gcc": "gcc 12"},
            "command": "nox -s bench", "combos": combos,
            "tree": {"version": "6.12.117", "origin": "debian"}, "image": "kmatrix-builder:x",
            "tools": {"tuxmake_version": "tuxmake 1.45.0", "tuxmake_runtime": "null"},
            "approaches": list(approaches)}


# ---------------------------------------------------------------- first error line

def test_first_error_line_names_the_missing_tool_not_make_s_echo() -> None:
    assert br.first_error_line(FLEX_LOG) == "/bin/sh: 1: flex: not found"


def test_first_error_line_prefers_compiler_error_over_make_stars() -> None:
    log = ("  CC      kernel/module/main.o\nkernel/module/main.c:12:1: error: expected ';'\n"
           "make[3]: *** [scripts/Makefile.build:229: kernel/module/main.o] Error 1\n")
    assert br.first_error_line(log).startswith("kernel/module/main.c:12:1: error:")


def test_first_error_line_skips_the_logged_command_and_falls_back_to_the_last_line() -> None:
    assert br.first_error_line("$ make -C /src error-target\nsomething odd\nlast words\n") == \
        "last words"
    assert br.first_error_line("") == "(empty log)"


# ---------------------------------------------------------------- archives and artifacts

def test_thin_archive_members_long_and_short_names(tmp_path: Path) -> None:
    path = tmp_path / "built-in.a"
    path.write_bytes(thin_archive(["main.o", "strict_rwx.o", "kmod.o", "tree_lookup.o"]))
    assert br.thin_archive_members(path) == ["main.o", "strict_rwx.o", "kmod.o", "tree_lookup.o"]
    path.write_bytes(b"!<arch>\n")
    assert br.thin_archive_members(path) == []


def test_expected_artifacts_and_cold_minimum(tmp_path: Path) -> None:
    out = make_tree(tmp_path, ["main.o", "kmod.o", "dups.o"])
    arts = br.expected_artifacts(out, ["kernel/module/"])
    assert [p.name for p in arts] == ["built-in.a", "main.o", "kmod.o", "dups.o"]
    assert br.cold_minimum(out, ["kernel/module/"]) == 3
    assert br.expected_artifacts(out, ["arch/x86/boot/bzImage"]) == [out / "arch/x86/boot/bzImage"]
    assert br.cold_minimum(out, ["arch/x86/boot/bzImage"]) == 1  # no vmlinux.a: the floor is one compile


# ---------------------------------------------------------------- checks

def test_check_passes_a_complete_cold_build(tmp_path: Path) -> None:
    out = make_tree(tmp_path, ["main.o", "kmod.o"])
    c = br.check(0, br.expected_artifacts(out, ["kernel/module/"]), 30, 2, "log")
    assert c["ok"] and c["problems"] == [] and "error" not in c


def test_check_fails_on_exit_status_with_the_first_error_line(tmp_path: Path) -> None:
    out = make_tree(tmp_path, ["main.o"])
    c = br.check(2, br.expected_artifacts(out, ["kernel/module/"]), 30, 1, FLEX_LOG)
    assert not c["ok"]
    assert c["error"] == "/bin/sh: 1: flex: not found"
    assert "exit status 2" in c["problems"]


def test_check_fails_on_missing_objects_even_with_exit_0(tmp_path: Path) -> None:
    out = make_tree(tmp_path, ["main.o", "dups.o"], with_objects=False)
    c = br.check(0, br.expected_artifacts(out, ["kernel/module/"]), 30, 2, "")
    assert not c["ok"]
    assert c["artifacts_missing"] == 2
    assert "expected artifacts missing" in c["error"]


def test_check_fails_when_nothing_was_built(tmp_path: Path) -> None:
    c = br.check(0, br.expected_artifacts(tmp_path / "empty", ["kernel/module/"]), 0, 1, "")
    assert not c["ok"] and c["artifacts_missing"] == 1


def test_check_fails_a_cold_build_that_compiled_too_little(tmp_path: Path) -> None:
    out = make_tree(tmp_path, ["main.o", "kmod.o", "dups.o"])
    c = br.check(0, br.expected_artifacts(out, ["kernel/module/"]), 1, 3, "")
    assert not c["ok"]
    assert "1 compiler runs, a cold build needs at least 3" in c["problems"]


def test_check_warm_builds_have_no_compile_floor(tmp_path: Path) -> None:
    out = make_tree(tmp_path, ["main.o"])
    assert br.check(0, br.expected_artifacts(out, ["kernel/module/"]), None, 0, "")["ok"]


def test_check_records_a_step_that_never_ran() -> None:
    c = br.check(127, [], None, 0, "", error="APIError: make-missing: executable file not found")
    assert not c["ok"] and c["error"].startswith("APIError")


def test_judge_names_the_first_failed_combination() -> None:
    fig = approach("tuxmake-dir", 30.0, 20.0, ok=False)
    assert fig["status"] == "failed"
    assert fig["error"] == "c0: /bin/sh: 1: flex: not found"
    assert fig["failed_combos"] == ["c0"]
    assert approach("naive", 30.0, 20.0)["status"] == "ok"
    assert br.judge({"approach": "x", "wall_s": 1.0})["status"] == "failed"  # nothing checked
    assert br.judge({"approach": "x", "error": "tuxmake is not installed"})["error"] == \
        "tuxmake is not installed"


# ---------------------------------------------------------------- ratios and reports

def full_result(broken: str | None = None) -> dict[str, Any]:
    figs = [approach("kmatrix-cold", 40.0, 60.0), approach("kmatrix-warm", 20.0, 30.0),
            approach("naive", 80.0, 90.0), approach("tuxmake-dir", 80.0, 100.0),
            approach("tuxmake", 150.0, 280.0, combos=2)]
    if broken:
        figs = [approach(f["approach"], 6.9, 2.3, f["combos"], ok=False)
                if f["approach"] == broken else f for f in figs]
    return result(*figs)


def test_ratios_between_successful_approaches_extrapolate_fewer_tuxmake_kernels() -> None:
    qs = {(q["peer"], q["kmatrix"]): q for q in br.ratios(full_result())}
    assert qs[("naive", "kmatrix-cold")]["wall"] == 2.0
    assert qs[("naive", "kmatrix-warm")]["cpu"] == 3.0
    assert qs[("tuxmake", "kmatrix-cold")]["wall"] == 7.5  # 150 s for 2 -> 300 s for 4
    assert qs[("tuxmake", "kmatrix-cold")]["extrapolated_from"] == 2
    assert qs[("tuxmake-dir", "kmatrix-cold")]["extrapolated_from"] is None


@pytest.mark.parametrize("broken", ["tuxmake-dir", "tuxmake", "naive"])
def test_a_failed_peer_is_failed_in_the_report_and_in_no_ratio(broken: str) -> None:
    res = full_result(broken)
    assert all(q["peer"] != broken for q in br.ratios(res))
    text = br.report(res)
    row = next(ln for ln in text.splitlines() if ln.startswith(broken + " "))
    assert "FAILED" in row and "flex: not found" in row
    assert "6.9" not in row and "2.3" not in row  # the failure's time is not shown as a figure
    assert not any(ln.startswith(f"{broken} /") for ln in text.splitlines())
    assert f"no ratio against {broken}" in text
    md = br.markdown(res, "run.json")
    assert "**FAILED** | c0: /bin/sh: 1: flex: not found" in md
    assert br.PEERS[broken] + " |" not in md and br.PEERS[broken] + " (ran" not in md
    assert "No ratio is computed against" in md


def test_a_failed_kmatrix_run_gives_no_ratio_at_all() -> None:
    res = full_result("kmatrix-cold")
    assert all(q["kmatrix"] != "kmatrix-cold" for q in br.ratios(res))
    assert "naive / kmatrix-warm" in br.report(res)


def test_an_approach_that_crashed_has_a_failed_row() -> None:
    res = full_result()
    res["approaches"].append(br.judge({"approach": "boot-cold",
                                       "error": "InfraError: builder image missing"}))
    text = br.report(res)
    assert "boot-cold" in text and "InfraError: builder image missing" in text


def test_runs_from_before_the_checks_are_not_figures() -> None:
    """docs/bench/run-E.json has no checks: every row is unchecked, no ratio is computed."""
    old = json.loads((REPO / "docs/bench/run-E.json").read_text())
    assert br.ratios(old) == []
    assert "UNCHECKED" in br.report(old) and " / kmatrix" not in br.report(old)
    assert "UNCHECKED" in br.markdown(old, "run-E.json")


def test_markdown_has_targets_and_checks_for_a_good_run() -> None:
    md = br.markdown(full_result(), "run.json")
    assert "| naive | 2.00x / 1.50x | 4.00x / 3.00x |" in md
    assert "ran 2 of 4: per-combination mean x 4" in md
    assert "| 10x faster than TuxMake bzImage per combination | not met cold (7.50x" in md
    assert "| 4 of 4 | 20 | 40 (20) |" in md
    assert "No ratio" not in md
    short = br.markdown(full_result(), "run.json", detail=False)
    assert "target (issue 5)" not in short and "| approach |" in short


def test_an_approach_on_fewer_combinations_is_held_to_its_own_minimum() -> None:
    """tuxmake-dir on 2 of 4 combinations: its gcc steps against its own minimum (20), not the
    object tier's over all 4 (40)."""
    figs = [approach("kmatrix-cold", 40.0, 60.0), approach("naive", 80.0, 90.0),
            approach("tuxmake-dir", 80.0, 100.0, combos=2)]
    figs[0]["minimum"] = figs[1]["minimum"] = 40
    row = next(ln for ln in br.report(result(*figs)).splitlines() if ln.startswith("tuxmake-dir"))
    assert "   2.00x" in row  # 40 steps / its own minimum 20


def test_same_compiler_compares_versions_not_driver_names() -> None:
    host = "x86_64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
    assert br.same_compiler({"host_gcc": host, "image_gcc": "gcc (Debian 12.2.0-14+deb12u1) 12.2.0"})
    assert br.same_compiler({"host_gcc": host, "image_gcc": "gcc (Debian 12.2.0-14) 12.2.0"}) is False
    assert br.same_compiler({"host_gcc": host}) is None
    md = br.markdown(result(approach("naive", 1.0, 1.0)), "r.json")
    assert "not the same gcc" not in md  # "gcc 12" both sides in the fake result


def test_the_load_during_the_run_and_the_conditions_are_printed() -> None:
    """A shared machine's load goes with the figures: per approach, over the run, and the note."""
    figs = [approach("kmatrix-cold", 40.0, 60.0), approach("naive", 120.0, 90.0)]
    figs[0].update({"loadavg_mean": 2.0, "loadavg_max": 3.0})
    figs[1].update({"loadavg_mean": 6.0, "loadavg_max": 9.5})
    during = bench_measure.load_during(figs)
    assert during == {"loadavg_mean_during": 5.0, "loadavg_max_during": 9.5}  # wall-weighted
    assert bench_measure.load_during([approach("x", 1.0, 1.0)]) == {}
    res = result(*figs)
    res["machine"].update(during)
    res["note"] = "shared 2-core machine: 4 other engineers' builds ran at the same time"
    md = br.markdown(res, "r.json")
    assert "the 1-minute load averaged 5.0 (highest 9.5) while the approaches ran" in md
    assert "Conditions: shared 2-core machine: 4 other engineers' builds ran" in md
    res["command"] = "nox -s bench -- --note " + res["note"]
    assert "by `nox -s bench -- --note NOTE`" in br.markdown(res, "r.json")
    assert "| - / 6.0 / 9.5 / - |" in md  # naive's row of the checks table
    assert "conditions: shared 2-core machine" in br.report(res)


# ---------------------------------------------------------------- generated doc sections

def test_replace_section_rewrites_only_between_the_markers() -> None:
    doc = "# Title\n\n## Performance\n<!-- bench:begin old -->\nold table\n<!-- bench:end -->\n\nrest\n"
    new = br.replace_section(doc, "new table\n", "docs/bench/x.json")
    assert new.startswith("# Title\n\n## Performance\n<!-- bench:begin generated from "
                          "docs/bench/x.json")
    assert "\nnew table\n<!-- bench:end -->\n\nrest\n" in new and "old table" not in new
    assert br.replace_section(new, "new table\n", "docs/bench/x.json") == new
    with pytest.raises(ValueError):
        br.replace_section("no markers", "x", "y")


@pytest.mark.parametrize("doc,detail", [("README.md", False), ("docs/performance.md", True)])
def test_committed_docs_are_what_the_committed_json_generates(doc: str, detail: bool) -> None:
    """The docs never drift from the figures: regenerating from the JSON they name is a no-op."""
    text = (REPO / doc).read_text()
    m = re.search(r"<!-- bench:begin generated from (\S+) ", text)
    assert m, f"{doc} has no generated bench section"
    source = REPO / m.group(1)
    saved = json.loads(source.read_text())
    link = os.path.relpath(source, (REPO / doc).parent)
    body = br.markdown(copy.deepcopy(saved), link, detail=detail)
    assert br.replace_section(text, body, m.group(1)) == text, \
        f"{doc} differs from {m.group(1)}: rerun bench_matrix.py --report {m.group(1)} --write-docs"
