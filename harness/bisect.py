"""Commit bisect: the first commit that breaks one combination, found with `git bisect`.

kmatrix never touches the user's checkout, index or branch: it adds a separate `git worktree`
(detached), drives `git bisect start/good/bad/skip` in it (a worktree keeps its own bisect
state, and git handles merges and skipped commits), runs the combination's own checks at each
step with the same warm output tree (incremental rebuilds), and removes the worktree at the end,
also on Ctrl-C and errors. The result is confirmed (the first bad commit fails again, each of
its parents passes again) and written to results/bisect-<id>/bisect.json and bisect.txt.

Every git command is an argument list and is printed before it runs.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .configbisect import (
    STAGES,
    VERDICT_STAGE,
    Env,
    Observation,
    observe,
    stage_hooks,
    stage_matrix,
    stage_settings,
)
from .verdict import InfraError, InputError, KmatrixError

Say = Callable[[str], None]


class Mark(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"


# --------------------------------------------------------------------------- pure parts

_NUMBERS = re.compile(r":\d+(:\d+)?|\b0x[0-9a-f]+\b|\[\d+\]")


def signature(obs: Observation) -> str:
    """What identifies a failure across commits: verdict, stage, first reason without line
    numbers (a build error that moves by a few lines is the same error)."""
    first = obs.reasons[0] if obs.reasons else ""
    return f"{obs.verdict}|{obs.stage}|{_NUMBERS.sub('', first).strip()}"


def classify(obs: Observation, target: Observation) -> tuple[Mark, str]:
    """good / bad / skip for one step, against the failure being bisected."""
    if obs.passed:
        return Mark.GOOD, ""
    if obs.verdict == "infra-error":
        return Mark.SKIP, "infrastructure error: " + "; ".join(obs.reasons[:1])
    if obs.stage != target.stage:
        return Mark.SKIP, (f"a failure at another stage ({obs.verdict} at {obs.stage}): "
                           + "; ".join(obs.reasons[:1]))
    if signature(obs) != signature(target):
        return Mark.SKIP, f"another failure ({obs.verdict}): " + "; ".join(obs.reasons[:1])
    return Mark.BAD, ""


def default_stage(results_dir: Path, combo_id: str) -> str:
    """The stage that failed for this combination in the last results (build when unknown)."""
    path = results_dir / "latest" / combo_id / "record.json"
    if path.is_file():
        verdict = json.loads(path.read_text()).get("verdict", "")
        if verdict in VERDICT_STAGE:
            return VERDICT_STAGE[verdict]
    return "build"


@dataclass
class Commit:
    id: str
    subject: str = ""
    author: str = ""
    date: str = ""


@dataclass
class BisectStep:
    number: int
    commit: str
    purpose: str  # check-bad, check-good, bisect, confirm-bad, confirm-parent
    mark: str
    verdict: str
    stage: str
    note: str = ""
    reasons: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    record_dir: str = ""


@dataclass
class BisectResult:
    combo: str
    good: str
    bad: str
    stage: str
    target: dict[str, object]
    first_bad: Commit | None = None
    candidates: list[str] = field(default_factory=list)  # when skips leave several
    confirmed: bool = False
    first_errors: list[str] = field(default_factory=list)
    steps: list[BisectStep] = field(default_factory=list)
    skipped: list[BisectStep] = field(default_factory=list)
    bisect_log: str = ""
    message: str = ""
    duration_s: float = 0.0
    complete: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- git


def git_env() -> dict[str, str]:
    """git's output is parsed ("Bisecting:", "is the first bad commit"): never translated."""
    env = {k: v for k, v in os.environ.items() if k != "LANGUAGE"}
    env["LC_ALL"] = "C"
    return env


class Git:
    """Runs git with an argument list, printing each command (never a shell string)."""

    def __init__(self, say: Say = print) -> None:
        self.say = say

    def __call__(self, repo: Path, *args: str, check: bool = True) -> str:
        argv = ["git", "-C", str(repo), *args]
        self.say("$ " + " ".join(argv))
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=git_env())
        if check and done.returncode != 0:
            raise InfraError(f"`{' '.join(argv)}` failed: {done.stderr.strip()[:300]}")
        return done.stdout


