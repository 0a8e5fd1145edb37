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

from ..verdict import InfraError, InputError, KmatrixError, Stage, Verdict
from .trial import STAGES, Env, Observation, Say, run_trial


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
    if obs.verdict is Verdict.INFRA_ERROR:
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
        stage = Verdict(verdict).stage if verdict in set(Verdict) else None
        if stage is not None:
            return stage.value
    return Stage.BUILD.value


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
        step = BisectStep(number, commit, purpose, mark.value, obs.verdict, obs.stage or "", note,
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
        if first.verdict in (Verdict.PASS, Verdict.INFRA_ERROR):
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
    from .. import results

    results.atomic_write(directory / "bisect.json", json.dumps(result.to_dict(), indent=2))
    results.atomic_write(directory / "bisect.txt", report_text(result))


# --------------------------------------------------------------------------- on the real tree


def combination_step(env: Env, combo_id: str, stage: Stage, tree: Path) -> StepFn:
    """Each step: the combination's own checks up to `stage`, in the worktree, one warm out dir."""
    combo = env.matrix.combination(combo_id)
    base = env.settings

    def step(commit: str, number: int) -> Observation:
        run_dir = Path(base.run_dir) / "steps" / f"{number:02d}-{commit[:12]}"
        kernel = {**base.kernel, "commit": commit, "path": str(tree)}
        env.say(f"kmatrix: {combo.id} at {commit[:12]} (log: {run_dir / combo.id / 'build.log'})")
        _, obs = run_trial(env, combo, run_dir, stage, tree=str(tree), kernel=kernel)
        return replace(obs, reasons=tuple(tree_relative(r, tree) for r in obs.reasons))
    return step


def tree_relative(text: str, tree: Path) -> str:
    """Paths into the worktree (absolute, or relative to the output tree) as tree paths."""
    return re.sub(r"[^\s:'\"]*/" + re.escape(f"{tree.parent.name}/{tree.name}/"), "", text)


def bisect_on_tree(env: Env, checkout: Path, good: str, bad: str, combo_id: str,
                   stage: str | None, results_dir: Path,
                   deadline: float | None = None) -> BisectResult:
    """`kmatrix bisect`: the user's checkout stays as it is; results in env's run dir."""
    from ..source import cache_root

    if not (checkout / ".git").exists():
        raise InputError(f"{checkout} is not a git checkout: `kmatrix bisect` needs "
                         "--kernel pointing at the top of a git checkout of the kernel")
    env.matrix.combination(combo_id)
    stage = stage or default_stage(results_dir, combo_id)
    run_dir = Path(env.settings.run_dir)
    git = Git(env.say)
    result = bisect_commits(git, checkout, worktree_path(cache_root(), checkout), good, bad,
                            combo_id, stage,
                            lambda tree: combination_step(env, combo_id, Stage(stage), tree),
                            env.say, deadline,
                            on_exit=lambda partial: write_report(partial, run_dir))
    write_report(result, run_dir)
    return result


