"""The core budget and the time estimates, with fakes: who gets how many make jobs, in which
order the trees start, and what the progress line says is left (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from harness import estimate
from harness.cores import BUDGET_FILE, Claim, CoreBudget, jobs_for
from harness.pytest_plugin import Progress
from harness.resolve import Resolution
from harness.runstate import owner_id


def other(jobs: int, reserves: int, long: bool = False) -> Claim:
    return Claim("elsewhere:1", jobs, reserves, long)


def test_a_bootable_kernel_takes_every_core_beside_the_object_tier() -> None:
    # 2 cores, 2 workers: the long build runs -j2 and reserves one core; the object tier -j1
    long = jobs_for(2, 2, [other(1, 1)], long=True)
    assert (long.jobs, long.reserves) == (2, 1)
    short = jobs_for(2, 2, [long], long=False, queued=10)
    assert (short.jobs, short.reserves) == (1, 1)


def test_short_builds_share_the_cores_and_the_last_ones_take_them_all() -> None:
    assert jobs_for(2, 2, [], long=False, queued=10).jobs == 1  # the other worker starts too
    assert jobs_for(2, 2, [], long=False, queued=0).jobs == 2  # nobody else will
    assert jobs_for(2, 2, [], long=False).jobs == 1  # unknown: plenty queued
    assert jobs_for(8, 8, [], long=False, queued=100).jobs == 1
    assert jobs_for(8, 4, [other(2, 2)], long=False, queued=0).jobs == 6
    assert jobs_for(2, 2, [other(2, 2), other(2, 2)], long=False).jobs == 1  # never below one
    assert jobs_for(8, 2, [], long=True).jobs == 8


def test_the_budget_file_holds_the_running_claims_and_forgets_dead_workers(tmp_path: Path) -> None:
    budget = CoreBudget(tmp_path, cores=2, workers=2)
    (tmp_path / BUDGET_FILE).write_text(json.dumps(
        {"claims": [{"owner": "nohost-never:1", "jobs": 2, "reserves": 2, "long": True},
                    {"owner": f"{owner_id().rsplit(':', 1)[0]}:999999999", "jobs": 2,
                     "reserves": 2, "long": False}], "queued": 5}))
    with budget.claim(long=False) as mine:
        # the claim of another host counts (it cannot be checked); the dead local pid does not
        assert mine.jobs == 1  # the other host's long build reserves both cores
        held = json.loads((tmp_path / BUDGET_FILE).read_text())
        assert [c["owner"] for c in held["claims"]] == ["nohost-never:1", owner_id()]
    after = json.loads((tmp_path / BUDGET_FILE).read_text())
    assert owner_id() not in [c["owner"] for c in after["claims"]]
    assert after["queued"] == 5
    (tmp_path / BUDGET_FILE).unlink()
    budget.set_queued(0)
    with budget.claim(long=False) as last:
        assert last.jobs == 2  # nothing queued, nobody running: the last build takes both
    with budget.claim(long=True) as long:
        assert long.jobs == 2


def test_a_boot_holds_its_one_core_so_a_build_beside_it_takes_the_other(tmp_path: Path) -> None:
    budget = CoreBudget(tmp_path, cores=2, workers=2)
    budget.set_queued(0)
    with budget.hold(1) as boot:
        held = json.loads((tmp_path / BUDGET_FILE).read_text())["claims"]
        assert held == [{"owner": owner_id(), "jobs": 1, "reserves": 1, "long": False}]
        # the last object build, started by the other worker while the boot runs: -j1, not -j2
        assert jobs_for(2, 2, [boot], long=False, queued=0).jobs == 1
    assert json.loads((tmp_path / BUDGET_FILE).read_text())["claims"] == []
    with budget.claim(long=False) as last:
        assert last.jobs == 2  # the boot gave its core back


def test_a_damaged_budget_file_counts_nobody(tmp_path: Path) -> None:
    (tmp_path / BUDGET_FILE).write_text("{not json")
    with CoreBudget(tmp_path, cores=4, workers=2).claim(long=False) as mine:
        assert mine.jobs == 2


def resolutions() -> dict[str, Resolution]:
    return {"obj-a": Resolution("obj-a", tree="obj-a"),
            "obj-b": Resolution("obj-b", tree="obj-b"),
            "boot-1": Resolution("boot-1", tree="boot", position=0),
            "boot-2": Resolution("boot-2", tree="boot", position=1),
            "never": Resolution("never", holds=False, unsatisfiable="X needs Y")}


def test_each_tier_has_its_own_cost_and_known_durations_win() -> None:
    from harness.shard import BOOT_FIRST_COST_S, BOOT_NEXT_COST_S, OBJECT_COST_S

    costs = estimate.expected(resolutions(), {"boot-1", "boot-2"}, {})
    assert costs["boot-1"] == BOOT_FIRST_COST_S and costs["boot-2"] == BOOT_NEXT_COST_S
    assert costs["obj-a"] == OBJECT_COST_S and costs["never"] < OBJECT_COST_S
    known = estimate.expected(resolutions(), {"boot-1", "boot-2"}, {"boot-1": 123.0})
    assert known["boot-1"] == 123.0


def test_a_tree_that_already_holds_its_config_costs_a_no_op_make() -> None:
    """A rerun after a cold run: the last durations are the cold build's (minutes for the
    bootable kernel), but each tree already holds its .config: a warm rerun's first line said
    "about 106 s left" for a run of 23 s."""
    from harness.shard import OBJECT_COST_S, WARM_BOOT_COST_S, WARM_OBJECT_COST_S

    last = {"boot-1": 198.0, "boot-2": 13.0, "obj-a": 34.0, "obj-b": 1.0}
    warm = estimate.expected(resolutions(), {"boot-1", "boot-2"}, last,
                             {"boot-1", "boot-2", "obj-a", "obj-b", "never"})
    assert warm["boot-1"] == warm["boot-2"] == WARM_BOOT_COST_S
    assert warm["obj-a"] == WARM_OBJECT_COST_S
    assert warm["obj-b"] == 1.0  # a warm duration known is kept
    assert warm["never"] < WARM_OBJECT_COST_S  # not built at all
    cold = estimate.expected(resolutions(), {"boot-1", "boot-2"}, last, {"obj-b"})
    assert cold["boot-1"] == 198.0 and cold["obj-a"] == 34.0
    assert estimate.expected(resolutions(), set(), {}, {"obj-b"})["obj-a"] == OBJECT_COST_S


def test_the_costliest_tree_starts_first(tmp_path: Path) -> None:
    found = resolutions()
    est = estimate.Estimates(estimate.expected(found, {"boot-1", "boot-2"}, {}),
                             {c: r.tree_group for c, r in found.items()})
    est.save(tmp_path)
    rank = estimate.tree_rank(estimate.Estimates.load(tmp_path))
    assert min(rank, key=rank.__getitem__) == "boot"
    assert estimate.Estimates.load(tmp_path / "nowhere").seconds == {}


def test_time_left_counts_a_bootable_kernel_as_minutes_not_as_an_object() -> None:
    """The issue's case: three object combinations done in seconds, the kernel still building:
    a mean of the finished ones said "about 18 s left"; the tier's cost says minutes."""
    found = {**{f"obj-{i}": Resolution(f"obj-{i}", tree=f"obj-{i}") for i in range(3)},
             "boot-1": Resolution("boot-1", tree="boot")}
    est = estimate.Estimates(estimate.expected(found, {"boot-1"}, {}),
                             {c: r.tree_group for c, r in found.items()})
    now = [0.0]
    progress = Progress(2, est, clock=lambda: now[0])
    progress.total, progress.ids = 4, list(found)
    progress.started("m.yaml::boot-1@boot")
    for i in range(3):
        progress.started(f"m.yaml::obj-{i}")
        now[0] += 10
        line = progress.finished(f"m.yaml::obj-{i}", "pass", 10.0)
    assert "[3/4 done, 1 running, 0 queued] obj-2 pass in 10 s" in line
    assert progress.left() >= est.seconds["boot-1"] - now[0]
    without = Progress(2)
    without.total = 4
    without.started("m.yaml::boot-1@boot")
    for i in range(3):
        without.started(f"m.yaml::obj-{i}")
        without.finished(f"m.yaml::obj-{i}", "pass", 5.0)
    assert without.left() < 10  # the old mean: what the issue saw