def resolve_rev(git: Git, repo: Path, rev: str) -> str:
    argv_ok = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet",
                              f"{rev}^{{commit}}"], capture_output=True, text=True, check=False,
                            env=git_env())
    if argv_ok.returncode != 0:
        raise InputError(f"{rev!r} is not a commit of {repo}: give a commit, tag or branch")
    return argv_ok.stdout.strip()


def commit_info(git: Git, repo: Path, rev: str) -> Commit:
    out = git(repo, "show", "-s", "--format=%H%x00%s%x00%an <%ae>%x00%aI", rev)
    cid, subject, author, date = out.strip().split("\x00")
    return Commit(cid, subject, author, date)


def worktree_path(cache: Path, checkout: Path) -> Path:
    """One stable worktree path per checkout, so the warm output tree's paths stay valid."""
    key = hashlib.sha256(str(checkout.resolve()).encode()).hexdigest()[:12]
    return cache / "bisect" / key / "linux"


class Worktree:
    """A detached worktree of the user's checkout, removed on exit (errors and Ctrl-C too)."""

    def __init__(self, git: Git, checkout: Path, path: Path, rev: str) -> None:
        self.git, self.checkout, self.path, self.rev = git, checkout, path, rev
        self._lock_path = path.parent / "worktree.lock"
        self._lock_fd: int | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A plain flock on our own descriptor: held exactly while this object is entered,
        # released by the kernel if the process dies.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise InputError(f"another kmatrix bisect of {self.checkout} is running (lock "
                             f"{self._lock_path}): wait for it to finish") from exc
        self._lock_fd = fd
        self._remove()  # what a killed bisect left behind
        self.git(self.checkout, "worktree", "add", "--detach", str(self.path), self.rev)
        return self.path

    def __exit__(self, *exc: object) -> None:
        try:
            self._remove()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def _remove(self) -> None:
        # Renaming first is instant, so git forgets the worktree at once (prune) even if the
        # deletion of its files (a kernel tree: tens of thousands) is interrupted.
        trash = self.path.with_name(self.path.name + ".trash")
        if self.path.exists():
            shutil.rmtree(trash, ignore_errors=True)
            self.git.say(f"$ mv {self.path} {trash}")
            self.path.rename(trash)
        self.git(self.checkout, "worktree", "prune", check=False)
        if trash.exists():
            self.git.say(f"$ rm -rf {trash}")
            shutil.rmtree(trash, ignore_errors=True)


# --------------------------------------------------------------------------- the bisect

StepFn = Callable[[str, int], Observation]  # (commit checked out in the worktree, step number)

_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.MULTILINE)


class BudgetExhausted(Exception):
    pass


