"""Sampling: covering arrays under constraints (covertable), axes from a tree's Makefile, the
`sample:` and `axes: {from: ...}` keys of matrix.yaml (file:line errors), and `kmatrix list`."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest
from testhelpers import MINI_TREE, run_kmatrix

from harness import kconfig
from harness.cover import expand, load_combinations, save_combinations, tree_axes
from harness.matrix import check_against_tree, load_matrix
from harness.sample import (
    Axis,
    Impossible,
    SampleSpec,
    all_tuples,
    axes_from_tree,
    covering_rows,
    product_rows,
    tuples_of,
)
from harness.verdict import InputError

SYMBOLS = kconfig.scan_symbols(MINI_TREE)
TEN = [Axis(f"CONFIG_OPT{i}", ("y", "n")) for i in range(10)]


def covered(rows: list, t: int) -> set:
    return {tup for row in rows for tup in tuples_of(dict(row), t)}


def test_pairwise_covers_every_pair_with_far_fewer_rows_than_the_product() -> None:
    rows = covering_rows(TEN, 2, seed=0, rules=[])
    assert covered(rows, 2) == set(all_tuples(TEN, 2))
    assert len(rows) <= 10 < 2 ** 10
    assert all([s for s, _ in row] == [a.symbol for a in TEN] for row in rows)


def test_three_wise_covers_every_triple() -> None:
    rows = covering_rows(TEN[:6], 3, seed=0, rules=[])
    assert covered(rows, 3) == set(all_tuples(TEN[:6], 3))
    assert len(rows) < 2 ** 6


def test_the_same_seed_gives_the_same_sample_and_another_seed_may_not() -> None:
    first = covering_rows(TEN, 2, seed=7, rules=[])
    assert covering_rows(TEN, 2, seed=7, rules=[]) == first
    others = [covering_rows(TEN, 2, seed=s, rules=[]) for s in range(1, 6)]
    assert any(o != first for o in others)


def test_exclude_rules_and_impossible_tuples_are_constraints() -> None:
    rules = [{"CONFIG_OPT0": frozenset({"n"}), "CONFIG_OPT1": frozenset({"y"})}]
    impossible = [Impossible((("CONFIG_OPT2", "y"), ("CONFIG_OPT3", "n")), "needs OPT3"),
                  Impossible((("CONFIG_OPT4", "n"),), "always y")]
    rows = [dict(r) for r in covering_rows(TEN, 2, 3, rules, impossible)]
    assert rows
    assert not any(r["CONFIG_OPT0"] == "n" and r["CONFIG_OPT1"] == "y" for r in rows)
    assert not any(r["CONFIG_OPT2"] == "y" and r["CONFIG_OPT3"] == "n" for r in rows)
    assert all(r["CONFIG_OPT4"] == "y" for r in rows)
    # every pair that no constraint forbids is still covered
    allowed = {tup for tup in all_tuples(TEN, 2)
               if tup != (("CONFIG_OPT0", "n"), ("CONFIG_OPT1", "y"))
               and tup != (("CONFIG_OPT2", "y"), ("CONFIG_OPT3", "n"))
               and ("CONFIG_OPT4", "n") not in tup}
    assert allowed <= covered([tuple(r.items()) for r in rows], 2)


def test_fewer_axes_than_t_is_the_product() -> None:
    axes = [Axis("CONFIG_A", ("y", "m", "n")), Axis("CONFIG_B", ("y", "n"))]
    assert covering_rows(axes, 2, 0, []) == product_rows(axes, [])
    assert len(product_rows(axes, [])) == 6


def test_axes_from_the_tree_makefile() -> None:
    axes = axes_from_tree(MINI_TREE, "kernel/module/", SYMBOLS)
    names = [a.symbol for a in axes]
    assert names[0] == "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"
    assert "CONFIG_MODULE_STATS" in names and "CONFIG_KALLSYMS" in names
    assert len(names) == 13 and len(set(names)) == 13
    assert all(a.values == ("y", "n") for a in axes if SYMBOLS.type_of(a.symbol) == "bool")


def test_a_new_obj_line_becomes_an_axis(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "kernel" / "module").mkdir(parents=True)
    (tree / "kernel" / "module" / "Makefile").write_text(
        "obj-y += main.o\nobj-$(CONFIG_MODULE_STATS) += stats.o\n"
        "ifdef CONFIG_MODULE_UNLOAD\nobj-$(CONFIG_FOO) += foo.o\nendif\n")
    types = kconfig.SymbolTable({"MODULE_STATS": "bool", "MODULE_UNLOAD": "bool", "FOO": "tristate"})
    axes = axes_from_tree(tree, "kernel/module/", types)
    assert axes == [Axis("CONFIG_MODULE_STATS", ("y", "n")),
                    Axis("CONFIG_FOO", ("y", "m", "n")), Axis("CONFIG_MODULE_UNLOAD", ("y", "n"))]
    with pytest.raises(InputError, match="axes.from takes a directory"):
        axes_from_tree(tree, "kernel/nothing/", types)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def message(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_matrix(path)
    return info.value.message.replace(str(path.resolve()), "M")


PAIRWISE = """
kernel: {source: debian}
sample: {strategy: pairwise, seed: 4}
axes:
  from: kernel/module/
  CONFIG_MODULE_UNLOAD: [y, n]
