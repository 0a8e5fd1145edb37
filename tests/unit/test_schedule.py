"""Which tree builds which combination, and in what order (harness/schedule.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import resolve, schedule
from harness.schedule import Slot

# deltas from the base, as the resolve step finds them
DUPS = {"CONFIG_MODULE_DEBUG": "y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}
DEBUG = {"CONFIG_MODULE_DEBUG": "y"}
STATS = {"CONFIG_MODULE_DEBUG": "y", "CONFIG_MODULE_STATS": "y"}
DUPS_STATS = {**DUPS, "CONFIG_MODULE_STATS": "y"}
LIVEPATCH = {"CONFIG_FTRACE": "y", "CONFIG_KALLSYMS": "y", "CONFIG_LIVEPATCH": "y",
             "CONFIG_SYSFS": "y"}
KALLSYMS = {"CONFIG_KALLSYMS": "y"}


def test_distance_counts_options_that_differ_either_way() -> None:
    assert schedule.distance({}, {}) == 0
    assert schedule.distance(DUPS, DUPS) == 0
    assert schedule.distance({}, DUPS) == 2
    assert schedule.distance(DUPS, STATS) == 2  # DUPS gone, STATS come
    assert schedule.distance({"CONFIG_LOG_BUF_SHIFT": "17"}, {"CONFIG_LOG_BUF_SHIFT": "12"}) == 1


def test_nearest_path_starts_near_the_seed_and_steps_to_the_closest() -> None:
    deltas = {"livepatch": LIVEPATCH, "dups-stats": DUPS_STATS, "debug": DEBUG,
              "kallsyms": KALLSYMS, "dups": DUPS}
    assert schedule.nearest_path(deltas) == ["debug", "dups", "dups-stats", "kallsyms",
                                             "livepatch"]


def test_nearest_path_breaks_ties_by_matrix_order() -> None:
    assert schedule.nearest_path({"b": DUPS, "a": STATS}) == ["b", "a"]
    assert schedule.nearest_path({"a": STATS, "b": DUPS}) == ["a", "b"]


def test_the_ordered_path_changes_fewer_options_than_the_matrix_order() -> None:
    deltas = {"dups": DUPS, "livepatch": LIVEPATCH, "dups-stats": DUPS_STATS,
              "kallsyms": KALLSYMS, "debug": DEBUG}
    path = schedule.nearest_path(deltas)
    assert schedule.transitions(path, deltas) < schedule.transitions(list(deltas), deltas)


@pytest.mark.parametrize("n,pieces,sizes", [(7, 2, [4, 3]), (2, 3, [1, 1]), (5, 1, [5]),
                                            (0, 2, [])])
def test_cut_makes_contiguous_nearly_equal_pieces(n: int, pieces: int, sizes: list[int]) -> None:
    path = [f"c{i}" for i in range(n)]
    out = schedule.cut(path, pieces)
    assert [len(p) for p in out] == sizes
    assert [c for p in out for c in p] == path


def test_object_lanes_one_per_worker_without_boots() -> None:
    deltas = {"debug": DEBUG, "dups": DUPS, "stats": STATS, "kallsyms": KALLSYMS}
    slots = schedule.plan(deltas, set(), workers=2, policy="lanes", tag="abc-")
    assert sequences(slots) == {"abc-lane-1": ["debug", "dups"],
                                "abc-lane-2": ["stats", "kallsyms"]}


def test_a_boot_lane_takes_a_worker_beside_the_object_lane() -> None:
    deltas = {"debug": DEBUG, "dups": DUPS, "stats": STATS, "kallsyms": KALLSYMS,
              "boot-on": {**DUPS, "CONFIG_PRINTK": "y"}, "boot-off": {**DEBUG, "CONFIG_PRINTK": "y"}}
    slots = schedule.plan(deltas, {"boot-on", "boot-off"}, workers=2, policy="lanes",
                          tag="abc-")
    assert sequences(slots) == {"abc-lane-1": ["debug", "dups", "stats", "kallsyms"],
                                "abc-boot-lane-1": ["boot-off", "boot-on"]}  # nearest first
    one = schedule.plan(deltas, {"boot-on", "boot-off"}, workers=1, policy="lanes")
    assert set(sequences(one)) == {"lane-1", "boot-lane-1"}


def sequences(slots: dict[str, Slot]) -> dict[str, list[str]]:
    by_tree: dict[str, list[str]] = {}
    for combo, slot in sorted(slots.items(), key=lambda kv: kv[1].position):
        by_tree.setdefault(slot.tree, []).append(combo)
    return by_tree


def test_duplicates_follow_their_first_in_its_tree_under_both_policies() -> None:
    deltas = {"a": DUPS, "b": STATS, "c": KALLSYMS, "a-again": DUPS}
    for policy in schedule.POLICIES:
        slots = schedule.plan(deltas, set(), workers=2, policy=policy, same_as={"a-again": "a"})
        assert slots["a-again"].tree == slots["a"].tree
        assert slots["a-again"].position == slots["a"].position + 1


def test_own_policy_gives_each_combination_its_own_tree() -> None:
    slots = schedule.plan({"a": DUPS, "b": STATS}, {"b"}, workers=2, policy="own")
    assert slots == {"a": Slot("a", 0), "b": Slot("b", 0)}


def test_many_distinct_boot_configs_open_more_boot_lanes() -> None:
    deltas = {f"boot{i}": {f"CONFIG_OPT{i}": "y"} for i in range(9)}
    slots = schedule.plan(deltas, set(deltas), workers=2, policy="lanes")
    assert {s.tree for s in slots.values()} == {"boot-lane-1", "boot-lane-2"}
    assert {s.tree for s in schedule.plan(deltas, set(deltas), workers=1,
                                          policy="lanes").values()} == {"boot-lane-1"}


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="nearest, lanes, own"):
        schedule.plan({"a": DUPS}, set(), 1, policy="shared")


def test_delta_from_base_lists_what_resolve_changed() -> None:
    base = {"CONFIG_MODULES": "n", "CONFIG_LOG_BUF_SHIFT": "17", "CONFIG_PRINTK": "y"}
    resolved = {"CONFIG_MODULES": "y", "CONFIG_LOG_BUF_SHIFT": "17", "CONFIG_MODULE_DEBUG": "y"}
    assert resolve.delta_from(base, resolved) == {"CONFIG_MODULES": "y",
                                                  "CONFIG_MODULE_DEBUG": "y",
                                                  "CONFIG_PRINTK": "n"}


def test_place_in_trees_skips_unsatisfiable_and_tags_lanes_by_seed(tmp_path: Path) -> None:
    found = [resolve.Resolution("a", "h1", delta=DUPS),
             resolve.Resolution("b", "h1", delta=DUPS, duplicate_of="a"),
             resolve.Resolution("c", "h2", delta=STATS),
             resolve.Resolution("x", "h3", holds=False, unsatisfiable="needs MIPS")]
    settings = SimpleNamespace(seed=str(tmp_path / "seeds" / "0123456789ab"), workers=1,
                               trees="lanes", shard={})
    resolve.place_in_trees(settings, found, set(), {})
    assert [(r.tree, r.position) for r in found] == [
        ("01234567-lane-1", 0), ("01234567-lane-1", 1), ("01234567-lane-1", 2), ("", 0)]
    assert found[1].tree_group == found[0].tree_group
    assert found[3].tree_group == "x"


def test_tree_lines_show_each_shared_sequence() -> None:
    found = {"a": resolve.Resolution("a", delta=DUPS, tree="lane-1", position=1),
             "b": resolve.Resolution("b", delta=DEBUG, tree="lane-1", position=0),
             "c": resolve.Resolution("c", delta=STATS, tree="lane-2", position=0)}
    assert resolve.tree_lines(found) == ["tree lane-1: b -> a (1 option changes after the first)"]


def test_fewer_trees_than_workers_give_the_cores_to_make(tmp_path: Path, monkeypatch) -> None:
    from harness import session
    from harness.pipeline import RunSettings

    monkeypatch.setattr(session.os, "cpu_count", lambda: 2)
    settings = RunSettings("r", "m.yaml", str(tmp_path), str(tmp_path), "/t", {}, "img",
                           jobs=1, workers=2, cpus_per_build=1.0)
    resolve.save(tmp_path, {"on": resolve.Resolution("on", tree="boot-lane-1"),
                            "trace": resolve.Resolution("trace", tree="boot-lane-1", position=1),
                            "x": resolve.Resolution("x", unsatisfiable="needs MIPS")})
    said: list[str] = []
    session.fit_to_trees(settings, session.Options(Path("m.yaml"), tmp_path), said.append)
    assert (settings.workers, settings.jobs) == (1, 2)
    assert RunSettings.load(tmp_path).jobs == 2
    assert said == ["kmatrix: 1 output tree(s): 1 in parallel x make -j2"]
    pinned = RunSettings("r", "m.yaml", str(tmp_path), str(tmp_path), "/t", {}, "img",
                         jobs=1, workers=2)
    session.fit_to_trees(pinned, session.Options(Path("m.yaml"), tmp_path, workers=2, jobs=1),
                         said.append)
    assert (pinned.workers, pinned.jobs) == (2, 1)


def test_warm_directories_of_one_tree_keep_their_workers(tmp_path: Path, monkeypatch) -> None:
    """A warm rerun schedules each warm directory by itself: one tree whose two configs are
    both built already is two things to run at once, not one tree at make -j2."""
    from harness import session
    from harness.pipeline import RunSettings

    monkeypatch.setattr(session.os, "cpu_count", lambda: 2)
    found = {"on": resolve.Resolution("on", tree="boot-lane-1"),
             "off": resolve.Resolution("off", tree="boot-lane-1", position=1)}
    resolve.save(tmp_path, found)
    said: list[str] = []
    warm = RunSettings("r", "m.yaml", str(tmp_path), str(tmp_path), "/t", {}, "img",
                       jobs=1, workers=2, cpus_per_build=1.0)
    session.fit_to_trees(warm, session.Options(Path("m.yaml"), tmp_path), said.append,
                         {"on": "boot-lane-1", "off": "boot-lane-1~0123456789ab"})
    assert (warm.workers, warm.jobs, said) == (2, 1, [])
    half = RunSettings("r", "m.yaml", str(tmp_path), str(tmp_path), "/t", {}, "img",
                       jobs=1, workers=2, cpus_per_build=1.0)
    session.fit_to_trees(half, session.Options(Path("m.yaml"), tmp_path), said.append,
                         {"on": "boot-lane-1"})  # "off" is built in turn after its tree
    assert (half.workers, half.jobs) == (2, 1)
    cold = RunSettings("r", "m.yaml", str(tmp_path), str(tmp_path), "/t", {}, "img",
                       jobs=1, workers=2, cpus_per_build=1.0)
    session.fit_to_trees(cold, session.Options(Path("m.yaml"), tmp_path), said.append, {})
    assert (cold.workers, cold.jobs) == (1, 2)


# the seed's own delta (base + common config): where every new tree starts
SEED = {"CONFIG_MODULES": "y", "CONFIG_DEBUG_FS": "y"}


def on_seed(delta: dict[str, str]) -> dict[str, str]:
    return {**SEED, **delta}


def test_nearest_gives_seed_plus_one_option_combinations_their_own_trees() -> None:
    """Each is one or two options from the seed and further from each other: a chain would pay
    for leaving the last one's options too."""
    deltas = {"dups": on_seed(DUPS), "kallsyms": on_seed(KALLSYMS), "stats": on_seed(STATS),
              "livepatch": on_seed(LIVEPATCH)}
    slots = schedule.plan(deltas, set(), workers=2, seed=SEED)
    # livepatch needs KALLSYMS too: 3 options from kallsyms' tree, 4 from the seed; following
    # would pay 3 on every rerun to save 1 once
    assert slots == {c: Slot(c, 0) for c in deltas}