class CommitBisector:
    """Drives `git bisect` in the worktree; `step` runs the checks on whatever is checked out."""

    def __init__(self, git: Git, tree: Path, step: StepFn, say: Say,
                 deadline: float | None = None) -> None:
        self.git, self.tree, self.step_fn, self.say, self.deadline = git, tree, step, say, deadline
        self.steps: list[BisectStep] = []
        self.target: Observation | None = None

    def run_step(self, commit: str, purpose: str) -> BisectStep:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExhausted(f"time budget exhausted after {len(self.steps)} steps")
        self.git(self.tree, "checkout", "-q", "--detach", commit)
        number = len(self.steps) + 1
        start = time.monotonic()
        obs = self.step_fn(commit, number)
        if self.target is None:  # the bad end defines the failure being bisected
            mark, note = (Mark.GOOD if obs.passed else Mark.BAD), ""
        else:
            mark, note = classify(obs, self.target)
        step = BisectStep(number, commit, purpose, mark.value, obs.verdict, obs.stage, note,
                          list(obs.reasons[:5]), round(time.monotonic() - start, 1),
                          obs.record_dir)
        self.steps.append(step)
        self.say(f"step {number} ({purpose}) {commit[:12]}: {mark.value} ({obs.verdict}"
                 f"{' at ' + obs.stage if obs.stage else ''}, {step.duration_s:.0f} s)"
                 + (f": {note}" if note else ""))
        if self.target is None:
            self.target = obs
        return step

    def bisect(self, good: str, bad: str, result: BisectResult) -> None:
        first = self.run_step(bad, "check-bad")
        if first.verdict == "pass" or first.verdict == "infra-error":
            raise InputError(f"--bad {bad[:12]} does not fail at the {result.stage} stage "
                             f"({first.verdict}): nothing to bisect")
        assert self.target is not None
        result.target = {"verdict": self.target.verdict, "stage": self.target.stage,
                         "reasons": list(self.target.reasons[:5])}
        if self.target.stage != result.stage:
            raise InputError(f"--bad {bad[:12]} fails at the {self.target.stage} stage, not "
                             f"{result.stage}: rerun with --stage {self.target.stage}")
        check = self.run_step(good, "check-good")
        if check.mark != Mark.GOOD.value:
            raise InputError(f"--good {good[:12]} does not pass ({check.verdict}: "
                             f"{'; '.join(check.reasons[:1])}): pick an older good commit")
        self.git(self.tree, "bisect", "start", bad, good)
        try:
            while True:
                head = self.git(self.tree, "rev-parse", "HEAD").strip()
                step = self.run_step(head, "bisect")
                out = self.git(self.tree, "bisect", step.mark, check=False)
                if m := _FIRST_BAD.search(out):
                    result.first_bad = Commit(m.group(1))
                    break
                if "only 'skip'ped commits left" in out:
                    result.candidates = re.findall(r"^([0-9a-f]{40})$", out, re.MULTILINE)
                    break
                if not re.search(r"^Bisecting: ", out, re.MULTILINE):
                    raise InfraError(f"`git bisect {step.mark}` in {self.tree} said: "
                                     f"{' '.join(out.split())[:300]}")
        finally:
            result.bisect_log = self.git(self.tree, "bisect", "log", check=False)
            self.git(self.tree, "bisect", "reset", "HEAD", check=False)

    def confirm(self, result: BisectResult) -> None:
        assert result.first_bad is not None
        bad = self.run_step(result.first_bad.id, "confirm-bad")
        parents = self.git(self.tree, "rev-list", "--parents", "-n", "1",
                           result.first_bad.id).split()[1:]
        ok = bad.mark == Mark.BAD.value
        for parent in parents:
            ok = self.run_step(parent, "confirm-parent").mark == Mark.GOOD.value and ok
        result.confirmed = ok
        result.first_errors = bad.reasons


def bisect_commits(git: Git, checkout: Path, worktree: Path, good: str, bad: str,
                   combo_id: str, stage: str, make_step: Callable[[Path], StepFn], say: Say,
                   deadline: float | None = None,
                   on_exit: Callable[[BisectResult], None] | None = None) -> BisectResult:
    """The whole commit bisect in a throwaway worktree of `checkout`."""
    if stage not in STAGES:
        raise InputError(f"--stage {stage!r}: choose one of {', '.join(STAGES)}")
    start = time.monotonic()
    good_id, bad_id = resolve_rev(git, checkout, good), resolve_rev(git, checkout, bad)
    if good_id == bad_id:
        raise InputError("--good and --bad are the same commit: nothing to bisect")
    ancestor = subprocess.run(["git", "-C", str(checkout), "merge-base", "--is-ancestor",
                               good_id, bad_id], check=False, env=git_env())
    if ancestor.returncode != 0:
        raise InputError(f"--good {good} is not an ancestor of --bad {bad}: swap them, or pick "
                         "a good commit in the bad commit's history")
    result = BisectResult(combo_id, good_id, bad_id, stage, {})
    with Worktree(git, checkout, worktree, bad_id) as tree:
        bisector = CommitBisector(git, tree, make_step(tree), say, deadline)
        try:
            bisector.bisect(good_id, bad_id, result)
            if result.first_bad is not None:
                bisector.confirm(result)
                result.first_bad = commit_info(git, checkout, result.first_bad.id)
        except BudgetExhausted as exc:
            result.complete = False
            result.message = f"incomplete: {exc}"
        except BaseException as exc:  # Ctrl-C or an error: keep what the steps showed
            result.complete = False
            result.message = (f"stopped: {exc.message}" if isinstance(exc, KmatrixError) else
                              f"interrupted ({type(exc).__name__}) after "
                              f"{len(bisector.steps)} steps")
            raise
        finally:
            result.steps = bisector.steps
            result.skipped = [s for s in result.steps if s.mark == Mark.SKIP.value]
            result.duration_s = round(time.monotonic() - start, 1)
            if on_exit is not None:
                on_exit(result)
    if not result.message:
        result.message = _message(result)
    return result


