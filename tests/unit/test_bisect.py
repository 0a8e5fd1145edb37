"""Commit bisect on tiny real git repositories with a fake step: marks, skips, merges, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.bisect.commits import (
    Git,
    Mark,
    bisect_commits,
    classify,
    default_stage,
    report_text,
    signature,
)
from harness.bisect.trial import Observation
from harness.compare import previous_comparable_run
from harness.verdict import InputError

ENV = {**os.environ, "GIT_AUTHOR_NAME": "A U Thor", "GIT_AUTHOR_EMAIL": "a@example.org",
       "GIT_COMMITTER_NAME": "C O Mitter", "GIT_COMMITTER_EMAIL": "c@example.org"}
TARGET = Observation("build-error", "build",
                     ("make failed: kernel/module/dups.c:12:5: error: 'x' undeclared",))


def sh(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=ENV).stdout.strip()


def commit(repo: Path, state: str, subject: str) -> str:
    (repo / "state").write_text(state + "\n")
    (repo / "log").write_text((repo / "log").read_text() + subject + "\n"
                              if (repo / "log").exists() else subject + "\n")
    sh(repo, "add", "state", "log")
    sh(repo, "commit", "-q", "-m", subject)
    return sh(repo, "rev-parse", "HEAD")


def observe_state(tree: Path) -> Observation:
    state = (tree / "state").read_text().strip()
    if state == "ok":
        return Observation("pass")
    if state == "dups":
        return Observation("build-error", "build", (
            (f"make failed: kernel/module/dups.c:{10 + len((tree / 'log').read_text())}:5: "
            "error: 'x' undeclared"),))
    if state == "main":
        return Observation("build-error", "build",
                           ("make failed: kernel/module/main.c:3:1: error: expected ';'",))
    if state == "infra":
        return Observation("infra-error", "build", ("disk full",))
    raise AssertionError(state)


def fake_step(seen: list[str]):
    def make(tree: Path):
        def step(commit: str, number: int) -> Observation:
            assert sh(tree, "rev-parse", "HEAD") == commit
            seen.append(commit)
            return observe_state(tree)
        return step
    return make


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "linux"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    return repo


def user_state(repo: Path) -> tuple[str, ...]:
    return (sh(repo, "rev-parse", "HEAD"), sh(repo, "symbolic-ref", "HEAD"),
            sh(repo, "status", "--porcelain"), sh(repo, "ls-files", "-s"),
            sh(repo, "worktree", "list", "--porcelain"))


def linear_history(repo: Path) -> list[str]:
    # 0 good, 1-4 ok, 5 breaks everything differently (main), 6 fixes it, 7 ok, 8 culprit ...
    states = ["ok", "ok", "ok", "ok", "ok", "main", "ok", "ok", "dups", "dups", "dups", "dups",
              "dups", "dups", "dups", "dups"]
    return [commit(repo, s, f"commit {i}: {s}") for i, s in enumerate(states)]


def test_classify_outcomes():
    assert classify(Observation("pass"), TARGET) == (Mark.GOOD, "")
    assert classify(TARGET, TARGET)[0] is Mark.BAD
    moved = Observation("build-error", "build",
                        ("make failed: kernel/module/dups.c:40:9: error: 'x' undeclared",))
    assert classify(moved, TARGET)[0] is Mark.BAD  # same error, other line
    other = Observation("build-error", "build", ("make failed: main.c:3:1: error: expected ';'",))
    assert classify(other, TARGET)[0] is Mark.SKIP
    mark, note = classify(Observation("link-mismatch", "link", ("x",)), TARGET)
    assert mark is Mark.SKIP and "another stage" in note
    mark, note = classify(Observation("infra-error", "build", ("disk full",)), TARGET)
    assert mark is Mark.SKIP and "infrastructure" in note
    assert signature(TARGET) == signature(moved)


def test_finds_first_bad_commit_reports_skip_and_leaves_checkout_alone(repo, tmp_path):
    ids = linear_history(repo)
    sh(repo, "checkout", "-q", "-b", "topic", ids[3])
    (repo / "untracked").write_text("mine\n")
    before = user_state(repo)
    seen: list[str] = []
    wt = tmp_path / "cache" / "wt"
    result = bisect_commits(Git(lambda _: None), repo, wt, ids[0], "main", "dups-y", "build",
                            fake_step(seen), lambda _: None)
    assert result.first_bad is not None and result.first_bad.id == ids[8]
    assert result.first_bad.subject == "commit 8: dups"
    assert result.first_bad.author.startswith("A U")
    assert result.confirmed
    assert [s.purpose for s in result.steps[:2]] == ["check-bad", "check-good"]
    assert [s.purpose for s in result.steps[-2:]] == ["confirm-bad", "confirm-parent"]
    assert result.steps[-1].commit == ids[7]
    assert "dups.c" in result.first_errors[0]
    assert user_state(repo) == before and (repo / "untracked").exists()
    assert not wt.exists()
    text = report_text(result)
    assert "first bad commit" in text and ids[8] in text
    if ids[5] in seen:  # git may or may not land on the broken commit: when it does, it is a skip
        assert [s.commit for s in result.skipped] == [ids[5]]
        assert "another failure" in result.skipped[0].note


def test_skip_is_reported_when_bisect_lands_on_it(repo, tmp_path):
    states = ["ok", "ok", "main", "ok", "dups", "dups"]
    ids = [commit(repo, s, f"c{i}") for i, s in enumerate(states)]
    result = bisect_commits(Git(lambda _: None), repo, tmp_path / "wt", ids[0], ids[-1], "c",
                            "build", fake_step([]), lambda _: None)
    assert result.first_bad is not None and result.first_bad.id == ids[4]
    assert [s.commit for s in result.skipped] == [ids[2]]


def test_only_skipped_commits_left_names_candidates(repo, tmp_path):
    ids = [commit(repo, s, f"c{i}") for i, s in enumerate(["ok", "infra", "dups"])]
    result = bisect_commits(Git(lambda _: None), repo, tmp_path / "wt", ids[0], ids[-1], "c",
                            "build", fake_step([]), lambda _: None)
    assert result.first_bad is None and set(result.candidates) == {ids[1], ids[2]}
    assert "skipped commits hide" in result.message


def test_merge_history(repo, tmp_path):
    base = commit(repo, "ok", "base")
    sh(repo, "checkout", "-q", "-b", "side")
    commit(repo, "ok", "side 1")
    culprit = commit(repo, "dups", "side 2 breaks dups")
    sh(repo, "checkout", "-q", "main")
    commit(repo, "ok", "main 1")
    sh(repo, "merge", "-q", "--no-ff", "-X", "ours", "-m", "merge side", "side")
    assert (repo / "state").read_text() == "dups\n"  # the merge brings the break in
    commit(repo, "dups", "main 2")
    result = bisect_commits(Git(lambda _: None), repo, tmp_path / "wt", base, "main", "c",
                            "build", fake_step([]), lambda _: None)
    assert result.first_bad is not None
    assert result.first_bad.id == culprit  # on the side branch, not the merge
    assert result.confirmed


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_worktree_removed_on_error_and_ctrl_c(repo, tmp_path, exc):
    ids = linear_history(repo)
    before = user_state(repo)
    wt = tmp_path / "wt"

    def make(tree: Path):
        def step(commit: str, number: int) -> Observation:
            assert tree.is_dir()
            if number == 3:
                raise exc
            return observe_state(tree)
        return step
    partial = []
    with pytest.raises(type(exc)):
        bisect_commits(Git(lambda _: None), repo, wt, ids[0], ids[-1], "c", "build", make,
                       lambda _: None, on_exit=partial.append)
    assert not wt.exists()
    assert len(partial[0].steps) == 2 and not partial[0].complete
    assert partial[0].message.startswith("interrupted")
    assert user_state(repo) == before


def test_stale_worktree_from_a_killed_run_is_replaced(repo, tmp_path):
    ids = linear_history(repo)
    wt = tmp_path / "wt"
    sh(repo, "worktree", "add", "-q", "--detach", str(wt), ids[2])
    result = bisect_commits(Git(lambda _: None), repo, wt, ids[0], ids[-1], "c", "build",
                            fake_step([]), lambda _: None)
    assert result.first_bad is not None and not wt.exists()
    assert "wt" not in sh(repo, "worktree", "list")


def test_bad_input(repo, tmp_path):
    ids = linear_history(repo)
    with pytest.raises(InputError, match="not an ancestor"):
        bisect_commits(Git(lambda _: None), repo, tmp_path / "wt", ids[9], ids[2], "c", "build",
                       fake_step([]), lambda _: None)
    with pytest.raises(InputError, match="does not pass"):
        bisect_commits(Git(lambda _: None), repo, tmp_path / "wt", ids[9], ids[12], "c",
                       "build", fake_step([]), lambda _: None)
    with pytest.raises(InputError, match="not a commit"):
        bisect_commits(Git(lambda _: None), repo, tmp_path / "wt", "nope", ids[2], "c", "build",
                       fake_step([]), lambda _: None)
    assert not (tmp_path / "wt").exists()


def test_default_stage_from_last_results(tmp_path):
    (tmp_path / "latest" / "stats").mkdir(parents=True)
    (tmp_path / "latest" / "stats" / "record.json").write_text(json.dumps(
        {"verdict": "link-mismatch"}))
    assert default_stage(tmp_path, "stats") == "link"
    assert default_stage(tmp_path, "other") == "build"


def write_run(results: Path, name: str, kernel_commit: str | None, verdicts: dict[str, str],
              configs: dict[str, str] | None = None) -> Path:
    run = results / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"tree": "/nonexistent", "matrix_path": "/x/m.yaml",
                                              "kernel": {"commit": kernel_commit,
                                                         "path": "/nonexistent"}}))
    for cid, verdict in verdicts.items():
        (run / cid).mkdir()
        requested = {"CONFIG_MODULES": "y", f"CONFIG_{cid.upper()}": "y"}
        (run / cid / "record.json").write_text(json.dumps(
            {"combination": cid, "verdict": verdict, "requested": requested, "run_id": name,
             "matrix": "/x/m.yaml", "values": {}, "status": "done"}))
        if configs and cid in configs:
            (run / cid / "config").write_text(configs[cid])
    return run


def test_nightly_picks_new_failures_and_the_right_bisect(tmp_path, monkeypatch):
    from harness.bisect import nightly as bisectmod

    old = write_run(tmp_path, "20250101T000000Z-aaaa", None,
                    {"a": "pass", "b": "pass", "c": "build-error", "d": "pass"},
                    {"a": "CONFIG_A=y\n"})
    new = write_run(tmp_path, "20250102T000000Z-bbbb", None,
                    {"a": "link-mismatch", "b": "build-error", "c": "build-error",
                     "d": "pass"}, {"a": "CONFIG_A=y\nCONFIG_X=y\n"})
    assert previous_comparable_run(tmp_path, new) == old
    calls = []

    class Result:
        message, tried, duration_s = "CONFIG_X=y alone makes the difference", [1, 2], 3.0

    class FakeEnv:
        settings = type("S", (), {"run_dir": "results/bisect-config-x"})()

    monkeypatch.setattr(bisectmod, "open_env", lambda *a, **k: FakeEnv())
    monkeypatch.setattr(bisectmod, "config_bisect_on_tree",
                        lambda env, good, bad, deadline=None: calls.append((good, bad)) or Result())
    lines = bisectmod.bisect_new_failures(old, new, 60, tmp_path / "m.yaml", tmp_path,
                                          say=lambda _: None)
    assert lines[0].startswith("## New failures since 20250101T000000Z-aaaa: 2")
    # a: its passing .config of the previous run; b: the nearest passing combination now
    assert calls == [(str(old / "a" / "config"), "a"), ("d", "b")]
    assert "CONFIG_X=y alone" in lines[1] and lines[2].startswith("- b:")
    # the summary's comparison is the one the bisect reads: the same new failures
    (new / "summary.md").write_text("# run\n")
    assert bisectmod.bisect_since_previous(new, 60, say=lambda _: None) == lines
    assert (new / "summary.md").read_text().endswith(lines[-1] + "\n")


def test_nightly_budget_used_up(tmp_path):
    from harness.bisect import nightly as bisectmod

    old = write_run(tmp_path, "20250101T000000Z-aaaa", None, {"a": "pass"})
    new = write_run(tmp_path, "20250102T000000Z-bbbb", None, {"a": "build-error"})
    lines = bisectmod.bisect_new_failures(old, new, 0, tmp_path / "m.yaml", tmp_path,
                                          say=lambda _: None)
    assert lines[1] == "- a: not bisected (time budget of 0 s used up)"