def test_time_left_spreads_queued_work_over_the_workers() -> None:
    est = estimate.Estimates({f"o{i}": 10.0 for i in range(8)}, {f"o{i}": f"o{i}" for i in range(8)})
    assert estimate.time_left(est, [f"o{i}" for i in range(8)], {}, 2) == 40.0
    assert estimate.time_left(est, [], {"o1": 4.0}, 2) == 6.0
    assert estimate.time_left(est, [], {"o1": 50.0}, 2) == 1.0  # overdue: never zero
    assert estimate.time_left(est, [], {}, 2) == 0.0


def test_the_disk_budget_prunes_the_least_recently_used_trees_but_never_one_in_use(
        tmp_path: Path) -> None:
    import os

    from filelock import FileLock

    from harness import cache

    work = tmp_path / "work" / "key"
    for name in ["old", "older-but-busy", "recent", "newest"]:
        tree = work / name
        tree.mkdir(parents=True)
        (tree / ".config").write_bytes(b"x" * 40000)
        stamp = {"old": 100, "older-but-busy": 50, "recent": 300, "newest": 400}[name]
        os.utime(tree / ".config", (stamp, stamp))
    size = cache.note_size(work / "old")
    with FileLock(str(work / "older-but-busy.lock")):
        removed = cache.keep_under(work, 2 * size, just_used=work / "newest")
    assert [r.path.name for r in removed] == ["old"]  # the busy one is skipped, not waited for
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == \
        ["newest", "older-but-busy", "recent"]
    assert not (work / "old.size").exists()
    removed = cache.keep_under(work, 2 * size)
    assert [r.path.name for r in removed] == ["older-but-busy"]
    assert cache.keep_under(work, 0) and (work / "newest").is_dir()  # the last one stays


