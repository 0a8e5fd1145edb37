"""The reports of a run directory, from its records alone: summary.md with the changes since the
previous run at the top, report.html (heatmap placement, cells, links, nothing to fetch),
metadata.json in TuxMake's shape for every record (a killed one too), and `kmatrix report`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import reportdata
from testhelpers import REPO

from harness import cli, heatmap, metadata, reports, results, runinfo
from harness.matrix import load_matrix
from harness.runinfo import Layout

OLD = "20261128T000000Z-aaaa"
NEW = "20261129T000000Z-bbbb"


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reports are written atomically (tested in test_results.py); here the syncs to disk
    of a few hundred small files would only cost time."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Yesterday: stats and kdb failing, the rest passing. Today: every verdict there is."""
    old = reportdata.write_run(tmp_path, OLD, reportdata.default_matrix_records(
        {"stats": "build-error", "kdb": "link-mismatch", "procfs": "build-error"}))
    new = reportdata.write_run(tmp_path, NEW, reportdata.default_matrix_records())
    return old, new


# --- heatmap placement --------------------------------------------------------------------------

def test_the_default_matrix_is_a_two_by_two_grid_with_its_excluded_cell_and_include_rows() -> None:
    matrix = load_matrix(REPO / "matrix.yaml")
    info = runinfo.describe_matrix(matrix)
    layout = Layout([(s, v) for s, v in info["axes"]], info["includes"], info["cells"])
    heat = heatmap.place(layout, [c.id for c in matrix.combinations])
    assert heat.grid is not None
    assert heat.grid.row_axes == ["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"]
    assert heat.grid.col_axes == ["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE"]
    assert [[c.combination for c in cells] for _, cells in heat.grid.rows] == \
        [["dups-y.trace-y", "dups-y.trace-n"], ["", "dups-n.trace-n"]]  # dups-n.trace-y excluded
    assert [p.combination for p in heat.rows] == list(matrix.include_ids)


def test_a_thousand_combinations_page_into_a_grid_of_at_most_sixteen_columns() -> None:
    axes = [(f"CONFIG_A{i}", ["y", "n"]) for i in range(10)]
    cells = {}
    for n in range(1024):
        values = ["y" if n >> (9 - i) & 1 else "n" for i in range(10)]
        cells[f"c{n}"] = values
    heat = heatmap.place(Layout(axes, [], cells), list(cells))
    assert heat.grid is not None
    assert len(heat.grid.columns) == 16 and len(heat.grid.rows) == 64
    assert heat.grid.pages == 64 // heatmap.ROWS_PER_PAGE
    placed = [c.combination for _, row in heat.grid.rows for c in row]
    assert sorted(placed) == sorted(cells)


def test_no_record_vanishes_and_a_selected_combination_without_one_shows_as_missing() -> None:
    layout = Layout([("CONFIG_A", ["y", "n"])], ["inc", "other-inc"], {"a-y": ["y"], "a-n": ["n"]},
                    selected=["a-y", "a-n", "inc"])
    heat = heatmap.place(layout, ["a-y", "inc", "stray"])
    assert heat.grid is not None
    states = {c.combination: c.state for _, row in heat.grid.rows for c in row}
    assert states == {"a-y": "record", "a-n": "missing"}
    assert [(p.combination, p.state) for p in heat.rows] == [("inc", "record"),
                                                             ("stray", "record")]


def test_a_cell_left_out_by_only_is_not_called_excluded_and_an_empty_row_goes() -> None:
    layout = Layout([("CONFIG_A", ["y", "n"]), ("CONFIG_B", ["y", "n"])], [],
                    {"y.y": ["y", "y"], "y.n": ["y", "n"], "n.n": ["n", "n"]}, selected=["y.y"])
    heat = heatmap.place(layout, ["y.y"])
    assert heat.grid is not None
    # row n is all left out: gone; column n of row y: in the matrix, not in this run
    assert [[(c.combination, c.state) for c in cells] for _, cells in heat.grid.rows] == \
        [[("y.y", "record")]]
    layout.selected = ["y.y", "n.n"]
    heat = heatmap.place(layout, ["y.y", "n.n"])
    assert heat.grid is not None
    assert [[c.state for c in cells] for _, cells in heat.grid.rows] == \
        [["record", "unselected"], ["absent", "record"]]


