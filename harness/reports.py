"""Every report of a run directory, from its records alone: the one place that writes them.

``write_all(run_dir)`` writes summary.md (what changed since the previous comparable run at the
top), junit.xml, report.html and a metadata.json beside each record. `kmatrix run` calls it at
the end (through ``results.finish_run``), and so do `kmatrix report RUN_DIR`, `kmatrix summary`
and the merge of a sharded run: an old or merged run directory re-renders the same way, and no
report re-derives a result.

metadata.json is written here, from the records, rather than at the end of each combination:
a combination whose worker was killed never reaches its end, but its record (written when it
started) is here, and so is every record of a merged run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import compare, metadata, results, runinfo
from .compare import Comparison
from .results import Record, atomic_write
from .verdict import InfraError

BISECTS = "bisect-new-failures.json"  # `run --bisect-new-failures`: {"since": ..., "lines": [...]}
REPORT = "report.html"


@dataclass
class Bisects:
    since: str
    lines: list[str]

    def for_combination(self, cid: str) -> list[str]:
        return [line[len(f"- {cid}: "):] for line in self.lines if line.startswith(f"- {cid}: ")]


def read_bisects(run_dir: Path) -> Bisects | None:
    try:
        data = json.loads((run_dir / BISECTS).read_text())
    except (OSError, ValueError):
        return None
    return Bisects(str(data.get("since", "")), [str(x) for x in data.get("lines", [])])


def write_bisects(run_dir: Path, since: str, lines: list[str]) -> None:
    atomic_write(run_dir / BISECTS, json.dumps({"since": since, "lines": lines}, indent=2))


def since_previous(run_dir: Path, records: list[Record] | None = None) -> Comparison | None:
    """The comparison with the newest earlier finished run of the same matrix in the same
    results directory, over what this run set out to run (None when there is none)."""
    return compare.since_previous(run_dir, records)


def summary(records: list[Record], title: str, comparison: Comparison | None,
            bisects: Bisects | None) -> str:
    preface = comparison.markdown() if comparison is not None else \
        "No earlier run of this matrix in this results directory to compare with.\n"
    appendix = bisects.lines if bisects is not None else []
    return results.summary_markdown(records, title, preface, appendix)


def write_all(run_dir: Path, title: str | None = None,
              records: list[Record] | None = None) -> list[Record]:
    """Write every report of `run_dir` from its records (or from `records`: the run's own,
    with a row for every selected combination that has none on disk); returns them."""
    from . import report_html

    run_dir = run_dir.resolve()  # results/latest: compare by the real run's name
    if records is None:
        records = results.read_records(run_dir)
    info = runinfo.load(run_dir)
    comparison = since_previous(run_dir, records)
    if comparison is not None:
        atomic_write(run_dir / "comparison.json", json.dumps(comparison.to_dict(), indent=2))
    bisects = read_bisects(run_dir)
    atomic_write(run_dir / "junit.xml", results.junit_xml(records))
    text = summary(records, title or info.title(), comparison, bisects)
    if (run_dir / "coverage.md").is_file():  # a sampled run's coverage (harness/coverage.py)
        text += "\n" + (run_dir / "coverage.md").read_text()
    atomic_write(run_dir / "summary.md", text)
    metadata.write_all(run_dir, records, info)
    try:
        html = report_html.render(run_dir, records, info, comparison, bisects,
                                  title or info.title())
    except Exception as exc:  # a report bug is not a verdict: one line, exit 3
        raise InfraError(f"could not render {REPORT} ({type(exc).__name__}: {exc}); summary.md "
                         f"and junit.xml are written: report this, then rerun `kmatrix report "
                         f"{run_dir}`") from exc
    atomic_write(run_dir / REPORT, html)
    return records
