"""Shards: whole output trees dealt by expected cost, deterministically; the fingerprint."""

from __future__ import annotations

import pytest

from harness import shard
from harness.resolve import Resolution
from harness.shard import ShardSpec
from harness.verdict import InputError


def res(cid: str, tree: str = "", position: int = 0, dup: str = "", unsat: str = "") -> Resolution:
    return Resolution(cid, tree=tree, position=position, duplicate_of=dup, unsatisfiable=unsat)


# a boot tree of three (the second shares the first's kernel), five object trees, one
# unsatisfiable request (no tree at all)
RESOLUTIONS = {r.combination: r for r in [
    res("boot-a", "boot-lane-1", 0), res("boot-a2", "boot-lane-1", 1, dup="boot-a"),
    res("boot-b", "boot-lane-1", 2),
    *(res(f"obj-{i}", f"obj-{i}", 0) for i in range(5)),
    res("impossible", unsat="needs MIPS")]}
BOOTS = {"boot-a", "boot-a2", "boot-b"}
ORDER = list(RESOLUTIONS)


def test_spec_parses_k_of_n_and_says_what_is_wrong() -> None:
    assert ShardSpec.parse("2/4") == ShardSpec(2, 4) and str(ShardSpec(2, 4)) == "2/4"
    for bad in ("0/2", "3/2", "x", "1/"):
        with pytest.raises(InputError, match="--shard"):
            ShardSpec.parse(bad)


def test_a_tree_never_spans_two_shards_and_every_combination_is_in_one() -> None:
    for n in (1, 2, 3, 4, 8, 20):
        parts, loads = shard.plan(RESOLUTIONS, BOOTS, {}, n, ORDER)
        assert len(parts) == n and len(loads) == n
        flat = [c for p in parts for c in p]
        assert sorted(flat) == sorted(RESOLUTIONS)  # none missing, none twice
        boot_shards = {i for i, p in enumerate(parts) for c in p if c.startswith("boot")}
        assert len(boot_shards) == 1  # the boot tree stays together


def test_balanced_by_tier_estimates_the_boot_tree_alone_on_its_shard() -> None:
    parts, loads = shard.plan(RESOLUTIONS, BOOTS, {}, 2, ORDER)
    assert parts[0] == ["boot-a", "boot-a2", "boot-b"]  # the costliest tree first, shard 1
    assert sorted(parts[1]) == sorted(["impossible", *(f"obj-{i}" for i in range(5))])
    assert loads[0] == shard.BOOT_FIRST_COST_S + shard.DUPLICATE_COST_S * 0 + \
        shard.BOOT_NEXT_COST_S * 2


def test_known_durations_of_the_previous_run_win_over_estimates() -> None:
    known = {"obj-0": 900.0}  # it took long last night
    parts, _ = shard.plan(RESOLUTIONS, BOOTS, known, 2, ORDER)
    assert parts[0] == ["obj-0"]
    assert "obj-0" not in parts[1] and "boot-a" in parts[1]


def test_the_partition_is_deterministic_and_ties_go_by_name() -> None:
    groups = {"b": ["b"], "a": ["a"], "c": ["c"], "d": ["d"]}
    costs = dict.fromkeys(groups, 10.0)
    first = shard.partition(groups, costs, 2)
    assert first == shard.partition(dict(reversed(groups.items())), costs, 2)
    assert first[0] == [["a", "c"], ["b", "d"]]


def test_more_shards_than_trees_leaves_some_empty() -> None:
    parts, _ = shard.plan({"x": res("x", "x")}, set(), {}, 3, ["x"])
    assert parts == [["x"], [], []]


def test_fingerprint_names_the_part_that_differs(tmp_path) -> None:
    from harness.matrix import load_matrix

    path = tmp_path / "m.yaml"
    path.write_text("kernel: {source: /k, arch: x86_64}\nbase: tinyconfig\n"
                    "axes: {CONFIG_A: [y, n]}\n")
    matrix = load_matrix(path)
    kernel = {"version": "6.12.1", "origin": "debian:linux-source-6.12", "commit": None}
    a = shard.fingerprint(matrix, kernel, "img:1", {"gcc": "12"}, [], True)
    assert a == shard.fingerprint(matrix, kernel, "img:1", {"gcc": "12"}, [], True)
    assert shard.fingerprint_difference(a, a) == ""
    b = shard.fingerprint(matrix, kernel, "img:1", {"gcc": "13"}, [], True)
    assert shard.fingerprint_difference(a, b).startswith("image: img:1")
    c = shard.fingerprint(matrix, {**kernel, "commit": "abcdef1234567890"}, "img:1",
                          {"gcc": "12"}, [], True)
    assert "commit abcdef123456" in shard.fingerprint_difference(a, c)
    path.write_text(path.read_text() + "# a comment changes the file\n")
    d = shard.fingerprint(load_matrix(path), kernel, "img:1", {"gcc": "12"}, [], True)
    assert shard.fingerprint_difference(a, d).startswith("matrix: m.yaml")
    assert a["digest"] != d["digest"]
