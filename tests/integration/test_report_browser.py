"""report.html in a real browser: Debian's chromium, headless, opens the report of a run
directory; the rendered DOM is checked against the records (a cell per combination, the colour
the browser computed for it, its reason on hover, its link, its log and reproducer links), no
request leaves the browser, and a screenshot lands in results/test-artifacts/.

KMATRIX_REPORT_RUN_DIR=results/<run-id> checks the report of a real run the same way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import headless
import pytest
import reportdata

from harness import heatmap, reports, results
from harness.report_html import PALETTE, key_of
from testhelpers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("browser")]

ARTIFACTS = REPO / "results" / "test-artifacts"


def rgb(colour: str) -> str:
    """#2e7d32 -> rgb(46, 125, 50), as getComputedStyle says it."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def check_in_browser(run_dir: Path, shot: str) -> reportdata.Dom:
    records = results.read_records(run_dir)
    page = run_dir / reports.REPORT
    probe = headless.probed_copy(page)
    try:
        with headless.network_trap() as trap:
            dom = reportdata.parse(headless.dump_dom(probe, trap))
            headless.screenshot(page, ARTIFACTS / shot, trap)
    finally:
        probe.unlink()
    assert trap.requests == [], f"the report asked the network for: {trap.requests}"
    assert reportdata.problems(dom, records, run_dir) == []
    rendered = {c.combination: c for c in dom.cells if c.table in ("grid", "includes")}
    for rec in records:
        cell = rendered[rec.combination]
        assert cell.attrs["data-probe-bg"] == rgb(PALETTE[key_of(rec)][0]), rec.combination
    assert headless.png_size(ARTIFACTS / shot) == (1280, 2000)
    return dom


def test_the_report_of_every_verdict_renders_as_the_records_say(tmp_path: Path) -> None:
    old = reportdata.write_run(tmp_path, "20261128T000000Z-aaaa", reportdata.default_matrix_records(
        {"stats": "build-error", "kdb": "link-mismatch"}))
    new = reportdata.write_run(tmp_path, "20261129T000000Z-bbbb",
                               reportdata.default_matrix_records())
    reports.write_all(old)
    reports.write_all(new)
    dom = check_in_browser(new, "report-every-verdict.png")
    # one page: every cell and every combination's row is on screen
    assert all(c.attrs["data-probe-shown"] == "1" for c in dom.cells)
    assert {d["data-combination"] for d in dom.details.values()} == \
        {r.combination for r in results.read_records(new)}
    assert all(d["data-probe-shown"] == "1" for d in dom.details.values())


def test_a_thousand_combinations_page_in_the_browser(tmp_path: Path) -> None:
    run = reportdata.big_run(tmp_path, "20261129T000000Z-cccc")
    records = reports.write_all(run)
    assert len(records) == 1000
    dom = check_in_browser(run, "report-1000.png")
    shown = [c for c in dom.cells if c.attrs.get("data-probe-shown") == "1" and c.combination]
    # nine axes: a 32 x 16 grid (one page of rows), and the first page of the 488 include rows
    grid = [c for c in shown if c.table == "grid"]
    includes = [c for c in shown if c.table == "includes"]
    assert len(grid) == 512 and len(includes) == heatmap.INCLUDES_PER_PAGE
    details_shown = [d for d in dom.details.values() if d["data-probe-shown"] == "1"]
    assert len(details_shown) == 50


def test_the_network_trap_sees_a_page_that_fetches(tmp_path: Path) -> None:
    """The check can fail: a page with an external image reaches the trap."""
    page = tmp_path / "fetches.html"
    page.write_text('<html><body><img src="http://example.org/logo.png"></body></html>')
    with headless.network_trap() as trap:
        headless.dump_dom(page, trap)
    assert trap.requests and "example.org" in trap.requests[0]


@pytest.mark.skipif(not os.environ.get("KMATRIX_REPORT_RUN_DIR"),
                    reason="set KMATRIX_REPORT_RUN_DIR=results/<run-id> to check a real run")
def test_a_real_run_renders_as_its_records_say(tmp_path: Path) -> None:
    source = Path(os.environ["KMATRIX_REPORT_RUN_DIR"]).resolve()
    run = tmp_path / source.name
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("*.lock"))
    reports.write_all(run)
    check_in_browser(run, f"report-{source.name}.png")
