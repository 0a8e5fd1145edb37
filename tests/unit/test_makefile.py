"""Reading a Kbuild Makefile's object rules: the seed kernel/module/Makefile of Linux 6.12, and
the conditional constructs (ifdef, ifeq, else, endif, line continuations) around it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import linkcheck, makefile, yamlsrc
from harness.makefile import ObjectRule

SEED = (Path(__file__).resolve().parent.parent / "data" / "mini-tree" / "kernel" / "module" /
        "Makefile").read_text()

SEED_MAP = {
    "main.o": "y", "strict_rwx.o": "y", "kmod.o": "y",
    "dups.o": "MODULE_DEBUG_AUTOLOAD_DUPS", "decompress.o": "MODULE_DECOMPRESS",
    "signing.o": "MODULE_SIG", "livepatch.o": "LIVEPATCH", "tree_lookup.o": "MODULES_TREE_LOOKUP",
    "debug_kmemleak.o": "DEBUG_KMEMLEAK", "kallsyms.o": "KALLSYMS", "procfs.o": "PROC_FS",
    "sysfs.o": "SYSFS", "kdb.o": "KGDB_KDB", "version.o": "MODVERSIONS",
    "tracking.o": "MODULE_UNLOAD_TAINT_TRACKING", "stats.o": "MODULE_STATS",
}


def rules(text: str) -> list[tuple[str, str]]:
    return [(r.obj, r.condition) for r in makefile.parse_object_rules(textwrap.dedent(text))]


def test_the_seed_makefile_is_the_linux_6_12_one() -> None:
    assert SEED.startswith("# SPDX-License-Identifier: GPL-2.0-only\n")
    assert "KCOV_INSTRUMENT_main.o := n\n" in SEED
    assert "obj-$(CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS) += dups.o\n" in SEED


def test_seed_makefile_rules_with_their_lines() -> None:
    got = makefile.parse_object_rules(SEED)
    assert len(got) == 16
    assert got[0] == ObjectRule("main.o", "y", 10)
    assert got[3] == ObjectRule("dups.o", "MODULE_DEBUG_AUTOLOAD_DUPS", 13)
    assert got[-1] == ObjectRule("stats.o", "MODULE_STATS", 25)
    # KCOV_INSTRUMENT_main.o := n is a variable, not an object rule
    assert [r.obj for r in got].count("main.o") == 1


def test_seed_expect_map() -> None:
    got = makefile.expect_map(makefile.parse_object_rules(SEED))
    assert got == SEED_MAP
    assert list(got) == list(SEED_MAP)  # Makefile order is kept


def test_ifdef_ifndef_else_endif_nest_into_conditions() -> None:
    assert rules("""
        ifdef CONFIG_MODULES
        obj-y += a.o
        ifndef CONFIG_MODULE_SIG
        obj-$(CONFIG_KALLSYMS) += b.o
        else
        obj-y += c.o
        endif
        obj-y += d.o
        endif
        obj-y += e.o
        """) == [("a.o", "MODULES"), ("b.o", "MODULES && !MODULE_SIG && KALLSYMS"),
                 ("c.o", "MODULES && MODULE_SIG"), ("d.o", "MODULES"), ("e.o", "y")]


@pytest.mark.parametrize("guard, condition, negated", [
    ("ifeq ($(CONFIG_SYSFS),y)", "SYSFS", "!SYSFS"),
    ("ifeq ($(CONFIG_SYSFS), y)", "SYSFS", "!SYSFS"),
    ("ifneq ($(CONFIG_SYSFS),y)", "!SYSFS", "SYSFS"),
    ("ifeq ($(CONFIG_SYSFS),)", "!SYSFS", "SYSFS"),
    ("ifneq ($(CONFIG_SYSFS),)", "SYSFS", "!SYSFS"),
])
def test_ifeq_forms(guard: str, condition: str, negated: str) -> None:
    text = f"{guard}\nobj-y += a.o\nelse\nobj-y += b.o\nendif\n"
    assert rules(text) == [("a.o", condition), ("b.o", negated)]


def test_guards_it_cannot_express_skip_their_objects_never_guess() -> None:
    assert rules("""
        ifeq ($(CONFIG_SYSFS),m)
        obj-y += a.o
        else
        obj-y += b.o
        endif
        ifeq ($(ARCH),x86)
        obj-y += c.o
        endif
        obj-y += d.o
        """) == [("d.o", "y")]


def test_line_continuations_join_object_lists() -> None:
    assert rules("""
        obj-$(CONFIG_MODULE_SIG) += signing.o \\
                                    version.o \\
                                    sub/
        obj-y += main.o
        """) == [("signing.o", "MODULE_SIG"), ("version.o", "MODULE_SIG"), ("main.o", "y")]


def test_line_numbers_survive_continuations() -> None:
    got = makefile.parse_object_rules("obj-y += a.o \\\n  b.o\nobj-y += c.o\n")
    assert [(r.obj, r.line) for r in got] == [("a.o", 1), ("b.o", 1), ("c.o", 3)]


def test_else_if_chains() -> None:
    got = rules("""
        ifdef CONFIG_MODULE_SIG
        obj-y += a.o
        else ifdef CONFIG_MODVERSIONS
        obj-y += b.o
        endif
        obj-y += c.o
        """)
    # b.o must not be attributed to MODULE_SIG; skipping it would also be acceptable
    assert ("b.o", "MODULE_SIG") not in got
    assert ("a.o", "MODULE_SIG") in got and ("c.o", "y") in got
    assert got in ([("a.o", "MODULE_SIG"), ("b.o", "!MODULE_SIG && MODVERSIONS"), ("c.o", "y")],
                   [("a.o", "MODULE_SIG"), ("c.o", "y")])


def test_other_lines_are_ignored() -> None:
    assert rules("""
        # obj-y += commented.o
        obj-m += module.o
        obj-$(CONFIG_MODULES) += subdir/
        obj-y := assigned.o   # trailing comment
        obj-y = plain.o
        ccflags-y += -DDEBUG
        lib-y += lib.o
        obj-y += helper.c
        """) == [("assigned.o", "y"), ("plain.o", "y")]


def test_expect_map_joins_conditions_of_an_object_listed_twice() -> None:
    got = makefile.expect_map(makefile.parse_object_rules(
        "obj-$(CONFIG_A) += x.o\nobj-$(CONFIG_B) += x.o\nobj-$(CONFIG_A) += y.o\n"
        "obj-$(CONFIG_A) += y.o\nifdef CONFIG_C\nobj-$(CONFIG_D) += x.o\nendif\n"))
    assert got == {"x.o": "A || B || C && D", "y.o": "A"}
    assert linkcheck.evaluate(got["x.o"], {"CONFIG_C": "y", "CONFIG_D": "y"})
    assert not linkcheck.evaluate(got["x.o"], {"CONFIG_C": "y"})


def test_and_parenthesizes_alternatives() -> None:
    got = makefile.parse_object_rules("ifdef CONFIG_Z\nobj-$(CONFIG_A) += x.o\nendif\n")
    assert got[0].condition == "Z && A"
    assert makefile._and(["y", "A || B", "C"]) == "(A || B) && C"
    assert makefile._and(["y", "y"]) == "y"


def test_render_expect_yaml_reads_back_as_the_same_map() -> None:
    mapping = {**SEED_MAP, "extra.o": "MODULE_SIG && !MODVERSIONS", "never.o": "n",
               "either.o": "A || (B && C)"}
    text = makefile.render_expect_yaml("kernel/module/", mapping)
    assert text.startswith("expect:\n  kernel/module/:\n    main.o: y\n"
                           "    strict_rwx.o: y\n    kmod.o: y\n    dups.o: MODULE_DEBUG_AUTOLOAD_DUPS\n")
    assert "    extra.o: 'MODULE_SIG && !MODVERSIONS'\n" in text
    assert yamlsrc.loads(text) == {"expect": {"kernel/module/": mapping}}


def test_rendered_seed_map_is_a_valid_matrix_expect_section(tmp_path: Path) -> None:
    from harness.matrix import load_matrix

    path = tmp_path / "m.yaml"
    path.write_text("include: [{}]\n" + makefile.render_expect_yaml("kernel/module/", SEED_MAP))
    assert load_matrix(path).expect == {"kernel/module/": SEED_MAP}
