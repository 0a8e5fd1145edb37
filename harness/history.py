"""`kmatrix history`: each combination's verdicts over the last runs kept in results/.

The runs are the whole runs of one matrix (merged nightlies included; shards, which are parts
of a run, and bisect directories are not), oldest first. Between two runs a combination's
verdict may change:
- with a change of what it depends on (the kernel version or commit, the requested or the
  resolved config, what the link check expects, the builder image: `compare.inputs`), the
  change is a regression or a fix, and the history says what changed;
- with none of them changed, the change is the combination's own: it is flagged **flaky**,
  not reported as a regression.
A run that could not judge a combination (infra-error, unfinished) says nothing either way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .compare import inputs, same_inputs, selection
from .results import Record, read_records
from .verdict import InputError, Verdict


@dataclass
class Flip:
    run: str  # the run where the verdict changed
    before: str
    after: str
    changed: list[str]  # what changed since the run before: kernel, config, image ([]: flaky)


@dataclass
class Row:
    combination: str
    verdicts: list[str]  # one per run, oldest first ("" when the run did not have it)
    flips: list[Flip] = field(default_factory=list)

    @property
    def flaky(self) -> bool:
        return any(not f.changed for f in self.flips)


@dataclass
class History:
    runs: list[str]
    rows: list[Row]

    def to_dict(self) -> dict[str, object]:
        return {"runs": self.runs,
                "rows": [{**asdict(r), "flaky": r.flaky} for r in self.rows]}

    def text(self) -> str:
        lines = [f"run {i}: {name}" for i, name in enumerate(self.runs, 1)]
        width = max([len(r.combination) for r in self.rows] + [11])
        cols = [f"{i:<14}" for i in range(1, len(self.runs) + 1)]
        lines += ["", f"{'combination':<{width}}  {''.join(cols)}note"]
        for row in self.rows:
            cells = "".join(f"{v or '-':<14}" for v in row.verdicts)
            lines.append(f"{row.combination:<{width}}  {cells}{_note(row, self.runs)}")
        flaky = [r.combination for r in self.rows if r.flaky]
        lines += ["", f"flaky: {', '.join(flaky)}" if flaky else "flaky: none"]
        return "\n".join(lines)


def _note(row: Row, runs: list[str]) -> str:
    notes = []
    for f in row.flips:
        n = runs.index(f.run) + 1
        if f.changed:
            kind = "regression" if f.after != Verdict.PASS else "fixed"
            notes.append(f"{kind} in run {n} ({', '.join(f.changed)} changed)")
        else:
            notes.append(f"FLAKY: {f.before} -> {f.after} in run {n} with the same kernel, "
                         "config and image")
    return "; ".join(notes)


def _info(run: Path) -> dict[str, object]:
    try:
        data = json.loads((run / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def runs_kept(results_dir: Path, last: int, matrix: str | None = None) -> list[Path]:
    """The last `last` whole runs of one matrix (the newest run's, unless `matrix` names
    another matrix file), oldest first."""
    if not results_dir.is_dir():
        raise InputError(f"{results_dir} does not exist: give the results directory")
    runs = []
    for p in sorted(results_dir.iterdir(), reverse=True):
        info = _info(p)
        if p.is_symlink() or p.name.startswith("bisect") or not info:
            continue
        shard = info.get("shard")
        if isinstance(shard, dict) and shard.get("index"):
            continue  # a part of a run: its merge is the run
        name = Path(str(info.get("matrix_path", ""))).name
        matrix = matrix or name
        if name == matrix and selection(info) is None:
            runs.append(p)
        if len(runs) == last:
            break
    if not runs:
        raise InputError(f"no whole run{' of ' + matrix if matrix else ''} in {results_dir}: "
                         "run `kmatrix run` first")
    return runs[::-1]


def _changed(a: Record, b: Record) -> list[str]:
    """What changed between two records of one combination (the parts of `compare.inputs`)."""
    x, y = inputs(a), inputs(b)
    if x is None or y is None:
        return ["config"]  # one of them never resolved its config: nothing says it is the same
    names = ("kernel", "kernel", "config", "config", "expectation", "image")
    return sorted({n for n, p, q in zip(names, x, y) if p != q}, key=names.index)


def history(results_dir: Path, last: int = 10, matrix: str | None = None) -> History:
    runs = runs_kept(results_dir, last, matrix)
    per_run = [{r.combination: r for r in read_records(run)} for run in runs]
    combos = sorted({c for records in per_run for c in records})
    rows = []
    for combo in combos:
        row = Row(combo, [records[combo].verdict_text if combo in records else ""
                          for records in per_run])
        judged: Record | None = None  # the last run that judged it
        for run, records in zip(runs, per_run):
            rec = records.get(combo)
            if rec is None or not (rec.passed or rec.final.is_kernel_failure):
                continue
            if judged is not None and judged.final != rec.final:
                changed = [] if same_inputs(judged, rec) else _changed(judged, rec)
                row.flips.append(Flip(run.name, judged.verdict_text, rec.verdict_text, changed))
            judged = rec
        rows.append(row)
    return History([r.name for r in runs], rows)
