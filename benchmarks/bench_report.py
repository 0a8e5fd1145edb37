#!/usr/bin/env python3
"""Benchmark: the reports of a large run directory (docs/report.md, "At scale").

    python3 benchmarks/bench_report.py [--combinations 1000] [--repeat 5] [--out FILE.json]

Makes a synthetic run directory of N combinations in a scratch directory (tests/reportdata.py's
``big_run``: nine two-valued axes, 512 cells, and the rest as include entries for N = 1000; every
verdict cycled over them; a record, log and reproducer per combination, as `kmatrix run` leaves
them), then measures:

  render        report_html.render alone (records already read), median of --repeat runs
  write_all     every report from the records (read records, compare with the previous run,
                summary.md, junit.xml, 1,000 metadata.json, report.html), median of --repeat runs
  size          report.html in bytes, and gzip -6 of it (what a CI artifact store would keep)
  chromium      headless chromium (tests/headless.py, one browser) opening report.html in a new
                tab until its load event and the DOM read back (scripts run), and the same for
                an empty page, median of --repeat runs

Nothing outside the scratch directory is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import headless  # noqa: E402 - tests/ on the path first
import reportdata  # noqa: E402

from harness import report_html, reports, results, runinfo  # noqa: E402


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "load_1min": os.getloadavg()[0]}


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def chromium_open(browser: headless.Browser, page: Path) -> float:
    start = time.perf_counter()
    browser.open(page)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--combinations", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    axes = max(1, int(math.log2(max(2, args.combinations))))  # 1,000: 9 axes, 512 cells
    includes = max(0, args.combinations - 2 ** axes)
    with tempfile.TemporaryDirectory(prefix="kmatrix-bench-report-") as scratch:
        root = Path(scratch)
        previous = reportdata.big_run(root, "20261128T000000Z-aaaa", axes, includes)
        run = reportdata.big_run(root, "20261129T000000Z-bbbb", axes, includes)
        reports.write_all(previous)
        records = results.read_records(run)
        info = runinfo.load(run)
        comparison = reports.since_previous(run)
        render = timed(lambda: report_html.render(run, records, info, comparison, None,
                                                  info.title()), args.repeat)
        write_all = timed(lambda: reports.write_all(run), args.repeat)
        html = (run / reports.REPORT).read_bytes()
        figures: dict[str, object] = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(), "combinations": len(records), "axes": axes,
            "includes": includes,
            "render_s": statistics.median(render), "render_all_s": render,
            "write_all_s": statistics.median(write_all), "write_all_all_s": write_all,
            "report_bytes": len(html), "report_gzip_bytes": len(gzip.compress(html, 6)),
        }
        empty = root / "empty.html"
        empty.write_text("<!DOCTYPE html><html><body></body></html>")
        with headless.Browser() as browser:
            chromium_open(browser, empty)  # warm-up: the first tab pays for the renderer
            base = [chromium_open(browser, empty) for _ in range(args.repeat)]
            full = [chromium_open(browser, run / reports.REPORT) for _ in range(args.repeat)]
        figures.update({"chromium_empty_s": statistics.median(base),
                        "chromium_report_s": statistics.median(full),
                        "chromium_report_all_s": full,
                        "chromium_extra_s": statistics.median(full) - statistics.median(base)})
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