def test_nearest_follows_a_tree_much_nearer_than_the_seed() -> None:
    big = {f"CONFIG_DEP{i}": "y" for i in range(6)}  # what both need, not in the seed
    deltas = {"a": on_seed({**big, **DUPS}), "b": on_seed({**big, **STATS}),
              "c": on_seed(KALLSYMS)}
    slots = schedule.plan(deltas, set(), workers=2, seed=SEED)
    assert sequences(slots) == {"a": ["a", "b"], "c": ["c"]}  # a-b: 2 options, seed-b: 8


def test_nearest_chains_combinations_close_to_each_other_and_far_from_the_seed() -> None:
    boot = {f"CONFIG_BOOT{i}": "y" for i in range(40)}  # the boot fragment and what it pulls in
    deltas = {"kallsyms": on_seed(KALLSYMS),
              "boot-on": on_seed({**boot, **DUPS}), "boot-off": on_seed({**boot, **DEBUG}),
              "boot-stats": on_seed({**boot, **STATS})}
    slots = schedule.plan(deltas, {"boot-on", "boot-off", "boot-stats"}, workers=2, seed=SEED,
                          same_as={})
    assert sequences(slots) == {"kallsyms": ["kallsyms"],
                                "boot-off": ["boot-off", "boot-on", "boot-stats"]}


