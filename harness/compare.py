"""Two runs side by side: what newly fails, what was fixed, what still fails (and whether its
reason changed), which combinations are new or gone. Plain functions over records.

Every report that says "since the last run" (the summary, report.html, `kmatrix compare`, the
nightly's bisects) reads one ``Comparison``. A combination that could not be judged in either
run (infra-error, or no finished record) is never a regression or a fix: it is listed apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import runstate
from .results import Record, read_records
from .verdict import InputError, Verdict


@dataclass(frozen=True)
class Change:
    """One combination in both runs (or in one of them)."""

    combination: str
    before: str  # the verdict in the base run ("" when it was not there)
    after: str  # the verdict in the new run ("" when it is not there any more)
    reasons_before: tuple[str, ...] = ()
    reasons_after: tuple[str, ...] = ()
    same_inputs: bool = False  # the same kernel, resolved config and image in both runs

    @property
    def flaky(self) -> bool:
        """The verdict changed while nothing it depends on did: flaky, not a regression."""
        return self.same_inputs and self.before != self.after

    @property
    def reason_changed(self) -> bool:
        return self.reasons_before[:1] != self.reasons_after[:1]


@dataclass
class Comparison:
    base: str  # the base run's directory name
    new: str
    new_failures: list[Change] = field(default_factory=list)  # passed, now a kernel failure
    fixed: list[Change] = field(default_factory=list)  # a kernel failure, now passes
    still_failing: list[Change] = field(default_factory=list)  # a kernel failure in both
    not_judged: list[Change] = field(default_factory=list)  # infra-error or unfinished now
    added: list[Change] = field(default_factory=list)  # only in the new run
    removed: list[Change] = field(default_factory=list)  # only in the base run
    unchanged_passes: int = 0

    @property
    def regressed(self) -> bool:
        return bool(self.new_failures)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def markdown(self) -> str:
        """The comparison as the top of a summary: new failures first, then fixed, then the rest."""
        lines = [f"## Since {self.base}", ""]
        if not any((self.new_failures, self.fixed, self.still_failing, self.not_judged,
                    self.added, self.removed)):
            return "\n".join(lines + [f"No change: {self.unchanged_passes} combinations pass in "
                                      "both runs.", ""])
        sections = (("New failures", self.new_failures), ("Fixed", self.fixed),
                    ("Still failing", self.still_failing),
                    ("Not judged in this run (infrastructure)", self.not_judged),
                    ("New combinations", self.added), ("Removed combinations", self.removed))
        for title, changes in sections:
            if not changes:
                continue
            lines.append(f"**{title}: {len(changes)}**")
            lines.append("")
            for c in changes:
                why = c.reasons_after[0] if c.reasons_after else ""
                note = " (reason changed)" if title == "Still failing" and c.reason_changed else ""
                if c.flaky and title in ("New failures", "Fixed"):
                    note += " (flaky? the same kernel, config and image as before)"
                arrow = f"{c.before or 'absent'} -> {c.after or 'absent'}"
                lines.append(f"- `{c.combination}`: {arrow}{note}" + (f": {why}" if why else ""))
            lines.append("")
        lines.append(f"{self.unchanged_passes} combinations pass in both runs.")
        return "\n".join(lines) + "\n"


def _kind(record: Record | None) -> str:
    """pass, fail (a kernel verdict), infra (could not judge) or absent."""
    if record is None:
        return "absent"
    verdict = record.final
    if verdict is Verdict.PASS:
        return "pass"
    return "fail" if verdict.is_kernel_failure else "infra"


def inputs(record: Record) -> tuple[object, ...] | None:
    """What a verdict depends on: kernel version and commit, the requested and the resolved
    config, what the link check expected, the builder image. None when the config was never
    resolved (nothing to say the inputs were the same)."""
    if not record.resolved_config_hash:
        return None
    expected = {d: sorted(v.get("expected", [])) for d, v in record.link.items()}
    return (record.kernel.get("version"), record.kernel.get("commit"),
            record.resolved_config_hash, sorted(record.requested.items()),
            sorted(expected.items()), record.image.get("id") or record.image.get("tag"))


def same_inputs(a: Record, b: Record) -> bool:
    mine = inputs(a)
    return mine is not None and mine == inputs(b)


def compare(base: list[Record], new: list[Record], base_name: str = "base",
            new_name: str = "new") -> Comparison:
    """Every combination of either run in exactly one list (or counted as passing in both)."""
    before = {r.combination: r for r in base}
    after = {r.combination: r for r in new}
    result = Comparison(base_name, new_name)
    for cid in sorted(set(before) | set(after)):
        b, a = before.get(cid), after.get(cid)
        change = Change(cid, b.verdict_text if b else "", a.verdict_text if a else "",
                        tuple(b.reasons) if b else (), tuple(a.reasons) if a else (),
                        b is not None and a is not None and same_inputs(b, a))
        kinds = (_kind(b), _kind(a))
        if kinds[0] == "absent":
            result.added.append(change)
        elif kinds[1] == "absent":
            result.removed.append(change)
        elif kinds[1] == "infra":
            result.not_judged.append(change)
        elif kinds == ("pass", "pass"):
            result.unchanged_passes += 1
        elif kinds[1] == "fail" and kinds[0] == "pass":
            result.new_failures.append(change)
        elif kinds[1] == "fail":  # failed before too, or could not be judged before
            (result.still_failing if kinds[0] == "fail" else result.new_failures).append(change)
        elif kinds[0] == "fail":
            result.fixed.append(change)
        else:  # not judged before, passes now
            result.unchanged_passes += 1
    return result


def compare_dirs(base_dir: Path, new_dir: Path) -> Comparison:
    return compare(read_records(base_dir), read_records(new_dir), base_dir.name, new_dir.name)


def _run_info(run_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def selection(info: dict[str, object]) -> set[str] | None:
    """The combinations a run set out to run (None: the whole matrix): a shard's part of the
    partition, else its `--only` list. A merged run selects what its shards' run selected."""
    shard = info.get("shard")
    if isinstance(shard, dict) and shard.get("index") and isinstance(shard.get("partition"), list):
        return set(shard["partition"][int(shard["index"]) - 1])
    only = info.get("only")
    return set(only) if isinstance(only, list) and only else None


