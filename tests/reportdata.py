"""Run directories made from records for the report tests: every verdict, the default matrix's
layout, a previous run to compare with. No build: the reports read records, nothing else."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from testhelpers import REPO

from harness import results, runinfo
from harness.matrix import load_matrix
from harness.results import Record, StageRecord

PACKAGES = {"gcc": "4:12.2.0-3", "gcc-12": "12.2.0-14+deb12u1", "binutils": "2.40-2",
            "make": "4.3-4.1", "qemu-system-x86": "1:7.2+dfsg-7+deb12u18+b3"}

# reasons as the pipeline writes them, per verdict
REASONS = {
    "pass": [],
    "config-dropped": ["CONFIG_MODULE_STATS=y dropped by Kconfig (resolved: not set)",
                       "why: MODULE_STATS=y needs DEBUG_FS [=n]"],
    "unsatisfiable": ["CONFIG_X=y can never hold: X depends on n"],
    "build-error": ["make failed: kernel/module/stats.c:3:1: error: expected ';' <before> \"x\""],
    "link-mismatch": ["kernel/module/: expected but not linked: signing.o"],
    "boot-fail": ["Oops: general protection fault at kmod_dup_request_exists_wait+0x40"],
    "boot-timeout": ["no end marker within 180 s"],
    "infra-error": ["build timed out after 1800 s: raise build.timeout or lower the load"],
}


def stages_for(verdict: str) -> list[StageRecord]:
    """The stages a combination with this verdict went through (the last one failing)."""
    if verdict == "unsatisfiable":
        return [StageRecord("resolve", "fail", 0.4)]
    chain = [StageRecord("resolve", "pass", 0.5), StageRecord("olddefconfig", "pass", 2.1,
                                                               "docker run ... olddefconfig")]
    truth = "fail" if verdict == "config-dropped" else "pass"
    chain.append(StageRecord("config-truth", truth))
    if truth == "fail":
        return chain
    build = {"build-error": "fail", "infra-error": "error"}.get(verdict, "pass")
    chain.append(StageRecord("build", build, 41.0, "docker run ... make kernel/module/"))
    if build != "pass":
        return chain
    chain.append(StageRecord("link-check", "fail" if verdict == "link-mismatch" else "pass"))
    if verdict in ("boot-fail", "boot-timeout", "boot"):
        chain.append(StageRecord("boot", "fail", 14.2, "docker run ... qemu-system-x86_64"))
    return chain


def make_record(cid: str, verdict: str, values: dict[str, str], run_id: str = "r",
                boot: bool = False) -> Record:
    rec = Record(combination=cid, run_id=run_id, matrix=str(REPO / "matrix.yaml"),
                 values=values, requested={"CONFIG_MODULES": "y", **values},
                 status="done" if verdict else "running", verdict=verdict or None,  # type: ignore[arg-type]
                 reasons=list(REASONS.get(verdict, [])),
                 stages=stages_for(verdict) if verdict else [StageRecord("resolve", "pass", 0.3)],
                 kernel={"version": "6.12.117", "origin": "debian:linux-source-6.12",
                         "commit": None},
                 image={"tag": "kmatrix-builder:test", "id": "sha256:test"},
                 reproducer=f"kmatrix run {REPO / 'matrix.yaml'} --only {cid}",
                 started="2026-11-29T21:00:00+00:00")
    if verdict:
        rec.duration_s = round(sum(s.duration_s for s in rec.stages), 1)
        rec.finished = "2026-11-29T21:01:00+00:00"
    if verdict == "config-dropped":
        rec.mismatches = [{"symbol": "CONFIG_MODULE_STATS", "requested": "y", "resolved": ""}]
    if verdict == "link-mismatch":
        rec.link = {"kernel/module/": {"members": ["main.o", "kmod.o"], "expected": ["signing.o"],
                                       "missing": ["signing.o"], "unexpected": []}}
    if boot and verdict in ("pass", "boot-fail", "boot-timeout"):
        rec.boot = {"verdict": verdict, "reasons": rec.reasons, "phases": {},
                    "console_log": f"/nowhere/{cid}/console.log", "cmdline": "console=ttyS0",
                    "accel": "tcg", "duration_s": 14.2, "qemu_exit_code": 0,
                    "timed_out": verdict == "boot-timeout"}
    return rec


def write_run(results_dir: Path, run_id: str, records: list[Record],
              matrix_path: Path = REPO / "matrix.yaml", info: dict | None = None) -> Path:
    """A run directory as `kmatrix run` leaves it: run.json, the matrix copy, each record with
    its log and reproducer."""
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True)
    matrix_info = info if info is not None else runinfo.describe_matrix(load_matrix(matrix_path))
    (run_dir / "run.json").write_text(json.dumps({
        "run_id": run_id, "matrix_path": str(matrix_path), "run_dir": str(run_dir),
        "kernel": {"version": "6.12.117", "origin": "debian:linux-source-6.12", "commit": None,
                   "path": "/trees/linux-source-6.12"},
        "image": "kmatrix-builder:test", "image_id": "sha256:test", "jobs": 1, "workers": 2,
        "trees": "nearest", "ccache": True, "only": [], "image_packages": PACKAGES,
        "matrix_info": matrix_info}))
    (run_dir / runinfo.MATRIX_COPY).write_text(matrix_path.read_text())
    for rec in records:
        rec.run_id = run_id
        (run_dir / rec.combination).mkdir()
        (run_dir / rec.combination / results.RECORD).write_text(rec.to_json())
        (run_dir / rec.combination / "build.log").write_text(f"# reproduce: {rec.reproducer}\n")
        (run_dir / rec.combination / "reproducer.sh").write_text("#!/bin/sh\n")
        if rec.verdict is not None and rec.stages[-1].name != "resolve":
            (run_dir / rec.combination / "config").write_text("CONFIG_MODULES=y\n")
        if rec.boot:
            (run_dir / rec.combination / "console.log").write_text("Linux version 6.12\n")
    return run_dir


VERDICTS = ["pass", "config-dropped", "unsatisfiable", "build-error", "link-mismatch",
            "boot-fail", "boot-timeout", "infra-error", ""]


def default_matrix_records(verdicts: dict[str, str] | None = None) -> list[Record]:
    """One record per combination of the default matrix.yaml: every verdict appears (cycled
    over the combinations), or, given `verdicts`, those and pass for the others."""
    matrix = load_matrix(REPO / "matrix.yaml")
    out = []
    for i, combo in enumerate(matrix.combinations):
        verdict = verdicts.get(combo.id, "pass") if verdicts is not None \
            else VERDICTS[i % len(VERDICTS)]
        out.append(make_record(combo.id, verdict, combo.axis_values, boot=combo.boot is not None))
    return out


# --- reading a report back: the cells, the details, every URL --------------------------------

RESOURCE_ATTRS = {("link", "href"), ("script", "src"), ("img", "src"), ("iframe", "src"),
                  ("source", "src"), ("video", "src"), ("audio", "src"), ("embed", "src"),
                  ("object", "data"), ("image", "href"), ("use", "href")}


@dataclass
class Cell:
    combination: str
    verdict: str
    background: str
    href: str
    title: str
    classes: list[str]
    table: str
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Dom:
    cells: list[Cell] = field(default_factory=list)
    details: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> attributes
    detail_links: dict[str, list[str]] = field(default_factory=dict)  # id -> hrefs
    urls: list[str] = field(default_factory=list)  # every src/href/url(...) in the page
    resources: list[str] = field(default_factory=list)  # URLs the page would load
    ids: set[str] = field(default_factory=set)
    text: str = ""


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.dom = Dom()
        self.tables: list[str] = []
        self.cell: Cell | None = None
        self.detail: str | None = None
        self.depth = 0
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.dom.ids.add(a["id"])
        for key in ("href", "src", "data"):
            if key in a:
                self.dom.urls.append(a[key])
                if (tag, key) in RESOURCE_ATTRS:
                    self.dom.resources.append(a[key])
        for url in re.findall(r"url\(([^)]*)\)", a.get("style", "")):
            self.dom.resources.append(url.strip("'\" "))
        if tag == "table":
            self.tables.append(a.get("id", ""))
        if tag == "td" and "cell" in a.get("class", "").split():
            bg = re.search(r"background:\s*([^;]+)", a.get("style", ""))
            self.cell = Cell(a.get("data-combination", ""), a.get("data-verdict", ""),
                             bg.group(1).strip() if bg else "", "", a.get("title", ""),
                             a.get("class", "").split(), self.tables[-1] if self.tables else "",
                             a)
            self.dom.cells.append(self.cell)
        if tag == "a" and self.cell is not None:
            self.cell.href = a.get("href", "")
        if tag == "tr" and a.get("id", "").startswith("c-"):
            self.detail = a["data-combination"]
            self.dom.details[self.detail] = a
            self.dom.detail_links[self.detail] = []
        if tag == "a" and self.detail is not None and "href" in a:
            self.dom.detail_links[self.detail].append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.cell = None
        if tag == "table" and self.tables:
            self.tables.pop()
        if tag == "tr":
            self.detail = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        for url in re.findall(r"url\(([^)]*)\)|@import\s+['\"]([^'\"]+)", data):
            found = url[0] or url[1]
            if found:
                self.dom.resources.append(found.strip("'\" "))


def parse(html: str) -> Dom:
    parser = _Parser()
    parser.feed(html)
    parser.dom.text = "".join(parser.texts)
    return parser.dom


def problems(dom: Dom, records: list[Record], run_dir: Path) -> list[str]:
    """Where the report disagrees with the records: each record one heatmap cell of its
    verdict's colour, its reason on hover and a link to its details, which link its log and
    reproducer; every link to a file of the run directory resolves; nothing to fetch."""
    from harness.report_html import PALETTE, key_of

    found: list[str] = []
    cells: dict[str, list[Cell]] = {}
    for cell in dom.cells:
        if cell.combination:
            cells.setdefault(cell.combination, []).append(cell)
    for rec in records:
        cid, key = rec.combination, key_of(rec)
        mine = [c for c in cells.get(cid, []) if c.table in ("grid", "includes")]
        if len(mine) != 1:
            found.append(f"{cid}: {len(mine)} heatmap cells")
            continue
        cell = mine[0]
        if cell.verdict != key or cell.background.lower() != PALETTE[key][0]:
            found.append(f"{cid}: cell {cell.verdict} {cell.background}, record {key}")
        if not cell.title.startswith(f"{cid}: {rec.verdict_text}") or \
                (rec.reasons and rec.reasons[0] not in cell.title):
            found.append(f"{cid}: hover text {cell.title!r} lacks the verdict or reason")
        if cell.href != f"#c-{cid}" or f"c-{cid}" not in dom.ids:
            found.append(f"{cid}: cell links to {cell.href!r}")
        detail = dom.details.get(cid)
        if detail is None or detail.get("data-verdict") != key:
            found.append(f"{cid}: details row {detail and detail.get('data-verdict')}")
        links = dom.detail_links.get(cid, [])
        for name in ("build.log", "reproducer.sh"):
            if f"{cid}/{name}" not in links:
                found.append(f"{cid}: no link to its {name}")
    for href in dom.urls:
        if href.startswith("#") or href == "":
            if href[1:] and href[1:] not in dom.ids:
                found.append(f"link to a missing anchor {href}")
        elif re.match(r"[a-z]+:|//", href):
            found.append(f"absolute URL in the page: {href}")
        elif not (run_dir / unquote(href)).is_file():
            found.append(f"link to a missing file {href}")
    found += [f"resource to fetch: {url}" for url in dom.resources if not url.startswith("data:")]
    return found


def big_run(results_dir: Path, run_id: str, axes: int = 9, includes: int = 488) -> Path:
    """A run of `axes` two-valued axes and `includes` include entries (1,000 combinations by
    default), every verdict cycled over them: the report at the scale it must stay readable."""
    names = [f"CONFIG_OPTION_{i}" for i in range(axes)]
    cells: dict[str, list[str]] = {}
    records = []
    for n in range(2 ** axes):
        values = ["y" if n >> (axes - 1 - i) & 1 else "n" for i in range(axes)]
        cid = ".".join(f"o{i}-{v}" for i, v in enumerate(values))
        cells[cid] = values
        records.append(make_record(cid, VERDICTS[n % len(VERDICTS)], dict(zip(names, values))))
    include_ids = [f"include-{i:04d}" for i in range(includes)]
    for i, cid in enumerate(include_ids):
        records.append(make_record(cid, VERDICTS[(i * 7) % len(VERDICTS)],
                                   {f"CONFIG_EXTRA_{i}": "y"}, boot=i % 50 == 0))
    info = {"arch": "x86_64", "make_arch": "x86_64", "image_target": "bzImage",
            "base": "tinyconfig", "fragments": [], "common": {"CONFIG_MODULES": "y"},
            "targets": ["kernel/module/"], "axes": [[s, ["y", "n"]] for s in names],
            "includes": include_ids, "boots": [], "cells": cells}
    return write_run(results_dir, run_id, records, info=info)