def _message(result: BisectResult) -> str:
    if result.first_bad is not None:
        c = result.first_bad
        return (f"first bad commit: {c.id[:12]} {c.subject!r} ({c.author}, {c.date})"
                + ("" if result.confirmed else " -- NOT confirmed on a second run: see the steps"))
    if result.candidates:
        return (f"skipped commits hide the first bad commit: it is one of "
                f"{', '.join(c[:12] for c in result.candidates)}")
    return "git bisect did not name a first bad commit: see bisect_log"


def report_text(result: BisectResult) -> str:
    lines = [(f"kmatrix bisect: combination {result.combo}, stage {result.stage}, "
             f"good {result.good[:12]}, bad {result.bad[:12]}"),
             (f"bisecting: {result.target.get('verdict')} at the {result.target.get('stage')} "
             "stage"), f"result: {result.message}"]
    if result.first_bad is not None:
        c = result.first_bad
        lines += [f"  commit  {c.id}", f"  subject {c.subject}", f"  author  {c.author}",
                  f"  date    {c.date}", f"  confirmed: {'yes' if result.confirmed else 'NO'}"]
    if result.first_errors:
        lines += ["first errors:", *[f"  {e}" for e in result.first_errors]]
    lines.append(f"steps: {len(result.steps)} ({len(result.skipped)} skipped) in "
                 f"{result.duration_s:.0f} s")
    for s in result.steps:
        lines.append(f"  {s.number:3d} {s.purpose:<15} {s.commit[:12]} {s.mark:<5} {s.verdict}"
                     + (f"  # {s.note}" if s.note else ""))
    return "\n".join(lines) + "\n"


def write_report(result: BisectResult, directory: Path) -> None:
    from . import results

    results.atomic_write(directory / "bisect.json", json.dumps(result.to_dict(), indent=2))
    results.atomic_write(directory / "bisect.txt", report_text(result))


# --------------------------------------------------------------------------- on the real tree


def combination_step(env: Env, combo_id: str, stage: str, tree: Path) -> StepFn:
    """Each step: the combination's own checks up to `stage`, in the worktree, one warm out dir."""
    from . import pipeline

    combo = env.matrix.combination(combo_id)  # type: ignore[attr-defined]
    matrix = stage_matrix(env.matrix, stage)
    base = env.settings  # type: ignore[assignment]

    def step(commit: str, number: int) -> Observation:
        run_dir = Path(base.run_dir) / "steps" / f"{number:02d}-{commit[:12]}"
        kernel = {**base.kernel, "commit": commit, "path": str(tree)}
        settings = stage_settings(base, stage, tree=str(tree), run_dir=str(run_dir),
                                  kernel=kernel)
        env.say(f"kmatrix: {combo.id} at {commit[:12]} (log: {run_dir / combo.id / 'build.log'})")
        record = pipeline.run_combination(settings, matrix, combo, env.symbols, env.runner,
                                          stage_hooks(settings, matrix, combo, env.symbols,
                                                      env.runner, stage))
        obs = observe(record, run_dir / combo.id)
        return replace(obs, reasons=tuple(tree_relative(r, tree) for r in obs.reasons))
    return step


