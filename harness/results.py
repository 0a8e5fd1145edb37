"""Results: one JSON record per combination, the single source of every report.

results/<run-id>/
  run.json                 the run: matrix, kernel, image (with its package pins), settings
  <combination>/record.json  inputs, resolved config hash, verdict, reasons, stages, timings
  <combination>/build.log    every command (as a rerunnable `docker run` line) and its output
  <combination>/config       the resolved .config
  <combination>/reproducer.sh
  <combination>/metadata.json  the record in TuxMake's metadata.json shape
  junit.xml, summary.md, report.html   written from the records, never re-derived
results/latest -> <run-id>
Every file is written atomically (temporary file + rename): an interrupted run never leaves a
truncated record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .verdict import InfraError, KmatrixError, Verdict

RECORD = "record.json"


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a whole file or nothing (a temporary file renamed over it), readable by others
    like any file the build writes (mkstemp alone would leave it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InfraError(f"disk full while writing {path}: free some space and rerun") from exc
        raise


def remembered_strings(path: Path, make: Callable[[], dict[str, str]]) -> dict[str, str]:
    """A str -> str mapping kept as JSON at `path` (a memo in the cache, named by what it was
    made from): read back when whole, else made by `make` and written; a damaged or empty
    memo is made again, and a memo that cannot be written only costs making it next time."""
    try:
        known = json.loads(path.read_text())
        if isinstance(known, dict) and known and all(isinstance(v, str) for v in known.values()):
            return known
    except (OSError, ValueError):
        pass
    made = make()
    with contextlib.suppress(OSError):
        atomic_write(path, json.dumps(made, sort_keys=True))
    return made


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class StageRecord:
    name: str  # config, olddefconfig, config-truth, build, link-check, boot
    status: str  # pass, fail, error, skipped
    duration_s: float = 0.0
    command: str = ""  # the exact rerunnable command, where the stage ran one


@dataclass
class Record:
    combination: str
    run_id: str
    matrix: str
    values: dict[str, str]  # the combination's own values
    requested: dict[str, str]  # everything asked of Kconfig (fragments, common, own)
    status: str = "running"  # running, done, interrupted
    verdict: Verdict | None = None  # None until the combination finished
    reasons: list[str] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    duplicate_of: str = ""  # resolves to the same .config as this combination: one tree
    resolved_config_hash: str = ""
    mismatches: list[dict[str, str]] = field(default_factory=list)
    link: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    boot: dict[str, Any] | None = None
    kernel: dict[str, Any] = field(default_factory=dict)
    image: dict[str, str] = field(default_factory=dict)
    started: str = field(default_factory=now)
    finished: str = ""
    duration_s: float = 0.0
    reproducer: str = ""
    output_dir: str = ""
    arch: str = ""  # the architecture and toolchain it built with (harness/arch, toolchains)
    toolchain: str = ""
    compiler: str = ""  # the resolved config's CONFIG_CC_VERSION_TEXT: the exact compiler

    def __post_init__(self) -> None:
        if isinstance(self.verdict, str) and not isinstance(self.verdict, Verdict):
            try:
                self.verdict = Verdict(self.verdict) if self.verdict else None
            except ValueError:
                self.verdict = None  # not a verdict kmatrix knows: as if it never finished

    def to_json(self) -> str:
        data = asdict(self)
        data["verdict"] = self.verdict.value if self.verdict is not None else ""
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        data = dict(data)
        data["stages"] = [StageRecord(**s) for s in data.get("stages", [])]
        try:
            data["verdict"] = Verdict(data["verdict"]) if data.get("verdict") else None
        except ValueError:
            data["verdict"] = None  # not a verdict kmatrix knows: as if it never finished
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def final(self) -> Verdict:
        """The verdict for reports and exit statuses: a record that never finished is an
        infrastructure problem, never a kernel verdict."""
        return self.verdict if self.verdict is not None else Verdict.INFRA_ERROR

    @property
    def verdict_text(self) -> str:
        """The verdict as reports print it (the record's status while it has none)."""
        return self.verdict.value if self.verdict is not None else self.status

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


def write_record(run_dir: Path, record: Record) -> Path:
    path = run_dir / record.combination / RECORD
    atomic_write(path, record.to_json())
    return path


def read_records(run_dir: Path) -> list[Record]:
    """Every record of a run, sorted by combination; a record that cannot be read (truncated,
    not JSON, not a record) is an infra-error row naming the fault, never a lost row."""
    records = []
    for path in sorted(run_dir.glob(f"*/{RECORD}")):
        try:
            data = json.loads(path.read_text(errors="replace"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            records.append(Record.from_dict(data))
        except (OSError, ValueError, TypeError) as exc:
            records.append(missing_record(path.parent.name, run_dir.name,
                                          f"its {RECORD} cannot be read ({type(exc).__name__}: "
                                          f"{' '.join(str(exc).split())[:120]})"))
    return records


def missing_record(combination: str, run_id: str, why: str, matrix: str = "") -> Record:
    """The row of a combination that has no usable record: an infra-error, never a pass."""
    return Record(combination=combination, run_id=run_id, matrix=matrix, values={},
                  requested={}, status="no-record", verdict=Verdict.INFRA_ERROR,
                  reasons=[f"no record: {why}; rerun it"], finished=now())


def complete_records(run_dir: Path, expected: list[str], matrix: str = "",
                     why: str = "") -> list[Record]:
    """The run's records plus an infra-error row for every expected combination (every one
    pytest selected) that never got a record, written where that is possible."""
    why = why or ("it never wrote one (it failed before its first record, or the record could "
                  "not be written)")
    records = read_records(run_dir)
    have = {r.combination for r in records}
    for combo in expected:
        if combo in have:
            continue
        have.add(combo)
        record = missing_record(combo, run_dir.name, why, matrix)
        try:
            write_record(run_dir, record)
        except (OSError, KmatrixError):
            pass  # the reports below still carry the row
        records.append(record)
    return sorted(records, key=lambda r: r.combination)


_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _XML_FORBIDDEN.sub("\ufffd", text)


def junit_xml(records: list[Record], suite: str = "kmatrix") -> str:
    failures = sum(1 for r in records if r.final.is_kernel_failure)
    errors = sum(1 for r in records if r.final is Verdict.INFRA_ERROR)
    total = sum(r.duration_s for r in records)
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuites><testsuite name={quoteattr(suite)} tests="{len(records)}" '
           f'failures="{failures}" errors="{errors}" time="{total:.1f}">']
    for r in records:
        out.append(f'  <testcase classname={quoteattr(suite + "." + Path(r.matrix).name)} '
                   f'name={quoteattr(r.combination)} time="{r.duration_s:.1f}">')
        lines = r.reasons + ([f"reproduce: {r.reproducer}"] if r.reproducer else [])
        body = escape(_xml_text("\n".join(lines)))
        first = r.reasons[0] if r.reasons else (r.verdict.value if r.verdict else "")
        message = quoteattr(_xml_text(first[:500]))
        if r.final is Verdict.INFRA_ERROR:
            out.append(f'    <error type="{r.final.value}" message={message}>{body}</error>')
        elif r.final.is_kernel_failure:
            out.append(f'    <failure type="{r.final.value}" message={message}>{body}</failure>')
        out.append("  </testcase>")
    out.append("</testsuite></testsuites>")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(records: list[Record], title: str, preface: str = "",
                     appendix: list[str] | tuple[str, ...] = ()) -> str:
    """The run as Markdown: counts, `preface` (what changed since the previous run), one row
    per combination, then `appendix` (the nightly's bisects)."""
    counts: dict[str, int] = {}
    for r in records:
        key = r.verdict.value if r.verdict is not None else "unfinished"
        counts[key] = counts.get(key, 0) + 1
    lines = [f"# {title}", "",
             ", ".join(f"{n} {v}" for v, n in sorted(counts.items())), ""]
    built: dict[str, int] = {}  # architecture and toolchain (records older than them: none)
    for r in records:
        if r.toolchain:
            built[f"{r.arch} {r.toolchain}"] = built.get(f"{r.arch} {r.toolchain}", 0) + 1
    if built:
        lines += ["Built with: " + ", ".join(f"{k} ({n})" for k, n in sorted(built.items())), ""]
    if preface:
        lines += [preface.rstrip("\n"), "", "## Every combination", ""]
    lines += [
             "| combination | verdict | time | reason | reproduce |",
             "| --- | --- | --- | --- | --- |"]
    for r in records:
        failed = not r.passed
        reason = _cell("; ".join(r.reasons[:3])) if failed else ""
        if r.repaired:
            reason = _cell("repaired: " + " ".join(r.repaired)) + ("; " + reason if reason else "")
        repro = f"`{_cell(r.reproducer)}`" if failed and r.reproducer else ""
        lines.append(f"| {r.combination} | {r.verdict_text} | {r.duration_s:.0f} s "
                     f"| {reason} | {repro} |")
    if appendix:
        lines += ["", *appendix]
    return "\n".join(lines) + "\n"


def summary_text(records: list[Record]) -> str:
    """The table printed at the end of a run: fixed-width, one row per combination."""
    width = max([len(r.combination) for r in records] + [11])
    rows = [f"{'combination':<{width}}  {'verdict':<14} {'time':>6}  reason"]
    for r in records:
        reason = "; ".join(r.reasons[:2]) if not r.passed else ""
        rows.append(f"{r.combination:<{width}}  {r.verdict_text:<14} "
                    f"{r.duration_s:5.0f}s  {reason}")
        if not r.passed and r.reproducer:
            rows.append(f"{'':<{width}}  reproduce: {r.reproducer}")
    return "\n".join(rows)


def point_latest(results: Path, run_dir: Path) -> None:
    link = results / "latest"
    tmp = results / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, link)


def mark_unfinished(run_dir: Path, why: str) -> int:
    """Records still `running` (their worker was stopped or killed mid-step) become
    `interrupted`, with no verdict: an infrastructure row, never a kernel verdict."""
    marked = 0
    for record in read_records(run_dir):
        if record.status != "running":
            continue
        record.status, record.verdict = "interrupted", None
        record.reasons = [*record.reasons, why]
        try:
            write_record(run_dir, record)
        except (OSError, KmatrixError):
            continue
        marked += 1
    return marked


def finish_run(run_dir: Path, title: str | None = None, expected: list[str] | None = None,
               matrix: str = "", missing_why: str = "") -> list[Record]:
    """Write every report from the records (summary.md, junit.xml, report.html, metadata.json:
    harness/reports.py), with an infra-error row for every expected combination without a
    record, and point results/latest here. `title` defaults to one made from run.json."""
    from .reports import write_all

    records = write_all(run_dir, title, complete_records(run_dir, expected or [], matrix,
                                                          missing_why))
    point_latest(run_dir.resolve().parent, run_dir.resolve())
    return records
