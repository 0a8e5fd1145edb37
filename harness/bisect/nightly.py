"""The nightly driver: after a run, find why each combination that passed in the previous run
fails now (commit bisect when the kernel commit moved, else config bisect), within a budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..compare import Comparison, compare_dirs
from ..results import Record, read_records
from ..verdict import InfraError, InputError, Stage, Verdict
from .commits import bisect_on_tree
from .oracle import config_bisect_on_tree
from .trial import Say, open_env


def nearest_passing(failing: Record, records: dict[str, Record]) -> str | None:
    """The passing combination whose requested values differ least from the failing one's."""
    want = failing.requested
    best: tuple[int, str] | None = None
    for cid, rec in records.items():
        if not rec.passed:
            continue
        have = rec.requested
        distance = sum(1 for k in set(want) | set(have) if want.get(k) != have.get(k))
        if best is None or distance < best[0]:
            best = (distance, cid)
    return best[1] if best else None


def bisect_new_failures(previous_run_dir: Path, current_run_dir: Path, budget_s: float,
                        matrix_path: Path, results_dir: Path, kernel: str | None = None,
                        jobs: int | None = None, say: Say = print,
                        comparison: Comparison | None = None) -> list[str]:
    """For each new failure of the comparison (harness/compare.py) that passed in the previous
    run, find why, within `budget_s` seconds in all, and return summary lines.

    - the kernel commit changed and both are commits of the current (git) tree: commit bisect
      between them, at the stage that failed;
    - otherwise, when the previous run kept this combination's passing .config: config bisect
      from it to the failing combination (the matrix or a fragment changed);
    - otherwise: config bisect from the nearest passing combination of this run.
    """
    deadline = time.monotonic() + budget_s
    if comparison is None:  # the comparison every report reads (harness/compare.py)
        comparison = compare_dirs(previous_run_dir, current_run_dir)
    current = {r.combination: r for r in read_records(current_run_dir)}
    run = json.loads((current_run_dir / "run.json").read_text())
    prev_run = json.loads((previous_run_dir / "run.json").read_text())
    failures = comparison.new_failures
    lines = [f"## New failures since {previous_run_dir.name}: {len(failures)}"] if failures else []
    for change in failures:
        cid = change.combination
        if change.before != Verdict.PASS:
            lines.append(f"- {cid}: not bisected: {change.before or 'absent'} in "
                         f"{previous_run_dir.name}, so nothing known to pass")
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            lines.append(f"- {cid}: not bisected (time budget of {budget_s:.0f} s used up)")
            continue
        rec = current[cid]
        stage = (rec.final.stage or Stage.BUILD).value
        old, now = prev_run["kernel"].get("commit"), run["kernel"].get("commit")
        tree = Path(run["kernel"].get("path") or run["tree"])
        try:
            if old and now and old != now and (tree / ".git").exists():
                env = open_env(matrix_path, results_dir, kernel or str(tree), jobs, "bisect", say)
                res = bisect_on_tree(env, tree, old, now, cid, stage, results_dir, deadline)
                lines.append(f"- {cid}: commit bisect {old[:12]}..{now[:12]}: {res.message} "
                             f"({len(res.steps)} steps, {res.duration_s:.0f} s; "
                             f"{env.settings.run_dir})")
                continue
            old_config = previous_run_dir / cid / "config"
            new_config = current_run_dir / cid / "config"
            if old_config.is_file() and new_config.is_file() and \
                    old_config.read_text() != new_config.read_text():
                good = str(old_config)
            else:
                good = nearest_passing(rec, current) or ""
            if not good:
                lines.append(f"- {cid}: not bisected: no passing config to compare with")
                continue
            env = open_env(matrix_path, results_dir, kernel, jobs, "bisect-config", say)
            cres = config_bisect_on_tree(env, good, cid, deadline)
            lines.append(f"- {cid}: config bisect from {Path(good).name if '/' in good else good}"
                         f": {cres.message} ({len(cres.tried)} configs, "
                         f"{cres.duration_s:.0f} s; {env.settings.run_dir})")
        except (InputError, InfraError) as exc:
            lines.append(f"- {cid}: not bisected: {exc.message}")
    return lines


def bisect_since_previous(run_dir: Path, budget_s: float, kernel: str | None = None,
                          jobs: int | None = None, say: Say = print) -> list[str]:
    """`--bisect-new-failures` for a finished run (or a merged one): compare it with the
    previous comparable run in its results directory, bisect the new failures, and add the
    answers to its summary.md."""
    from ..compare import since_previous
    comparison = since_previous(run_dir)
    if comparison is None:
        say(f"kmatrix: --bisect-new-failures: no earlier run in {run_dir.parent} to compare with")
        return []
    run = json.loads((run_dir / "run.json").read_text())
    lines = bisect_new_failures(run_dir.parent / comparison.base, run_dir, budget_s,
                                Path(run["matrix_path"]), run_dir.parent, kernel, jobs, say,
                                comparison)
    if lines:
        # kept beside the records, so every rewrite of the reports shows them
        from ..reports import write_all, write_bisects

        write_bisects(run_dir, comparison.base, lines)
        write_all(run_dir)
    return lines
