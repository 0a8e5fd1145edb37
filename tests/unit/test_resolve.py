"""The resolve step's bookkeeping: remembered resolutions are keyed by the tree's Kconfig files,
and duplicates point at the first combination with the same resolved config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from testhelpers import MINI_TREE

from harness import resolve


def test_fingerprint_changes_when_a_kconfig_file_changes(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(MINI_TREE, tree)
    before = resolve.kconfig_fingerprint(tree)
    assert resolve.kconfig_fingerprint(tree) == before  # stable
    kconfig = next(tree.rglob("Kconfig*"))
    kconfig.write_text(kconfig.read_text() + "\n# edited\n")
    os.utime(kconfig, ns=(1, 1))
    assert resolve.kconfig_fingerprint(tree) != before


def test_saved_resolutions_round_trip_with_duplicates(tmp_path: Path) -> None:
    found = {"a": resolve.Resolution("a", "h1"),
             "b": resolve.Resolution("b", "h1", duplicate_of="a"),
             "c": resolve.Resolution("c", "h2", holds=False, unsatisfiable="needs MIPS")}
    resolve.save(tmp_path, found)
    loaded = resolve.load(tmp_path)
    assert loaded == found
    assert loaded["b"].tree_group == "a" and loaded["a"].tree_group == "a"
    lines = resolve.report_lines(loaded)
    assert "b: resolves to the same .config as a: built once, in one tree" in lines
    assert "c: unsatisfiable, not built: needs MIPS" in lines


def test_an_unsatisfiable_combination_is_never_the_one_a_duplicate_follows() -> None:
    from harness.resolve import Resolution, mark_duplicates

    never = Resolution("cover-14", "h1", holds=False, unsatisfiable="X=n needs ...")
    same = Resolution("cover-15", "h1")
    again = Resolution("cover-16", "h1")
    mark_duplicates([never, same, again])
    assert (never.duplicate_of, same.duplicate_of, again.duplicate_of) == ("", "", "cover-15")