def test_the_layout_saved_in_run_json_is_the_layout_the_report_reads(tmp_path: Path) -> None:
    from harness.settings import RunSettings

    matrix = load_matrix(REPO / "matrix.yaml")
    settings = RunSettings("r1", str(matrix.path), str(tmp_path), "/cache", "/tree",
                           {"version": "6.12.117"}, "img", only=["stats"],
                           image_packages=reportdata.PACKAGES,
                           matrix_info=runinfo.describe_matrix(matrix))
    settings.save()
    info = runinfo.load(tmp_path)
    layout = info.layout([])
    assert layout.axes == [(a.symbol, list(a.values)) for a in matrix.axes] and not layout.guessed
    assert layout.includes == list(matrix.include_ids) and layout.selected == ["stats"]
    assert layout.cells["dups-n.trace-n"] == ["n", "n"] and "stats" not in layout.cells
    assert info.arch == matrix.arch.name and info.targets == ["kernel/module/"]
    assert info.compiler() == ("gcc-12", "12.2.0")
    assert info.title() == "kmatrix run r1: matrix.yaml on Linux 6.12.117"


def test_a_run_directory_without_a_layout_guesses_the_axes_from_the_records() -> None:
    records = reportdata.default_matrix_records()
    layout = runinfo.guess_layout(records)
    assert [s for s, _ in layout.axes] == ["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS",
                                           "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE"]
    assert layout.axes[0][1] == ["y", "n"] and layout.guessed
    assert "stats" in layout.includes and "dups-y.trace-n" not in layout.includes


# --- every report from the records --------------------------------------------------------------

def test_write_all_writes_every_report_and_a_metadata_json_for_every_record(
        two_runs: tuple[Path, Path]) -> None:
    _, new = two_runs
    records = reports.write_all(new)
    for name in ("summary.md", "junit.xml", "report.html"):
        assert (new / name).is_file(), name
    killed = [r for r in records if r.verdict is None]
    assert killed  # a record that never finished (a killed worker) gets its metadata too
    for rec in records:
        meta = json.loads((new / rec.combination / metadata.METADATA).read_text())
        assert meta["results"]["status"] == metadata.status(rec)
    assert {metadata.status(r) for r in killed} == {"ERROR"}


def test_summary_starts_with_what_changed_since_the_previous_run(two_runs: tuple[Path, Path]) -> None:
    _, new = two_runs
    reports.write_all(new)
    text = (new / "summary.md").read_text()
    assert f"## Since {OLD}" in text
    top = text.index("New failures")
    assert top < text.index("Fixed: 1") < text.index("Still failing") < text.index("| combination |")
    assert "- `procfs`: build-error -> pass" in text  # fixed today


def test_the_report_shows_each_record_as_a_cell_of_its_verdict_linked_to_its_files(
        two_runs: tuple[Path, Path]) -> None:
    _, new = two_runs
    records = reports.write_all(new)
    html = (new / reports.REPORT).read_text()
    dom = reportdata.parse(html)
    assert reportdata.problems(dom, records, new) == []
    assert "http://" not in html and "https://" not in html
    # new failures first at the top, and marked in the heatmap
    assert html.index("New failures:") < html.index("Fixed:") < html.index("Still failing:") \
        < html.index('id="heatmap"')
    ringed = {c.combination for c in dom.cells if "new-failure" in c.classes}
    assert "stats" not in ringed and "dups-y.trace-n" in ringed


def test_the_checker_catches_a_wrong_colour_and_a_dead_link(two_runs: tuple[Path, Path]) -> None:
    _, new = two_runs
    records = reports.write_all(new)
    html = (new / reports.REPORT).read_text()
    pass_colour = "#2e7d32"
    broken = html.replace(f'data-verdict="pass" data-fail="0" style="background:{pass_colour}"',
                          'data-verdict="pass" data-fail="0" style="background:#c62828"', 1)
    assert broken != html
    assert any("cell pass #c62828" in p for p in reportdata.problems(reportdata.parse(broken),
                                                                      records, new))
    (new / "stats" / "reproducer.sh").unlink()
    html = reports.write_all(new) and (new / reports.REPORT).read_text()
    assert "stats: no link to its reproducer.sh" in reportdata.problems(
        reportdata.parse(html), records, new)
    fetched = html.replace("</head>", '<script src="https://cdn.example/x.js"></script></head>')
    assert any("https://cdn.example/x.js" in p for p in reportdata.problems(
        reportdata.parse(fetched), records, new))


