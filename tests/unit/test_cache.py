"""kmatrix's cache: sizes, and pruning output trees and seeds nobody used for a while."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from filelock import FileLock

from harness import cache, cli

DAY = 86400.0


def tree(root: Path, rel: str, age_days: float, marker: str = ".config") -> Path:
    path = root / rel
    path.mkdir(parents=True)
    (path / marker).write_text("CONFIG_MODULES=y\n")
    (path / "built-in.a").write_bytes(b"x" * 5000)
    when = time.time() - age_days * DAY
    os.utime(path / marker, (when, when))
    os.utime(path, (when, when))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "kmatrix"
    tree(r, "work/abc/old-combo", 10)
    tree(r, "work/abc/fresh-combo", 0.1)
    tree(r, "seeds/0123456789ab", 30, marker=cache.SEED_MARKER)
    tree(r, "seeds/ba9876543210", 0.5, marker=cache.SEED_MARKER)
    (r / "ccache").mkdir()
    (r / "ccache" / "f").write_bytes(b"y" * 9000)
    return r


def test_usage_names_each_part_with_its_size(root: Path) -> None:
    parts = {p.name: p for p in cache.usage(root)}
    assert set(parts) == {"work", "seeds", "ccache"}
    assert parts["ccache"].bytes >= 9000
    assert "remade" in parts["work"].what


def test_stale_finds_trees_and_seeds_unused_for_longer(root: Path) -> None:
    found = cache.stale(root, 7 * DAY)
    assert sorted(s.path.relative_to(root).as_posix() for s in found) == \
        ["seeds/0123456789ab", "work/abc/old-combo"]
    assert all(s.bytes >= 5000 for s in found)
    assert [s.lock.name for s in found if "work" in s.path.parts] == ["old-combo.lock"]


def test_prune_removes_stale_ones_but_never_one_in_use(root: Path) -> None:
    found = cache.stale(root, 7 * DAY)
    with FileLock(str(root / "seeds" / "0123456789ab.lock")):  # a run holds this seed
        removed, busy = cache.prune(found)
    assert [r.path.name for r in removed] == ["old-combo"]
    assert [b.path.name for b in busy] == ["0123456789ab"]
    assert not (root / "work/abc/old-combo").exists()
    assert (root / "seeds/0123456789ab").exists() and (root / "work/abc/fresh-combo").exists()


def test_stale_kconfig_sessions_are_pruned_unless_a_resolve_holds_them(root: Path) -> None:
    old = tree(root, "kconfig-session/0f0f0f0f0f0f0f0f", 20, marker="conf")
    tree(root, "kconfig-session/1e1e1e1e1e1e1e1e", 0.2, marker="conf")
    found = cache.stale(root, 7 * DAY)
    assert old in [s.path for s in found]
    assert "1e1e1e1e1e1e1e1e" not in [s.path.name for s in found]
    session = next(s for s in found if s.path == old)
    assert session.lock == root / "kconfig-session" / "0f0f0f0f0f0f0f0f.lock"
    with FileLock(str(session.lock)):  # a resolve step is using it
        assert cache.prune([session]) == ([], [session])
    assert cache.prune([session]) == ([session], [])
    assert not old.exists() and (root / "kconfig-session/1e1e1e1e1e1e1e1e").is_dir()


def test_a_seed_in_use_is_touched(root: Path) -> None:
    seed = root / "seeds/0123456789ab"
    cache.touch_seed(seed)
    assert [s.path.name for s in cache.stale(root, 7 * DAY)] == ["old-combo"]


def test_cli_cache_lists_and_prunes(root: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KMATRIX_CACHE", str(root))
    assert cli.main(["cache"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{root}: ") and "work/" in out and "seeds/" in out
    assert cli.main(["cache", "--prune", "7"]) == 0
    out = capsys.readouterr().out
    assert "removed " + str(root / "work/abc/old-combo") in out
    assert "freed " in out and "in 2 tree(s)" in out
    assert cli.main(["cache", "--prune", "-1"]) == 2
    assert "--prune takes a number of days" in capsys.readouterr().err


def test_prune_also_removes_what_stopped_runs_left_behind(root: Path) -> None:
    """Issue 10, item 8: before the fix, half copies, unfinished seeds, scratch trees of dead
    runs, an interrupted image build's root filesystem and a half-unpacked source stayed on
    disk for ever (1.5 GB each)."""
    def aged(rel: str) -> Path:  # every file a day old
        path = tree(root, rel, 1)
        when = time.time() - DAY
        for child in path.iterdir():
            os.utime(child, (when, when))
        return path

    left = [aged("work/abc/.lane0.copy"), aged("seeds/deadbeef0000"),
            aged("pristine/20261128T000000Z-aaaa"), aged("resolve/20261128T000000Z-bbbb"),
            aged("rootfs-x1y2"), aged("trees/.linux-source-6.12-1-2-qwerty")]
    young = tree(root, "resolve/20261130T000000Z-cccc", 0)  # a run may still be making it
    found = {s.path: s for s in cache.leftovers(root)}
    assert set(found) == set(left)
    assert found[left[0]].lock.name == "lane0.lock"
    assert found[left[5]].lock.name == "linux-source-6.12-1-2.lock"
    with FileLock(str(found[left[1]].lock)):  # a run is making that seed right now
        removed, busy = cache.prune(list(found.values()))
    assert [b.path for b in busy] == [left[1]]
    assert all(not p.exists() for p in left if p != left[1]) and young.exists()
    assert (root / "work/abc/old-combo").exists()  # leftovers only: no age rule for trees


def test_mounts_below_reads_proc_mounts_deepest_first(tmp_path: Path) -> None:
    base = tmp_path / "rootfs-x"
    text = (f"proc {base}/rootfs/proc proc rw 0 0\n"
            f"sysfs {base}/rootfs/sys sysfs rw 0 0\n"
            f"tmpfs {base}/rootfs/sys/fs/x tmpfs rw 0 0\n"
            f"tmpfs {tmp_path}/rootfs-xy tmpfs rw 0 0\n"  # a neighbour, not below
            "proc /proc proc rw 0 0\n")
    assert cache.mounts_below(base, text) == [f"{base}/rootfs/sys/fs/x",
                                              f"{base}/rootfs/proc", f"{base}/rootfs/sys"]


@pytest.mark.skipif(os.getuid() != 0, reason="mounting needs root")
def test_removing_a_leftover_root_filesystem_never_reaches_through_its_mounts(
        tmp_path: Path) -> None:
    # what a debootstrap killed before its exit trap leaves: something of the host's mounted
    # inside its root filesystem (here a bind mount of a directory standing in for /sys)
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("the host's\n")
    leftover = tmp_path / "rootfs-abc"
    (leftover / "rootfs" / "sys").mkdir(parents=True)
    (leftover / "rootfs" / "etc").mkdir()
    subprocess.run(["mount", "--bind", str(host), str(leftover / "rootfs" / "sys")], check=True)
    try:
        cache.remove_tree(leftover)
        assert not leftover.exists()
        assert (host / "precious").read_text() == "the host's\n"
        assert cache.mounts_below(tmp_path) == []
    finally:
        subprocess.run(["umount", "-l", str(leftover / "rootfs" / "sys")], check=False,
                       capture_output=True)


def test_each_directory_of_a_tree_is_guarded_by_its_own_lock(root: Path) -> None:
    """A run builds in one directory of a tree (tree~hash) under that directory's lock (a warm
    rerun may build two of them at once), and one copying it to start another takes it too."""
    branch = tree(root, "work/abc/lane-1~0123456789ab", 10)
    found = {s.path: s for s in cache.stale(root, 7 * DAY)}
    assert found[branch].lock == root / "work/abc/lane-1~0123456789ab.lock"
    with FileLock(str(root / "work/abc/lane-1~0123456789ab.lock")):  # a run builds in it
        removed, busy = cache.prune([found[branch]])
    assert (removed, [b.path for b in busy]) == ([], [branch]) and branch.is_dir()
    with FileLock(str(root / "work/abc/lane-1.lock")):  # another directory of its tree
        removed, busy = cache.prune([found[branch]])
    assert [r.path for r in removed] == [branch] and not branch.exists()
