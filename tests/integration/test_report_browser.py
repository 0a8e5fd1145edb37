"""report.html in a real browser: Debian's chromium, headless, driven over the DevTools protocol
(tests/headless.py), opens the report of a run directory; the rendered DOM is checked against
the records (a cell per combination, the colour the browser computed for it, its reason on
hover, its link, its log and reproducer links), the page makes no request beyond its own file,
and a screenshot lands in results/test-artifacts/ (beside results/tests-junit.xml).

The real run is a `kmatrix run` of the default matrix.yaml (a few of its combinations, on the
real tree in real containers); KMATRIX_REPORT_RUN_DIR=results/<run-id> checks a run made
before instead (`nox -s report_browser` checks results/latest, the last `nox -s matrix`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import headless
import pytest
import reportdata
from testhelpers import REPO, run_kmatrix

from harness import heatmap, kcidb, metadata, reports, results, runinfo
from harness.report_html import PALETTE, key_of

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("browser")]

ARTIFACTS = REPO / "results" / "test-artifacts"
# the default matrix's combinations the suite runs for real: an axis cell of each value and an
# include entry (the object tier: seconds each with a warm cache)
REAL_SUBSET = ("dups-y.trace-y", "dups-n.trace-n", "stats")


def rgb(colour: str) -> str:
    """#2e7d32 -> rgb(46, 125, 50), as getComputedStyle says it."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def check_in_browser(run_dir: Path, shot: str, full_page: bool = False,
                     height: int = 900) -> tuple[reportdata.Dom, str]:
    """Open the run's report.html; check it against the records; save a screenshot (the
    window, `height` pixels, or the whole page)."""
    records = results.read_records(run_dir)
    assert records, f"no records in {run_dir}"
    with headless.Browser(height=height) as browser:
        page = browser.open(run_dir / reports.REPORT)
        browser.screenshot(ARTIFACTS / shot, full_page=full_page)
        if full_page:  # and the top of it: what a reader sees first (the README's picture)
            browser.screenshot(ARTIFACTS / shot.replace(".png", "-top.png"))
    assert page.fetched_from_network() == [], "the report fetched from the network"
    assert page.requests == [page.url], page.requests  # its own file, nothing else
    assert page.errors == [], page.errors
    dom = reportdata.parse(page.html)
    assert reportdata.problems(dom, records, run_dir) == []
    rendered = {c.combination: c for c in dom.cells if c.table in ("grid", "includes")}
    for rec in records:
        cell = rendered[rec.combination]
        assert cell.attrs["data-probe-bg"] == rgb(PALETTE[key_of(rec)][0]), rec.combination
    width, shot_height = headless.png_size(ARTIFACTS / shot)
    assert width == 1280 and shot_height >= height
    return dom, page.html


def test_the_report_of_every_verdict_renders_as_the_records_say(tmp_path: Path) -> None:
    old = reportdata.write_run(tmp_path, "20261128T000000Z-aaaa", reportdata.default_matrix_records(
        {"stats": "build-error", "kdb": "link-mismatch"}))
    new = reportdata.write_run(tmp_path, "20261129T000000Z-bbbb",
                               reportdata.default_matrix_records())
    reports.write_all(old)
    reports.write_all(new)
    dom, html = check_in_browser(new, "report-every-verdict.png")
    # what changed comes first, new failures first of all, as the comparison says
    comparison = reports.since_previous(new)
    assert comparison is not None and comparison.new_failures
    assert html.index('id="changes"') < html.index('id="legend"') < html.index('id="heatmap"')
    kinds = re.findall(r'<ul class="changes" data-kind="([a-z-]+)"', html)
    assert kinds[:3] == ["new-failure", "still-failing", "not-judged"], kinds
    first = html.index('data-kind="new-failure"')
    listed = re.findall(r'<a href="#c-([^"]+)">', html[first:html.index("</ul>", first)])
    assert listed == [c.combination for c in comparison.new_failures]
    # one page: every cell and every combination's row is on screen
    assert all(c.attrs["data-probe-shown"] == "1" for c in dom.cells)
    assert {d["data-combination"] for d in dom.details.values()} == \
        {r.combination for r in results.read_records(new)}
    assert all(d["data-probe-shown"] == "1" for d in dom.details.values())