def test_a_report_that_cannot_render_is_an_infrastructure_error_after_the_summary(
        two_runs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import report_html
    from harness.verdict import InfraError

    _, new = two_runs

    def broken(*args: object) -> str:
        raise KeyError("no such verdict")

    monkeypatch.setattr(report_html, "render", broken)
    with pytest.raises(InfraError, match="could not render report.html .*kmatrix report"):
        reports.write_all(new)
    assert (new / "summary.md").is_file() and (new / "junit.xml").is_file()
    assert not (new / reports.REPORT).exists()


def test_an_old_run_directory_without_run_json_still_renders_every_record(
        two_runs: tuple[Path, Path]) -> None:
    _, new = two_runs
    (new / "run.json").unlink()
    (new / runinfo.MATRIX_COPY).unlink()
    records = reports.write_all(new)
    dom = reportdata.parse((new / reports.REPORT).read_text())
    assert reportdata.problems(dom, records, new) == []
    assert "predates the recorded matrix layout" in dom.text


def test_bisect_answers_show_in_the_summary_and_beside_the_combination(
        two_runs: tuple[Path, Path]) -> None:
    _, new = two_runs
    lines = [f"## New failures since {OLD}: 1",
             "- dups-y.trace-n: config bisect from dups-n.trace-n: CONFIG_X=y (3 configs, 40 s)"]
    reports.write_bisects(new, OLD, lines)
    reports.write_all(new)
    assert (new / "summary.md").read_text().rstrip().endswith(lines[1])
    html = (new / reports.REPORT).read_text()
    assert html.count("config bisect from dups-n.trace-n: CONFIG_X=y") == 2  # section + row


def test_kmatrix_report_rewrites_the_reports_of_an_old_run(two_runs: tuple[Path, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, new = two_runs
    assert cli.main(["report", str(new)]) == 3  # infra-error records: exit 3, like the run
    assert (new / reports.REPORT).is_file() and (new / "junit.xml").is_file()
    before = (new / "summary.md").read_text()
    (new / "summary.md").unlink()
    assert cli.main(["summary", str(new)]) == 3
    assert (new / "summary.md").read_text() == before  # from the records alone: the same
    assert "dups-y.trace-n" in capsys.readouterr().out


def test_kmatrix_report_on_a_directory_it_cannot_write_says_so_and_exits_3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    run = reportdata.write_run(tmp_path, NEW, reportdata.default_matrix_records({}))

    def read_only(run_dir: Path, title: str | None = None) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(reports, "write_all", read_only)
    assert cli.main(["report", str(run)]) == 3
    out = capsys.readouterr()
    assert "could not rewrite the reports" in out.err and "written" not in out.out
    assert cli.main(["summary", str(run)]) == 0  # the table still prints: every record passed
    assert "dups-y.trace-n" in capsys.readouterr().out


def test_finish_run_through_results_latest_compares_with_the_real_previous_run(
        two_runs: tuple[Path, Path]) -> None:
    old, new = two_runs
    results.point_latest(new.parent, new)
    results.finish_run(new.parent / "latest")
    assert f"## Since {OLD}" in (new / "summary.md").read_text()
    shutil.rmtree(old)
    reports.write_all(new)
    assert "No earlier run of this matrix" in (new / "summary.md").read_text()


# --- metadata.json ------------------------------------------------------------------------------

def test_metadata_uses_tuxmakes_field_names(two_runs: tuple[Path, Path]) -> None:
    _, new = two_runs
    reports.write_all(new)
    meta = json.loads((new / "boot-dups-on" / metadata.METADATA).read_text())
    build = meta["build"]
    assert build["target_arch"] == "x86_64" and build["toolchain"] == "gcc-12"
    assert build["kconfig"] == "tinyconfig" and "CONFIG_MODULES=y" in build["kconfig_add"]
    assert build["targets"] == ["kernel/module/", "bzImage"]  # a boot adds the kernel image
    assert build["reproducer_cmdline"][:2] == ["kmatrix", "run"]
    assert meta["compiler"] == {"name": "gcc", "version": "12.2.0"}
    res = meta["results"]
    assert set(res["targets"]) == {"config", "kernel/module/", "bzImage"}
    assert res["duration"]["build"] == 41.0 and "total" in res["duration"]
    assert res["artifacts"]["log"] == ["build.log"]
    assert meta["kmatrix"]["verdict"] == json.loads(
        (new / "boot-dups-on" / "record.json").read_text())["verdict"]


def test_metadata_status_never_passes_what_was_not_judged() -> None:
    recs = {v: reportdata.make_record("x", v, {}) for v in reportdata.VERDICTS}
    assert metadata.status(recs["pass"]) == "PASS"
    assert metadata.status(recs["config-dropped"]) == "FAIL"
    assert metadata.status(recs["infra-error"]) == "ERROR"
    assert metadata.status(recs[""]) == "ERROR"  # never finished
    skipped = metadata.metadata(recs["config-dropped"], runinfo.RunInfo("r", "m.yaml",
                                                                        matrix_info={"targets": ["kernel/module/"]}))
    assert skipped["results"]["targets"]["config"]["status"] == "FAIL"
    assert skipped["results"]["targets"]["kernel/module/"]["status"] == "SKIP"
