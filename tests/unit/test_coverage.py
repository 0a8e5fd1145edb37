"""Coverage after Kconfig: t-tuples of the resolved values (not the request), unsatisfiable
tuples apart with their reason, and cover combinations added until every satisfiable tuple is
covered (resolution played by a fake that follows a few Kconfig-like rules)."""

from __future__ import annotations

from pathlib import Path

from harness import cover, coverage
from harness.matrix import Combination, Matrix
from harness.resolve import Resolution
from harness.sample import Axis, Impossible, SampleSpec, covering_rows

AXES = [Axis("CONFIG_A", ("y", "n")), Axis("CONFIG_B", ("y", "n")), Axis("CONFIG_C", ("y", "n"))]
BASE = {"CONFIG_A": "n", "CONFIG_B": "n"}  # C absent: n


def test_resolved_values_come_from_the_delta_else_the_base() -> None:
    assert coverage.axis_values(BASE, {"CONFIG_A": "y", "CONFIG_C": "m"}, AXES) == \
        {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": "m"}


def test_coverage_counts_resolved_rows_and_sets_unsatisfiable_apart(tmp_path: Path) -> None:
    rows = {"r1": {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "y"},
            "r2": {"CONFIG_A": "n", "CONFIG_B": "n", "CONFIG_C": "n"}}
    unsat = {(("CONFIG_A", "n"), ("CONFIG_C", "y")): "C=y needs A [=n]"}
    cov = coverage.measure(AXES, 2, rows, unsat, strategy="pairwise")
    assert cov.total == 12 and cov.covered == 6 and cov.satisfiable == 11
    assert round(cov.percent, 1) == 54.5
    assert [u.values for u in cov.unsatisfiable] == [[["CONFIG_A", "n"], ["CONFIG_C", "y"]]]
    assert len(cov.uncovered) == 5
    cov.save(tmp_path)
    text = (tmp_path / "coverage.md").read_text()
    assert "6/11 satisfiable 2-tuples (54.5 %)" in text
    assert "- A=n C=y: C=y needs A [=n]" in text
    assert coverage.Coverage.load(tmp_path) == cov


class FakeKconfig:
    """Resolution by rules: C=y needs A=y (so A=n C=y is impossible); B=y with repair only
    (without it B is dropped); everything else holds as asked."""

    def __init__(self, never: dict[str, str] | None = None) -> None:
        self.resolved: list[str] = []
        self.asked: list[tuple] = []
        self.never = never or {}  # values that can never hold

    def resolve_one(self, combo: Combination) -> Resolution:
        want = dict(combo.values)
        res = Resolution(combo.id)
        self.asked.append(combo.values)
        for sym, value in self.never.items():
            if want.get(sym) == value:
                res.holds, res.unsatisfiable = False, f"{sym}={value} never holds"
                return res
        if want.get("CONFIG_C") == "y" and want.get("CONFIG_A") == "n":
            res.holds, res.unsatisfiable = False, "C=y needs A=y, but A=n is requested"
            return res
        got = dict(want)
        if want.get("CONFIG_C") == "y":
            got["CONFIG_A"] = "y"
        if want.get("CONFIG_B") == "y" and not combo.repair:
            got["CONFIG_B"] = "n"
            res.holds, res.why = False, ["why: B=y needs D [=n]"]
        res.delta = {k: v for k, v in got.items() if BASE.get(k, "n") != v}
        return res

    def resolve_all(self, matrix: Matrix, known: dict[str, Resolution]) -> dict[str, Resolution]:
        out = {}
        for combo in matrix.combinations:
            if combo.id not in known:
                self.resolved.append(combo.id)
            out[combo.id] = known.get(combo.id) or self.resolve_one(combo)
        return out


def matrix_of(rows: list, repair: bool) -> Matrix:
    from harness import arch

    combos = [Combination(f"pairwise-{i + 1:02d}", row, 3, None, repair)
              for i, row in enumerate(rows)]
    return Matrix(Path("m.yaml"), "debian", arch.default(), "tinyconfig", (), (), combos,
                  sample=SampleSpec("pairwise", 2, 0), axes=list(AXES), axes_line=3)


def test_cover_combinations_close_every_satisfiable_gap() -> None:
    rows = covering_rows(AXES, 2, 0, [])
    matrix = matrix_of(rows, repair=False)  # B=y drops without repair: its pairs are missed
    fake = FakeKconfig()
    found = fake.resolve_all(matrix, {})
    found, cov = cover.complete(matrix, BASE, found, [], fake.resolve_all)
    assert cov.percent == 100.0, cov.markdown()
    assert [u.values for u in cov.unsatisfiable] == [[["CONFIG_A", "n"], ["CONFIG_C", "y"]]]
    assert cov.added and all(c.startswith("cover-") for c in cov.added)
    ids = [c.id for c in matrix.combinations]
    assert set(cov.added) <= set(ids)  # added combinations are built
    assert set(found) == set(ids)  # ... and only those: the impossible one is not
    assert all(c.repair for c in matrix.combinations if c.id.startswith("cover-"))


def test_a_complete_sample_adds_nothing() -> None:
    rows = covering_rows(AXES, 2, 0, [], [Impossible((("CONFIG_A", "n"), ("CONFIG_C", "y")), "x")])
    matrix = matrix_of(rows, repair=True)
    fake = FakeKconfig()
    found, cov = cover.complete(matrix, BASE, fake.resolve_all(matrix, {}),
                                [Impossible((("CONFIG_A", "n"), ("CONFIG_C", "y")), "x")],
                                fake.resolve_all)
    # the planner's doubt is checked by Kconfig (alone), then listed with Kconfig's reason
    assert cov.percent == 100.0 and cov.added == []
    assert cov.unsatisfiable[0].reason == "C=y needs A=y, but A=n is requested"


def test_groups_merge_compatible_tuples_and_keep_doubted_ones_alone() -> None:
    ab = (("CONFIG_A", "y"), ("CONFIG_B", "y"))
    bc = (("CONFIG_B", "y"), ("CONFIG_C", "n"))
    an = (("CONFIG_A", "n"), ("CONFIG_C", "n"))
    doubt = (("CONFIG_A", "y"), ("CONFIG_C", "y"))
    assert cover._groups([ab, bc, an, doubt], {doubt}) == [
        ((("CONFIG_A", "y"), ("CONFIG_B", "y"), ("CONFIG_C", "n")), [ab, bc]),
        (an, [an]), (doubt, [doubt])]


def test_a_doubted_value_is_asked_once_for_every_tuple_that_holds_it() -> None:
    ab = (("CONFIG_A", "n"), ("CONFIG_B", "y"))
    ac = (("CONFIG_A", "n"), ("CONFIG_C", "y"))
    bc = (("CONFIG_B", "y"), ("CONFIG_C", "n"))
    single = (("CONFIG_A", "n"),)
    assert cover._groups([ab, ac, bc], set(), [single]) == [
        (single, [ab, ac]), (bc, [bc])]


def test_a_value_kconfig_never_holds_makes_every_tuple_with_it_unsatisfiable() -> None:
    rows = covering_rows(AXES, 2, 0, [], [Impossible((("CONFIG_B", "n"),), "planner")])
    matrix = matrix_of(rows, repair=True)
    fake = FakeKconfig(never={"CONFIG_B": "n"})
    found, cov = cover.complete(matrix, BASE, fake.resolve_all(matrix, {}),
                                [Impossible((("CONFIG_B", "n"),), "planner")], fake.resolve_all)
    unsat = {coverage.tuple_text(u.values): u.reason for u in cov.unsatisfiable}
    assert unsat == {"A=y B=n": "CONFIG_B=n never holds", "A=n B=n": "CONFIG_B=n never holds",
                     "B=n C=y": "CONFIG_B=n never holds", "B=n C=n": "CONFIG_B=n never holds",
                     "A=n C=y": "C=y needs A=y, but A=n is requested"}
    assert cov.percent == 100.0, cov.markdown()
    asked_b_n = [v for v in fake.asked if ("CONFIG_B", "n") in v]
    assert asked_b_n == [(("CONFIG_B", "n"),)]  # asked once, for the four tuples
    assert all(("CONFIG_B", "n") not in c.values for c in matrix.combinations)  # not built


def test_a_sampled_row_kconfig_never_holds_is_listed_not_built() -> None:
    rows = covering_rows(AXES, 2, 0, [])  # the planner saw nothing: B=n rows are sampled
    matrix = matrix_of(rows, repair=True)
    fake = FakeKconfig(never={"CONFIG_B": "n"})
    first = fake.resolve_all(matrix, {})
    never = [c for c, r in first.items() if r.unsatisfiable]  # B=n, or A=n with C=y
    assert any(("CONFIG_B", "n") in row for row in rows)
    found, cov = cover.complete(matrix, BASE, first, [], fake.resolve_all)
    assert never and not set(never) & {c.id for c in matrix.combinations} and not set(never) & set(found)
    assert [u.reason.split(":")[0] for u in cov.unbuilt_rows] == never
    assert cov.percent == 100.0 and "sampled row(s) Kconfig never holds, not built" in cov.headline()
    assert "Sampled rows Kconfig can never hold" in cov.markdown()