def comparable(a: dict[str, object], b: dict[str, object]) -> bool:
    """`b` can be the base of `a`: the same matrix file (by name: a checkout moves), and `b` ran
    everything `a` set out to run (a shard or an `--only` run is no base for a whole run)."""
    if not a or not b or \
            Path(str(a.get("matrix_path", ""))).name != Path(str(b.get("matrix_path", ""))).name:
        return False
    want, have = selection(a), selection(b)
    return have is None or (want is not None and want <= have)


def previous_comparable_run(results_dir: Path, current: Path) -> Path | None:
    """The newest finished run before `current` in results/ of the same matrix (run ids sort
    by time); bisect directories are not runs, and a stopped or killed run is no baseline."""
    mine = _run_info(current)
    runs = sorted((p for p in results_dir.iterdir()
                   if p.is_dir() and not p.is_symlink() and p.name < current.name
                   and not p.name.startswith("bisect") and (p / "run.json").is_file()
                   and runstate.is_finished_run(p)),
                  reverse=True)
    for run in runs:
        if comparable(mine, _run_info(run)):
            return run
    return None


def since_previous(run_dir: Path, records: list[Record] | None = None) -> Comparison | None:
    """This run against the previous comparable run in its results directory, over what this
    run set out to run (a shard compares its own combinations); None for the first run."""
    previous = previous_comparable_run(run_dir.parent, run_dir)
    return None if previous is None else compare_runs(previous, run_dir, records)


def compare_runs(base_dir: Path, new_dir: Path, records: list[Record] | None = None) -> Comparison:
    """`kmatrix compare BASE NEW`: over what the new run set out to run (a shard, an `--only`
    run), so the rest of the base run is not reported as removed."""
    for d in (base_dir, new_dir):
        if not (d / "run.json").is_file():
            raise InputError(f"{d} is not a run directory (no run.json): give results/<run-id> "
                             "directories")
    wanted = selection(_run_info(new_dir))
    base = [r for r in read_records(base_dir) if wanted is None or r.combination in wanted]
    return compare(base, read_records(new_dir) if records is None else records,
                   base_dir.resolve().name, new_dir.resolve().name)