def tree_relative(text: str, tree: Path) -> str:
    """Paths into the worktree (absolute, or relative to the output tree) as tree paths."""
    return re.sub(r"[^\s:'\"]*/" + re.escape(f"{tree.parent.name}/{tree.name}/"), "", text)


def bisect_on_tree(env: Env, checkout: Path, good: str, bad: str, combo_id: str,
                   stage: str | None, results_dir: Path,
                   deadline: float | None = None) -> BisectResult:
    """`kmatrix bisect`: the user's checkout stays as it is; results in env's run dir."""
    from .source import cache_root

    if not (checkout / ".git").exists():
        raise InputError(f"{checkout} is not a git checkout: `kmatrix bisect` needs "
                         "--kernel pointing at the top of a git checkout of the kernel")
    env.matrix.combination(combo_id)  # type: ignore[attr-defined]
    stage = stage or default_stage(results_dir, combo_id)
    run_dir = Path(env.settings.run_dir)  # type: ignore[attr-defined]
    git = Git(env.say)
    result = bisect_commits(git, checkout, worktree_path(cache_root(), checkout), good, bad,
                            combo_id, stage, lambda tree: combination_step(env, combo_id, stage,
                                                                           tree),
                            env.say, deadline,
                            on_exit=lambda partial: write_report(partial, run_dir))
    write_report(result, run_dir)
    return result


# --------------------------------------------------------------------------- nightly


def previous_run_dir(results_dir: Path, current: Path) -> Path | None:
    """The run before `current` in results/ (run ids sort by time)."""
    runs = sorted(p for p in results_dir.iterdir()
                  if p.is_dir() and (p / "run.json").is_file() and p.name < current.name
                  and not p.name.startswith("bisect"))
    return runs[-1] if runs else None


def _records(run_dir: Path) -> dict[str, dict]:
    out = {}
    for path in run_dir.glob("*/record.json"):
        data = json.loads(path.read_text())
        out[data["combination"]] = data
    return out


def nearest_passing(failing: dict, records: dict[str, dict]) -> str | None:
    """The passing combination whose requested values differ least from the failing one's."""
    want = failing.get("requested", {})
    best: tuple[int, str] | None = None
    for cid, rec in records.items():
        if rec.get("verdict") != "pass":
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
    from .configbisect import config_bisect_on_tree, open_env

    deadline = time.monotonic() + budget_s
    previous, current = _records(previous_run_dir), _records(current_run_dir)
    run = json.loads((current_run_dir / "run.json").read_text())
    prev_run = json.loads((previous_run_dir / "run.json").read_text())
    new = sorted(cid for cid, rec in current.items()
                 if rec.get("verdict") not in ("pass", "infra-error", "", None)
                 and previous.get(cid, {}).get("verdict") == "pass")
    lines = [f"## New failures since {previous_run_dir.name}: {len(new)}"] if new else []
    for cid in new:
        left = deadline - time.monotonic()
        if left <= 0:
            lines.append(f"- {cid}: not bisected (time budget of {budget_s:.0f} s used up)")
            continue
        rec = current[cid]
        stage = VERDICT_STAGE.get(rec["verdict"], "build")
        old, now = prev_run["kernel"].get("commit"), run["kernel"].get("commit")
        tree = Path(run["kernel"].get("path") or run["tree"])
        try:
            if old and now and old != now and (tree / ".git").exists():
                env = open_env(matrix_path, results_dir, kernel or str(tree), jobs, "bisect", say)
                res = bisect_on_tree(env, tree, old, now, cid, stage, results_dir, deadline)
                lines.append(f"- {cid}: commit bisect {old[:12]}..{now[:12]}: {res.message} "
                             f"({len(res.steps)} steps, {res.duration_s:.0f} s; "
                             f"{env.settings.run_dir})")  # type: ignore[attr-defined]
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
                         f"{cres.duration_s:.0f} s; {env.settings.run_dir})")  # type: ignore[attr-defined]
        except (InputError, InfraError) as exc:
            lines.append(f"- {cid}: not bisected: {exc.message}")
    return lines
