"""Both bisects on the real kernel in real containers.

A git history is made from the unpacked kernel tree once and cached in the kmatrix cache (keyed by
the tree's path): creating it takes about 2 minutes. Each test then writes its own small history
on top of the initial commit with git plumbing (no checkout: the "user's checkout" stays exactly
as it was) and bisects it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from filelock import FileLock

pytestmark = pytest.mark.integration

GIT_ENV = {"GIT_AUTHOR_NAME": "kmatrix test", "GIT_AUTHOR_EMAIL": "test@kmatrix.invalid",
           "GIT_COMMITTER_NAME": "kmatrix test", "GIT_COMMITTER_EMAIL": "test@kmatrix.invalid"}


def git(repo: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None
        ) -> str:
    argv = ["git", "-C", str(repo), *args]
    print("$", " ".join(argv), flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, input=input,
                          env={**os.environ, **GIT_ENV, **(env or {})}, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout.strip()


def kernel_git_checkout(tree: Path, cache: Path) -> Path:
    """A git checkout of the unpacked tree with one initial commit, made once and cached."""
    key = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:12]
    root = cache / "bisect-test-git" / key
    root.mkdir(parents=True, exist_ok=True)
    repo = root / "linux"
    with FileLock(str(root / "make.lock")):
        if (root / "done").exists():
            return repo
        shutil.rmtree(repo, ignore_errors=True)
        subprocess.run(["cp", "-a", "--reflink=auto", str(tree), str(repo)], check=True)
        git(repo, "init", "-q", "-b", "master")
        git(repo, "add", "-f", "-A", ".")  # the Debian tarball's .gitignore ignores `/*`
        git(repo, "commit", "-q", "-m", "Initial commit: the unpacked kernel tree")
        (root / "done").write_text(git(repo, "rev-parse", "HEAD") + "\n")
    return repo



def build_history(repo: Path, branch: str) -> list[str]:
    """16 commits on top of the initial one, written with plumbing (a private index; the
    checkout's HEAD, index and files are never touched):
    1-4 harmless; 5 breaks kernel/module/main.c for every combination; 6 fixes it; 7 harmless;
    8 breaks kernel/module/dups.c (built only with DUPS=y); 9-16 harmless (dups stays broken)."""
    index = repo.parent / f"{branch}.index"
    env = {"GIT_INDEX_FILE": str(index)}
    base = git(repo, "rev-parse", "master")
    git(repo, "read-tree", base, env=env)
    main_c = git(repo, "show", f"{base}:kernel/module/main.c") + "\n"
    dups_c = git(repo, "show", f"{base}:kernel/module/dups.c") + "\n"

    def put(path: str, text: str) -> None:
        blob = git(repo, "hash-object", "-w", "--stdin", input=text)
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)

    ids, parent = [], base
    for n in range(1, 17):
        put("kmatrix-bisect-note.txt", f"harmless change {n}\n")
        if n == 5:
            put("kernel/module/main.c", main_c + "#error kmatrix: main.c broken for everyone\n")
            subject = "module: break main.c for every combination"
        elif n == 6:
            put("kernel/module/main.c", main_c)
            subject = "module: fix main.c again"
        elif n == 8:
            put("kernel/module/dups.c", dups_c + "static int kmatrix_culprit = undeclared_thing;\n")
            subject = "module: dups: the culprit"
        else:
            subject = f"harmless change {n}"
        tree = git(repo, "write-tree", env=env)
        parent = git(repo, "commit-tree", tree, "-p", parent, "-m", subject,
                     env={"GIT_AUTHOR_DATE": f"2025-01-{n:02d}T12:00:00Z"})
        ids.append(parent)
    git(repo, "update-ref", f"refs/heads/{branch}", parent)
    index.unlink()
    return ids


def user_state(repo: Path) -> dict[str, str]:
    return {"head": git(repo, "rev-parse", "HEAD"), "branch": git(repo, "symbolic-ref", "HEAD"),
            "status": git(repo, "status", "--porcelain"),
            "index": hashlib.sha256(git(repo, "ls-files", "-s").encode()).hexdigest(),
            "worktrees": git(repo, "worktree", "list", "--porcelain")}


BISECT_MATRIX = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}}
build: {{targets: [kernel/module/], timeout: 900}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    dups.o: MODULE_DEBUG_AUTOLOAD_DUPS
    tree_lookup.o: MODULES_TREE_LOOKUP
    stats.o: MODULE_STATS
include:
  - {{id: it-bisect-dups, config: {{CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}}}
"""


@pytest.mark.xdist_group("commit-bisect")  # one bisect of a checkout at a time (worktree lock)
def test_commit_bisect_finds_the_culprit_and_skips_the_other_break(tmp_path, kernel_tree,
                                                                   kmatrix_cache, builder_image):
    from harness.bisect.commits import bisect_on_tree
    from harness.bisect.trial import open_env

    repo = kernel_git_checkout(kernel_tree, kmatrix_cache)
    branch = f"kmatrix-bisect-test-{os.getpid()}"
    ids = build_history(repo, branch)
    before = user_state(repo)
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(BISECT_MATRIX.format(tree=repo))
    lines: list[str] = []
    env = open_env(matrix, tmp_path / "results", str(repo), 2, "bisect",
                   lambda line: (lines.append(line), print(line, flush=True)))
    start = time.monotonic()
    result = bisect_on_tree(env, repo, "master", branch, "it-bisect-dups", "build",
                            tmp_path / "results")
    wall = time.monotonic() - start
    print(f"commit bisect over 16 commits: {len(result.steps)} steps, {wall:.0f} s")
    try:
        assert result.first_bad is not None, result.message
        assert result.first_bad.id == ids[7], result.message
        assert result.first_bad.subject == "module: dups: the culprit"
        assert result.confirmed
        assert any("dups.c" in e and "undeclared_thing" in e for e in result.first_errors)
        skipped = {s.commit for s in result.skipped}
        assert ids[4] in skipped or ids[4] not in {s.commit for s in result.steps}
        assert user_state(repo) == before
        run_dir = Path(env.settings.run_dir)
        saved = json.loads((run_dir / "bisect.json").read_text())
        assert saved["first_bad"]["id"] == ids[7]
        assert "first bad commit" in (run_dir / "bisect.txt").read_text()
        assert not list((kmatrix_cache / "bisect").glob("*/linux"))
    finally:
        git(repo, "branch", "-D", branch)


@pytest.mark.xdist_group("commit-bisect")
def test_commit_bisect_reports_the_skip(tmp_path, kernel_tree, kmatrix_cache, builder_image):
    """A short range where git must land on the commit that breaks main.c: it is a skip."""
    from harness.bisect.commits import bisect_on_tree
    from harness.bisect.trial import open_env

    repo = kernel_git_checkout(kernel_tree, kmatrix_cache)
    branch = f"kmatrix-bisect-skip-{os.getpid()}"
    ids = build_history(repo, branch)
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(BISECT_MATRIX.format(tree=repo))
    env = open_env(matrix, tmp_path / "results", str(repo), 2, "bisect", print)
    try:
        # good = commit 3, bad = commit 8: the midpoint is the main.c break (commit 5 or 6)
        result = bisect_on_tree(env, repo, ids[2], ids[7], "it-bisect-dups", "build",
                                tmp_path / "results")
        assert result.first_bad is not None and result.first_bad.id == ids[7], result.message
        assert result.confirmed
        assert [s.commit for s in result.skipped] == [ids[4]], result.steps
        assert "main.c" in result.skipped[0].note
    finally:
        git(repo, "branch", "-D", branch)


CONFIG_MATRIX = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y}}
build: {{targets: [kernel/module/], timeout: 900}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    dups.o: MODULE_DEBUG_AUTOLOAD_DUPS
    tree_lookup.o: MODULES_TREE_LOOKUP
    tracking.o: MODULE_UNLOAD_TAINT_TRACKING
    kallsyms.o: n                    # deliberately wrong: KALLSYMS=y is a link-mismatch
    procfs.o: PROC_FS && !SYSFS      # deliberately wrong: PROC_FS and SYSFS together mismatch
    sysfs.o: SYSFS
include:
  - {{id: cb-good, config: {{}}}}
  - {{id: cb-bad-one, config: {{{common}, CONFIG_PROC_FS: y, CONFIG_KALLSYMS: y}}}}
  - {{id: cb-bad-pair, config: {{{common}, CONFIG_PROC_FS: y, CONFIG_SYSFS: y}}}}
"""
HARMLESS = ("CONFIG_PRINTK: y, CONFIG_BUG: y, CONFIG_MULTIUSER: y, CONFIG_FUTEX: y, "
            "CONFIG_EPOLL: y, CONFIG_SIGNALFD: y, CONFIG_TIMERFD: y, CONFIG_EVENTFD: y, "
            "CONFIG_AIO: y, CONFIG_MODULE_UNLOAD: y")


def config_bisect(tmp_path: Path, kernel_tree: Path, bad: str):
    from harness.bisect.oracle import config_bisect_on_tree
    from harness.bisect.trial import open_env

    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(CONFIG_MATRIX.format(tree=kernel_tree, common=HARMLESS))
    env = open_env(matrix, tmp_path / "results", None, 2, "bisect-config", print)
    start = time.monotonic()
    result = config_bisect_on_tree(env, "cb-good", bad)
    print(f"config bisect over {len(result.differing)} differing options: "
          f"{len(result.tried)} configs tried, {time.monotonic() - start:.0f} s")
    return result, Path(env.settings.run_dir)


@pytest.mark.xdist_group("config-bisect")  # the trials share one warm output tree
def test_config_bisect_finds_the_one_option(tmp_path, kernel_tree, builder_image):
    result, run_dir = config_bisect(tmp_path, kernel_tree, "cb-bad-one")
    assert len(result.differing) >= 10
    assert result.target == {"verdict": "link-mismatch", "stage": "link"}
    assert result.culprits == ["CONFIG_KALLSYMS=y"], result.message
    assert result.single and "alone makes the difference" in result.message
    assert result.tried and all(t.record_dir for t in result.tried)
    assert "configs tried" in (run_dir / "bisect-config.txt").read_text()


@pytest.mark.xdist_group("config-bisect")
def test_config_bisect_finds_the_pair(tmp_path, kernel_tree, builder_image):
    result, _ = config_bisect(tmp_path, kernel_tree, "cb-bad-pair")
    assert len(result.differing) >= 10
    assert sorted(result.culprits) == ["CONFIG_PROC_FS=y", "CONFIG_SYSFS=y"], result.message
    assert not result.single and result.message.startswith("no single option is to blame")


if __name__ == "__main__":  # warm the cache by hand: python tests/integration/test_bisect_real.py
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from harness import source

    t = source.resolve("debian")
    start = time.monotonic()
    print(kernel_git_checkout(t.path, source.cache_root()), f"{time.monotonic() - start:.0f} s")
