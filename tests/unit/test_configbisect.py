"""Config bisect with a fake Kconfig and a fake oracle: ddmin, grouping, classification."""

from __future__ import annotations

from harness.bisect.ddmin import (
    Trial,
    Unit,
    bisect_config,
    classify,
    ddmin,
    differing,
    group_units,
    report_text,
    split,
)
from harness.bisect.trial import Observation
from harness.kconfig import Config

OPTS = [f"CONFIG_OPT{i}" for i in range(12)]


class FakeKconfig:
    """depends: SYM needs all of these =y; selects: SYM=y forces these =y."""

    def __init__(self, depends: dict[str, list[str]] | None = None,
                 selects: dict[str, list[str]] | None = None) -> None:
        self.depends, self.selects = depends or {}, selects or {}
        self.resolutions = 0

    def resolve(self, config: Config) -> Config:
        self.resolutions += 1
        out = dict(config)
        for _ in range(10):
            for sym, deps in self.depends.items():
                if out.get(sym) == "y" and any(out.get(d, "n") != "y" for d in deps):
                    out[sym] = "n"
            for sym, forced in self.selects.items():
                if out.get(sym) == "y":
                    for f in forced:
                        out[f] = "y"
        return out


class FakeOracle:
    def __init__(self, good: Config, kconfig: FakeKconfig, fails) -> None:
        self.good, self.kconfig, self.fails = good, kconfig, fails
        self.checked: list[Config] = []

    def resolve(self, config: Config) -> Config:
        return self.kconfig.resolve(config)

    def check(self, number: int, assignments: Config) -> Observation:
        self.checked.append(assignments)
        resolved = self.kconfig.resolve({**self.good, **assignments})
        lost = [s for s, v in assignments.items() if resolved.get(s, "n") != v]
        if lost:
            return Observation("config-dropped", "config", tuple(f"{s} dropped" for s in lost))
        if self.fails(resolved):
            return Observation("link-mismatch", "link", ("linked but not expected: x.o",))
        return Observation("pass")


TARGET = Observation("link-mismatch", "link")
GOOD = {s: "n" for s in OPTS}
BAD = {s: "y" for s in OPTS}


def run(fails, kconfig: FakeKconfig | None = None, good=GOOD, bad=BAD):
    kconfig = kconfig or FakeKconfig()
    oracle = FakeOracle(good, kconfig, fails)
    result = bisect_config("good", "bad", good, kconfig.resolve(bad), TARGET, oracle,
                           say=lambda _: None)
    return result, oracle


def test_split_covers_everything_in_order():
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split([1, 2], 4) == [[1], [2]]


def test_ddmin_single_culprit_among_12():
    calls = []

    def test(items):
        calls.append(items)
        return Trial.FAIL if 7 in items else Trial.PASS
    assert ddmin(list(range(12)), test) == [7]
    assert len(calls) <= 2 * 4 + 2  # about 2 log2(12)


def test_ddmin_pair_that_must_be_together():
    def test(items):
        return Trial.FAIL if {2, 9} <= set(items) else Trial.PASS
    assert sorted(ddmin(list(range(12)), test)) == [2, 9]


def test_ddmin_unresolved_is_not_a_failure():
    def test(items):
        if len(items) < 4:
            return Trial.UNRESOLVED
        return Trial.FAIL if 5 in items else Trial.PASS
    found = ddmin(list(range(12)), test)
    assert 5 in found and len(found) >= 4


def test_bisect_config_single_culprit_among_12():
    result, oracle = run(lambda r: r.get("CONFIG_OPT4") == "y")
    assert result.reproduced and result.single
    assert result.culprits == ["CONFIG_OPT4=y"]
    assert result.message == "CONFIG_OPT4=y alone makes the difference"
    assert len(result.differing) == 12 and len(result.tried) == len(oracle.checked)
    assert all(t.assignments for t in result.tried)
    assert len(result.tried) <= 12


def test_bisect_config_pair_reports_no_single_option():
    result, _ = run(lambda r: r.get("CONFIG_OPT1") == "y" and r.get("CONFIG_OPT10") == "y")
    assert result.reproduced and not result.single
    assert result.culprits == ["CONFIG_OPT1=y", "CONFIG_OPT10=y"]
    assert result.message.startswith("no single option is to blame")


def test_bisect_config_no_culprit():
    result, _ = run(lambda r: False)
    assert not result.reproduced and result.culprits == []
    assert result.message.startswith("no culprit")
    assert len(result.tried) == 1 and result.tried[0].outcome == "pass"


def test_dependencies_come_along_and_derived_are_never_requested():
    # OPT3 needs OPT2 which needs OPT1; OPT5 selects OPT6 (OPT6 has no prompt: derived).
    kc = FakeKconfig(depends={"CONFIG_OPT3": ["CONFIG_OPT2"], "CONFIG_OPT2": ["CONFIG_OPT1"],
                              "CONFIG_OPT6": ["CONFIG_OPT5"]},
                     selects={"CONFIG_OPT5": ["CONFIG_OPT6"]})
    result, oracle = run(lambda r: r.get("CONFIG_OPT3") == "y", kc)
    assert result.derived == ["CONFIG_OPT6"]
    assert ["CONFIG_OPT1", "CONFIG_OPT2", "CONFIG_OPT3"] in result.units
    assert result.single and result.culprits == ["CONFIG_OPT1=y", "CONFIG_OPT2=y", "CONFIG_OPT3=y"]
    assert "CONFIG_OPT3=y makes the difference, with the options it needs" in result.message
    assert all("CONFIG_OPT6" not in a for a in oracle.checked)
    assert "configs tried" in report_text(result)


def test_group_units_on_off_symmetry():
    kc = FakeKconfig(depends={"CONFIG_B": ["CONFIG_A"]})
    good = {"CONFIG_A": "y", "CONFIG_B": "y"}
    bad = {"CONFIG_A": "n", "CONFIG_B": "n"}
    units, derived = group_units(good, bad, differing(good, bad), kc.resolve)
    # turning A off (the bad side) drags B off: B=n cannot be undone without A=y
    assert derived == [] or derived == ["CONFIG_B"]
    assert Unit("CONFIG_A", frozenset({"CONFIG_A"})) in units


def test_classify_maps_outcomes():
    assert classify(Observation("pass"), TARGET)[0] is Trial.PASS
    assert classify(Observation("link-mismatch", "link"), TARGET)[0] is Trial.FAIL
    trial, note = classify(Observation("build-error", "build", ("make failed: x",)), TARGET)
    assert trial is Trial.UNRESOLVED and "different failure" in note
    assert classify(Observation("infra-error", "build"), TARGET)[0] is Trial.UNRESOLVED
    trial, note = classify(Observation("config-dropped", "config", ("X dropped",)), TARGET)
    assert trial is Trial.UNRESOLVED and "did not keep" in note


def test_differing_treats_absent_as_n():
    assert differing({"CONFIG_A": "y"}, {"CONFIG_B": "y"}) == {"CONFIG_A": "n", "CONFIG_B": "y"}
    assert differing({"CONFIG_S": '"x"'}, {"CONFIG_S": "x"}) == {}