def test_nearest_caps_a_chain_so_workers_share_a_big_tier() -> None:
    boot = {f"CONFIG_BOOT{i}": "y" for i in range(40)}
    deltas = {f"b{i}": on_seed({**boot, f"CONFIG_OPT{i}": "y"}) for i in range(10)}
    trees = sequences(schedule.plan(deltas, set(deltas), workers=2, seed=SEED))
    assert sorted(len(t) for t in trees.values()) == [5, 5]


def test_nearest_path_and_transitions_count_from_the_seed() -> None:
    deltas = {"far": on_seed(LIVEPATCH), "near": on_seed(DEBUG)}
    assert schedule.nearest_path(deltas, SEED) == ["near", "far"]
    assert schedule.transitions(["near"], deltas, SEED) == 1
    assert schedule.transitions(["near"], deltas) == 3


def test_each_config_of_a_tree_keeps_a_directory_started_from_the_one_before() -> None:
    members = [("boot-off", "aaaa1111aaaa1111", True), ("boot-on", "bbbb2222bbbb2222", True),
               ("boot-on-cmdline", "bbbb2222bbbb2222", True),  # a duplicate: same directory
               ("dropped", "cccc3333cccc3333", False),  # never builds: from the seed
               ("boot-trace", "dddd4444dddd4444", True), ("boot-off-again", "aaaa1111aaaa1111",
                                                          True)]
    dirs = schedule.branch_dirs("boot-lane", members)
    assert dirs == {
        "boot-off": ("boot-lane", ""),
        "boot-on": ("boot-lane~bbbb2222bbbb", "boot-lane"),
        "boot-on-cmdline": ("boot-lane~bbbb2222bbbb", ""),
        "dropped": ("boot-lane~cccc3333cccc", ""),
        "boot-trace": ("boot-lane~dddd4444dddd", "boot-lane~bbbb2222bbbb"),
        # its directory exists already (boot-off made it); were it gone, the one before
        "boot-off-again": ("boot-lane", "boot-lane~dddd4444dddd"),
    }
    assert schedule.branch_dirs("t", [("only", "", True)]) == {"only": ("t", "")}
    assert all(schedule.BRANCH not in c for c in "abc-._+0")  # never part of an id