def test_a_thousand_combinations_page_in_the_browser(tmp_path: Path) -> None:
    run = reportdata.big_run(tmp_path, "20261129T000000Z-cccc")
    records = reports.write_all(run)
    assert len(records) == 1000
    dom, _ = check_in_browser(run, "report-1000.png")
    shown = [c for c in dom.cells if c.attrs.get("data-probe-shown") == "1" and c.combination]
    # nine axes: a 32 x 16 grid (one page of rows), and the first page of the 488 include rows
    grid = [c for c in shown if c.table == "grid"]
    includes = [c for c in shown if c.table == "includes"]
    assert len(grid) == 512 and len(includes) == heatmap.INCLUDES_PER_PAGE
    details_shown = [d for d in dom.details.values() if d["data-probe-shown"] == "1"]
    assert len(details_shown) == 50


def test_the_browser_sees_a_page_that_fetches(tmp_path: Path) -> None:
    """The network check can fail: a page with an external image and script is caught."""
    page = tmp_path / "fetches.html"
    page.write_text('<html><body><img src="http://example.org/logo.png">'
                    '<script src="https://cdn.example.com/x.js"></script></body></html>')
    with headless.Browser() as browser:
        seen = browser.open(page)
    assert seen.fetched_from_network() == ["http://example.org/logo.png",
                                           "https://cdn.example.com/x.js"]


def test_the_checker_catches_a_colour_the_browser_computes_differently(tmp_path: Path) -> None:
    """A stylesheet rule that repaints pass cells red passes the HTML check but not the
    browser's computed colour."""
    run = reportdata.write_run(tmp_path, "20261129T000000Z-dddd",
                               reportdata.default_matrix_records())
    reports.write_all(run)
    page = run / reports.REPORT
    page.write_text(page.read_text().replace(
        "</style>", 'td.cell[data-verdict="pass"] { background: #c62828 !important; }</style>'))
    with pytest.raises(AssertionError) as caught:
        check_in_browser(run, "report-wrong-colour.png")
    wrong = str(caught.value).splitlines()[0]
    passing = {r.combination for r in results.read_records(run) if r.passed}
    assert wrong in passing, str(caught.value)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A real run directory of the default matrix: KMATRIX_REPORT_RUN_DIR's (copied), or a
    `kmatrix run matrix.yaml --only ...` of REAL_SUBSET made here."""
    given = os.environ.get("KMATRIX_REPORT_RUN_DIR")
    scratch = tmp_path_factory.mktemp("real")
    if given:
        source = Path(given).resolve()
        run = scratch / source.name
        shutil.copytree(source, run, ignore=shutil.ignore_patterns("*.lock", "kcidb.json"))
        return run
    request.getfixturevalue("kernel_tree")  # unpacked, and the image made, under their locks
    request.getfixturevalue("builder_image")
    only = [arg for cid in REAL_SUBSET for arg in ("--only", cid)]
    done = run_kmatrix("run", str(REPO / "matrix.yaml"), "--results", str(scratch), *only,
                       timeout=1800)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return (scratch / "latest").resolve()


def test_a_real_run_of_the_default_matrix_renders_as_its_records_say(real_run: Path) -> None:
    records = reports.write_all(real_run)  # the same entry point `kmatrix report` uses
    info = runinfo.load(real_run)
    assert Path(info.matrix_path).name == "matrix.yaml" and info.kernel.get("version")
    assert all(r.verdict is not None for r in records), [r.combination for r in records]
    dom, _ = check_in_browser(real_run, "report-default-matrix.png", full_page=True,
                              height=1060)
    wanted = set(info.settings.get("only") or []) or {r.combination for r in records}
    assert {c.combination for c in dom.cells if c.combination} == wanted
    # the run's inputs are on the page as run.json has them
    assert info.kernel["version"] in dom.text and info.image in dom.text
    # metadata.json beside every record, saying what the record says
    for rec in records:
        meta = json.loads((real_run / rec.combination / metadata.METADATA).read_text())
        assert meta["kmatrix"]["verdict"] == rec.verdict_text
        assert meta["results"]["status"] == metadata.status(rec)
        assert meta["build"]["target_arch"] == "x86_64" and meta["build"]["toolchain"]


def test_the_kcidb_export_of_a_real_run_validates(real_run: Path) -> None:
    done = run_kmatrix("export", "--kcidb", str(real_run), "-o", str(real_run / "kcidb.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((real_run / "kcidb.json").read_text())
    kcidb.validate(data)
    records = results.read_records(real_run)
    assert len(data["builds"]) == len(records)
    assert {t["path"] for t in data["tests"]} >= {"kmatrix.config_truth", "kmatrix.link_check"}