exclude:
  - {CONFIG_MODULE_UNLOAD: n, CONFIG_MODULE_UNLOAD_TAINT_TRACKING: y}
include:
  - id: stats
    config: {CONFIG_MODULE_STATS: y}
"""


def test_sample_and_axes_from_load_and_expand_with_the_tree(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, PAIRWISE))
    assert matrix.sample == SampleSpec("pairwise", 2, 4) and matrix.deferred
    assert matrix.axes_from == ("kernel/module/",)
    assert [c.id for c in matrix.combinations] == ["stats"]  # the axes wait for the tree
    check_against_tree(matrix, SYMBOLS)
    axes = tree_axes(matrix, MINI_TREE, SYMBOLS)
    assert axes[-1] == Axis("CONFIG_MODULE_UNLOAD", ("y", "n")) and len(axes) == 14
    expand(matrix, axes)
    ids = [c.id for c in matrix.combinations]
    assert ids[0] == "pairwise-01" and ids[-1] == "stats" and 5 < len(ids) < 20
    rows = [dict(c.values) for c in matrix.combinations[:-1]]
    assert not any(r["CONFIG_MODULE_UNLOAD"] == "n" and r["CONFIG_MODULE_UNLOAD_TAINT_TRACKING"] == "y"
                   for r in rows)
    # the workers read the run's combinations back from sample.json
    save_combinations(tmp_path, matrix)
    again = load_combinations(load_matrix(write(tmp_path, PAIRWISE)), tmp_path)
    assert again.combinations == matrix.combinations


def test_sample_all_with_axes_as_written_is_the_product_as_before(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, """
        axes:
          CONFIG_MODULE_UNLOAD: [y, n]
          CONFIG_MODULE_SIG: [y, n]
        sample: all
        """))
    assert not matrix.deferred and len(matrix.combinations) == 4


@pytest.mark.parametrize("text, expected", [
    ("sample: often\naxes: {CONFIG_A: [y, n]}\n", "M:1: sample strategy 'often' is not one of all, pairwise, t-wise"),
    ("sample: {strategy: t-wise, t: 9}\naxes: {CONFIG_A: [y, n]}\n", "M:1: sample t must be a whole number from 2 to 4"),
    ("sample: {strategy: pairwise, t: 3}\naxes: {CONFIG_A: [y, n]}\n", "M:1: pairwise means t: 2"),
    ("sample: {strategy: pairwise, seed: -1}\naxes: {CONFIG_A: [y, n]}\n", "M:1: sample seed must be a whole number 0 or more"),
    ("sample: {strategy: pairwise, sed: 1}\naxes: {CONFIG_A: [y, n]}\n", "M:1: unknown key 'sed' in sample"),
    ("sample: {strategy: all, seed: 1}\naxes: {CONFIG_A: [y, n]}\n", "M:1: sample: all takes no t or seed"),
    ("axes:\n  from: /abs\n", "M:2: axes from '/abs': give a directory of the kernel tree"),
    ("include: [{id: a, config: {CONFIG_A: y}}]\nexclude: [{CONFIG_A: y}]\n", "M:2: exclude trims the axes, but the matrix has none"),
])
def test_sample_errors_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    assert message(tmp_path, text).startswith(expected)


def test_an_exclude_on_no_axis_is_caught_once_the_tree_is_known(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, "axes: {from: kernel/module/}\nexclude: [{CONFIG_MODULE_UNLOAD: n}]\n"))
    with pytest.raises(InputError, match="exclude names CONFIG_MODULE_UNLOAD, which is not an axis"):
        tree_axes(matrix, MINI_TREE, SYMBOLS)


def test_an_axis_the_tree_does_not_define_names_its_line(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, "sample: pairwise\naxes:\n  CONFIG_A: [y, n]\n  CONFIG_MODULE_SIGG: [y, n]\n"))
    with pytest.raises(InputError, match=r":3: CONFIG_A is not defined .*"):
        check_against_tree(matrix, SYMBOLS)


def test_kmatrix_list_of_a_plain_matrix_needs_no_tree(tmp_path: Path) -> None:
    path = write(tmp_path, "axes: {CONFIG_A: [y, n], CONFIG_B: [y, n]}\nsample: all\n")
    done = run_kmatrix("list", str(path))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 4


def test_tuples_are_sorted_by_symbol() -> None:
    row = {"CONFIG_B": "y", "CONFIG_A": "n", "CONFIG_C": "y"}
    assert tuples_of(row, 2) == {(("CONFIG_A", "n"), ("CONFIG_B", "y")),
                                 (("CONFIG_A", "n"), ("CONFIG_C", "y")),
                                 (("CONFIG_B", "y"), ("CONFIG_C", "y"))}
    assert len(all_tuples(TEN[:3], 2)) == 3 * 4
    assert len(list(itertools.combinations(range(3), 2))) == 3
