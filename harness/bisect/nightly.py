"""The nightly driver: after a run, find why each combination that passed in the previous run
fails now (commit bisect when the kernel commit moved, else config bisect), within a budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import runstate
from ..verdict import InfraError, InputError, Stage, Verdict
from .commits import bisect_on_tree
from .oracle import config_bisect_on_tree
from .trial import Say, open_env

# --------------------------------------------------------------------------- nightly


def previous_run_dir(results_dir: Path, current: Path) -> Path | None:
    """The finished run before `current` in results/ (run ids sort by time)."""
    runs = sorted(p for p in results_dir.iterdir()
                  if p.is_dir() and (p / "run.json").is_file() and p.name < current.name
                  and not p.name.startswith("bisect") and runstate.is_finished_run(p))
    return runs[-1] if runs else None


def _records(run_dir: Path) -> dict[str, dict]:
    out = {}
    for path in run_dir.glob("*/record.json"):
        data = json.loads(path.read_text())
        out[data["combination"]] = data
    return out


def _verdict(record: dict) -> Verdict:
    """A record's verdict; one that never finished (or is unknown) counts as infra-error."""
    try:
        return Verdict(record.get("verdict") or "infra-error")
    except ValueError:
        return Verdict.INFRA_ERROR


def nearest_passing(failing: dict, records: dict[str, dict]) -> str | None:
    """The passing combination whose requested values differ least from the failing one's."""
    want = failing.get("requested", {})
    best: tuple[int, str] | None = None
    for cid, rec in records.items():
        if rec.get("verdict") != Verdict.PASS:
            continue
        have = rec.get("requested", {})
        distance = sum(1 for k in set(want) | set(have) if want.get(k) != have.get(k))
        if best is None or distance < best[0]:
            best = (distance, cid)
    return best[1] if best else None


def bisect_new_failures(previous_run_dir: Path, current_run_dir: Path, budget_s: float,
                        matrix_path: Path, results_dir: Path, kernel: str | None = None,
                        jobs: int | None = None, say: Say = print) -> list[str]:
    """For each combination that passed in the previous run and fails now, find why, within
    `budget_s` seconds in all, and return summary lines.

    - the kernel commit changed and both are commits of the current (git) tree: commit bisect
      between them, at the stage that failed;
    - otherwise, when the previous run kept this combination's passing .config: config bisect
      from it to the failing combination (the matrix or a fragment changed);
    - otherwise: config bisect from the nearest passing combination of this run.
    """
    deadline = time.monotonic() + budget_s
    previous, current = _records(previous_run_dir), _records(current_run_dir)
    run = json.loads((current_run_dir / "run.json").read_text())
    prev_run = json.loads((previous_run_dir / "run.json").read_text())
    new = sorted(cid for cid, rec in current.items()
                 if _verdict(rec).is_kernel_failure
                 and _verdict(previous.get(cid, {})) is Verdict.PASS)
    lines = [f"## New failures since {previous_run_dir.name}: {len(new)}"] if new else []
    for cid in new:
        left = deadline - time.monotonic()
        if left <= 0:
            lines.append(f"- {cid}: not bisected (time budget of {budget_s:.0f} s used up)")
            continue
        rec = current[cid]
        stage = (_verdict(rec).stage or Stage.BUILD).value
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