def test_a_mostly_warm_run_gets_one_worker_more_than_cores(tmp_path: Path, monkeypatch) -> None:
    """No-op makes wait on the container engine for much of their time: with at least half
    the combinations warm and more of them than cores, one worker more keeps the cores busy;
    not when --workers or --jobs is given, not for a mostly cold run, not without memory."""
    from harness import session
    from harness.pipeline import RunSettings

    monkeypatch.setattr(session.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(session, "mem_available", lambda: 16 << 30)
    resolve.save(tmp_path, {c: resolve.Resolution(c, tree=f"t-{c}") for c in "abcd"} |
                 {"x": resolve.Resolution("x", unsatisfiable="needs MIPS")})
    warm = {c: f"t-{c}" for c in "abc"}

    def fitted(opts: session.Options, warm: dict[str, str]) -> tuple[RunSettings, list[str]]:
        settings = RunSettings("r", "m.yaml", str(tmp_path), str(tmp_path), "/t", {}, "img",
                               jobs=1, workers=2, cpus_per_build=1.0, mem_bytes=4 << 30)
        said: list[str] = []
        session.fit_to_trees(settings, opts, said.append, warm)
        return settings, said

    plain = session.Options(Path("m.yaml"), tmp_path)
    settings, said = fitted(plain, warm)
    assert (settings.workers, settings.jobs, settings.cpus_per_build) == (3, 1, 1.0)
    assert RunSettings.load(tmp_path).workers == 3
    assert said == ["kmatrix: 3 of 4 combinations built already (no-op makes that mostly wait on "
                    "the container engine): 3 in parallel x make -j1 on 2 cores"]
    assert fitted(plain, {"a": "t-a"})[0].workers == 2  # mostly cold
    assert fitted(session.Options(Path("m.yaml"), tmp_path, workers=2), warm)[0].workers == 2
    assert fitted(session.Options(Path("m.yaml"), tmp_path, jobs=1), warm)[0].workers == 2
    monkeypatch.setattr(session, "mem_available", lambda: 3 << 30)  # two builds' worth
    assert fitted(plain, warm)[0].workers == 2