def test_the_disk_budget_is_read_in_gib(monkeypatch) -> None:
    import pytest

    from harness.session import disk_budget
    from harness.verdict import InputError

    monkeypatch.setenv("KMATRIX_DISK_BUDGET", "1.5")
    assert disk_budget() == 3 << 29
    monkeypatch.setenv("KMATRIX_DISK_BUDGET", "lots")
    with pytest.raises(InputError):
        disk_budget()
    monkeypatch.delenv("KMATRIX_DISK_BUDGET")
    assert disk_budget() == 0


def test_a_loaded_machine_stretches_what_is_left_by_the_pace_of_what_finished() -> None:
    est = estimate.Estimates({"a": 10.0, "b": 10.0, "k": 400.0}, {"a": "a", "b": "b", "k": "k"})
    assert estimate.pace(est, {}) == 1.0
    slow = estimate.pace(est, {"a": 40.0})
    assert slow == 4.0 and estimate.pace(est, {"a": 1000.0}) == 10.0
    assert estimate.time_left(est, ["k"], {}, 2, slow) == 1600.0
    assert estimate.time_left(est, ["k"], {}, 2) == 400.0


def test_a_seed_made_by_a_combination_is_expected_not_taken_for_a_slow_machine(
        tmp_path: Path) -> None:
    """The run made the arm64 seed only up to its base config: whichever of its two
    combinations comes first makes the rest (33 s here, against 10 s for an object
    combination). Its expected cost is spread over both, so the pace of what finished stays
    near 1 and the time left does not jump tenfold (what the first cold run with lazy seeds
    showed: "about 1010 s left" with 170 s to go)."""
    from harness import resolve, shard

    found = {c: Resolution(c, tree=c) for c in ("arm-on", "arm-off", "x-1", "x-2")}
    resolve.save(tmp_path, found)
    est = estimate.prepare(tmp_path, set(), {"arm64-gcc-12": ["arm-on", "arm-off"]})
    half = shard.SEED_REST_COST_S / 2
    assert est.seconds == {"arm-on": shard.OBJECT_COST_S + half,
                           "arm-off": shard.OBJECT_COST_S + half,
                           "x-1": shard.OBJECT_COST_S, "x-2": shard.OBJECT_COST_S}
    first_made_it = {"arm-off": 33.0, "arm-on": 11.0, "x-1": 10.0}
    assert 0.7 < estimate.pace(est, first_made_it) < 1.3
    without = estimate.Estimates({c: shard.OBJECT_COST_S for c in found})
    assert estimate.pace(without, first_made_it) >= 1.8
