"""report.html: the run as one self-contained page (styles and script inline, nothing fetched),
rendered with Jinja2 from the records, run.json, the comparison with the previous run and the
nightly's bisects.

The page: what changed since the previous comparable run (new failures first, then fixed, then
still failing); the verdict counts (the legend); the heatmap (harness/heatmap.py: axes as rows
and columns, include entries as rows of their own, each cell coloured by verdict with the
reason on hover and a link to the combination); per combination its stage times as bars, its
config-truth, repair, link and boot notes, bisect answers and links to its files; the run's
inputs. Long grids and lists are paged by the inline script; without it every row shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2

from . import __version__, heatmap
from .compare import Change, Comparison
from .reports import Bisects
from .results import Record, StageRecord
from .runinfo import RunInfo
from .verdict import Verdict

TEMPLATES = Path(__file__).parent / "templates"
DETAILS_PER_PAGE = 50

# verdict (or record state) -> (cell colour, what it means); the legend, in this order
PALETTE: dict[str, tuple[str, str]] = {
    "pass": ("#2e7d32", "every check passed"),
    "config-dropped": ("#ef6c00", "Kconfig dropped or changed a requested value"),
    "unsatisfiable": ("#f9a825", "the request can never hold (known before building)"),
    "build-error": ("#c62828", "make failed"),
    "link-mismatch": ("#6a1b9a", "the linked kernel/module/ objects differ from expect"),
    "boot-fail": ("#ad1457", "the console log shows a kernel problem or wrong dups behaviour"),
    "boot-timeout": ("#283593", "the boot did not finish before its limit"),
    "infra-error": ("#616161", "infrastructure problem: not judged, not the kernel's fault"),
    "unfinished": ("#bdbdbd", "the record never finished (killed or interrupted): not judged"),
    "missing": ("#ffffff", "selected but no record at all: never started"),
}
MARK = {"pass": "\u2713", "infra-error": "!", "unfinished": "\u2026", "missing": "?"}
FAIL_MARK = "\u2717"

# the stages a record holds, grouped as the report draws them
STAGE_GROUPS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("resolve", ("resolve",), "#90a4ae"),
    ("config", ("base-config", "repair", "olddefconfig", "config-truth"), "#4fc3f7"),
    ("build", ("build",), "#1565c0"),
    ("link check", ("link-check",), "#8e24aa"),
    ("boot", ("boot",), "#00897b"),
)
OTHER_COLOUR = "#bcaaa4"
FILES = (("log", "build.log"), ("reproducer", "reproducer.sh"), ("config", "config"),
         ("input config", "input.config"), ("record", "record.json"),
         ("metadata", "metadata.json"))
KEY_PACKAGES = ("gcc", "binutils", "make", "ccache", "libc6-dev", "bison", "flex", "bc",
                "libelf-dev", "libssl-dev", "busybox-static", "cpio")


def key_of(record: Record) -> str:
    return record.verdict.value if record.verdict is not None else "unfinished"


@dataclass
class Bar:
    group: str
    seconds: float
    status: str  # the worst status of its stages: fail, error, pass (skipped ones: pass)
    colour: str
    width: float = 0.0  # percent of the longest combination's stage time


@dataclass
class View:
    """One combination as the page shows it."""

    id: str
    key: str
    colour: str
    mark: str
    verdict: str
    title: str  # the hover text: verdict and reasons
    change: str  # new-failure, fixed, still-failing, not-judged, added, or ""
    duration: float
    values: str
    reasons: list[str]
    bars: list[Bar]
    links: list[tuple[str, str]]
    notes: list[tuple[str, list[str]]] = field(default_factory=list)
    failing: bool = False


def _bars(record: Record) -> list[Bar]:
    bars = []
    known: set[str] = set()
    for group, names, colour in STAGE_GROUPS:
        known.update(names)
        stages = [s for s in record.stages if s.name in names]
        if stages:
            bars.append(_bar(group, stages, colour))
    other = [s for s in record.stages if s.name not in known]
    if other:
        bars.append(_bar("other", other, OTHER_COLOUR))
    return bars


def _bar(group: str, stages: list[StageRecord], colour: str) -> Bar:
    statuses = {s.status for s in stages}
    status = "fail" if "fail" in statuses else "error" if "error" in statuses else "pass"
    return Bar(group, round(sum(s.duration_s for s in stages), 1), status, colour)


def _notes(record: Record, bisects: Bisects | None, run_dir: Path) -> list[tuple[str, list[str]]]:
    notes: list[tuple[str, list[str]]] = []
    if record.repaired:
        notes.append(("repaired", [" ".join(record.repaired)]))
    if record.mismatches:
        notes.append(("config truth", [
            f"{m.get('symbol', '?')}: requested {m.get('requested', '?')}, resolved "
            f"{m.get('resolved') or 'not set'}" for m in record.mismatches]))
    if record.duplicate_of:
        notes.append(("same .config as", [record.duplicate_of]))
    for directory, link in record.link.items():
        lines = [f"linked: {' '.join(link.get('members', [])) or '(nothing)'}"]
        if link.get("missing"):
            lines.append(f"expected but not linked: {' '.join(link['missing'])}")
        if link.get("unexpected"):
            lines.append(f"linked but not expected: {' '.join(link['unexpected'])}")
        notes.append((f"link check {directory}", lines))
    if record.boot:
        boot = record.boot
        phases = boot.get("phases") or {}
        lines = [f"{boot.get('verdict', '?')} in {boot.get('duration_s', 0)} s "
                 f"({boot.get('accel', '?')}), cmdline: {boot.get('cmdline', '')}"]
        lines += [_phase_line(name, p) for name, p in phases.items()]
        notes.append(("boot", lines))
    if bisects is not None and (found := bisects.for_combination(record.combination)):
        notes.append(("bisect", found))
    return notes


def _counts(counts: object) -> str:
    if not isinstance(counts, dict) or not counts:
        return "none"
    return " ".join(f"{k}={v}" for k, v in counts.items())


def _phase_line(name: str, phase: object) -> str:
    """One phase of the guest's scenario as the judge recorded it: what it asked, how often,
    and what the kernel did (modprobe runs, duplicates, dups warnings)."""
    if not isinstance(phase, dict):
        return f"{name}: {phase}"
    head = f"{name} ({phase.get('request', '?')} x{phase.get('n', '?')})"
    done = "finished" if phase.get("finished") else "NOT finished"
    return (f"{head}: {done}; modprobe {_counts(phase.get('modprobe'))}; duplicates "
            f"{_counts(phase.get('duplicates'))}; dups warnings {phase.get('dups_warnings', 0)}; "
            f"{phase.get('ms', '?')} ms")


def _links(record: Record, run_dir: Path) -> list[tuple[str, str]]:
    cid = record.combination
    links = [(label, f"{quote(cid)}/{quote(name)}") for label, name in FILES
             if (run_dir / cid / name).is_file()]
    console = Path(str((record.boot or {}).get("console_log", ""))).name
    if console and (run_dir / cid / console).is_file():
        links.insert(1, ("console", f"{quote(cid)}/{quote(console)}"))
    return links


def _changes(comparison: Comparison | None) -> dict[str, str]:
    if comparison is None:
        return {}
    out: dict[str, str] = {}
    for kind, changes in (("added", comparison.added), ("not-judged", comparison.not_judged),
                          ("still-failing", comparison.still_failing),
                          ("fixed", comparison.fixed), ("new-failure", comparison.new_failures)):
        out.update({c.combination: kind for c in changes})
    return out


def views(records: list[Record], run_dir: Path, comparison: Comparison | None,
          bisects: Bisects | None) -> list[View]:
    changes = _changes(comparison)
    out = []
    for r in records:
        key = key_of(r)
        title = "\n".join([f"{r.combination}: {r.verdict_text}", *r.reasons[:4]])
        out.append(View(
            id=r.combination, key=key, colour=PALETTE[key][0],
            mark=MARK.get(key, FAIL_MARK), verdict=r.verdict_text, title=title,
            change=changes.get(r.combination, ""), duration=r.duration_s,
            values=" ".join(f"{k}={v}" for k, v in r.values.items()), reasons=r.reasons,
            bars=_bars(r), links=_links(r, run_dir), notes=_notes(r, bisects, run_dir),
            failing=r.final is not Verdict.PASS))
    longest = max([sum(b.seconds for b in v.bars) for v in out] + [0.1])
    for v in out:
        for b in v.bars:
            b.width = round(100.0 * b.seconds / longest, 2)
    return out


ORDER = {"new-failure": 0, "still-failing": 1, "added": 2, "": 2, "not-judged": 3, "fixed": 4}


def _detail_order(v: View) -> tuple[int, int, str]:
    """Failures first (new ones first), then what could not be judged, then passes."""
    tier = 0 if v.failing and v.key not in ("infra-error", "unfinished") else \
        1 if v.failing else 2
    return tier, ORDER.get(v.change, 2), v.id


def _short(symbol: str) -> str:
    return symbol.removeprefix("CONFIG_")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["short"] = _short
    env.filters["seconds"] = lambda s: f"{float(s):.1f} s" if float(s) < 100 else \
        f"{float(s):.0f} s"
    return env


def render(run_dir: Path, records: list[Record], info: RunInfo,
           comparison: Comparison | None, bisects: Bisects | None, title: str) -> str:
    all_views = views(records, run_dir, comparison, bisects)
    by_id = {v.id: v for v in all_views}
    layout = info.layout(records)
    heat = heatmap.place(layout, [r.combination for r in records])
    details = sorted(all_views, key=_detail_order)
    counts = {key: sum(1 for v in all_views if v.key == key) for key in PALETTE}
    missing = [p.combination for p in heat.rows if p.state == "missing"]
    if heat.grid is not None:
        missing += [c.combination for _, cells in heat.grid.rows for c in cells
                    if c.state == "missing"]
    counts["missing"] = len(missing)
    packages = info.image_packages
    # every toolchain the run built with, each with its package's version
    used = sorted({r.toolchain for r in records if r.toolchain} or {info.toolchain})
    toolchain = ", ".join(" ".join(info.compiler(name)).strip() for name in used)
    def failing_row(cells: list[heatmap.Place]) -> bool:
        return any(c.state == "missing" or (c.state == "record" and by_id[c.combination].failing)
                   for c in cells)

    return _environment().get_template("report.html.j2").render(
        failing_row=failing_row,
        title=title, info=info, version=__version__, palette=PALETTE, counts=counts,
        total=len(records), views=by_id, details=details, heat=heat, layout=layout,
        rows_per_page=heatmap.ROWS_PER_PAGE, includes_per_page=heatmap.INCLUDES_PER_PAGE,
        details_per_page=DETAILS_PER_PAGE,
        detail_pages=max(1, math.ceil(len(details) / DETAILS_PER_PAGE)),
        comparison=comparison, sections=_sections(comparison), bisects=bisects,
        stage_groups=[(g, c) for g, _, c in STAGE_GROUPS],
        toolchain=toolchain,
        arches=", ".join(sorted({r.arch for r in records if r.arch})) or info.arch,
        key_packages=[(p, packages[p]) for p in KEY_PACKAGES if p in packages]
        + [(p, v) for p, v in sorted(packages.items())
           if p.startswith(("gcc-", "qemu-system-", "clang", "lld"))
           and p not in KEY_PACKAGES],
        all_packages=sorted(packages.items()))


def _sections(comparison: Comparison | None) -> list[tuple[str, str, list[Change]]]:
    if comparison is None:
        return []
    return [(kind, title, changes) for kind, title, changes in (
        ("new-failure", "New failures", comparison.new_failures),
        ("fixed", "Fixed", comparison.fixed),
        ("still-failing", "Still failing", comparison.still_failing),
        ("not-judged", "Not judged in this run (infrastructure)", comparison.not_judged),
        ("added", "New combinations", comparison.added),
        ("removed", "Removed combinations", comparison.removed)) if changes]
