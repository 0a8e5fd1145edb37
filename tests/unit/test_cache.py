"""kmatrix's cache: sizes, and pruning output trees and seeds nobody used for a while."""

from __future__ import annotations

import os
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
