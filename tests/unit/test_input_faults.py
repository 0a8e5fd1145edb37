"""Bad input is one line and exit 2, never a traceback, an exhausted machine or a silent pass
(issue 10, items 6 and 7): link checks that would check nothing, hostile YAML, hostile expect
conditions, hostile ids, values and directories."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from harness import results
from harness.matrix import load_matrix
from harness.pipeline import link_stage
from harness.verdict import EXIT_BAD_INPUT, InputError, Verdict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "matrix.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_matrix(path)
    assert info.value.exit_status == EXIT_BAD_INPUT
    assert "\n" not in info.value.message
    return info.value.message


ONE = """
    config: {CONFIG_MODULES: y}
    include:
      - id: one
        config: {CONFIG_MODULE_UNLOAD: y}
    """


# --- a link check that checks nothing ---------------------------------------------------------

def test_an_expect_directory_no_target_builds_is_bad_input(tmp_path: Path) -> None:
    message = error(tmp_path, ONE + """
    build: {targets: [kernel/module/]}
    expect:
      lib/:
        string.o: y
    """)
    assert "expect lib/: no build target builds it" in message
    assert message.endswith("add lib/ to build.targets") and "matrix.yaml:8:" in message


@pytest.mark.parametrize("targets", ["[kernel/]", "[kernel/module/]", "[vmlinux]", "[bzImage]"])
def test_a_target_that_builds_the_directory_covers_it(tmp_path: Path, targets: str) -> None:
    m = load_matrix(write(tmp_path, ONE + f"""
    build: {{targets: {targets}}}
    expect:
      kernel/module/:
        main.o: y
    """))
    assert list(m.expect) == ["kernel/module/"]


def test_a_link_check_with_nothing_to_check_is_never_a_pass(tmp_path: Path) -> None:
    m = load_matrix(write(tmp_path, ONE))
    m.expect = {"lib/": {"string.o": "y"}}  # as if the loader had let it through
    m.build = dataclasses.replace(m.build, targets=("kernel/module/",))
    record = results.Record("one", "r", "m", {}, {})
    outcome = link_stage(m, tmp_path / "out", {}, record)
    assert outcome.verdict is Verdict.INFRA_ERROR
    assert "checked nothing" in outcome.reasons[0]


# --- hostile YAML -----------------------------------------------------------------------------

ALIAS_BOMB = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    assert "aliases (*name) are not allowed" in error(tmp_path, ALIAS_BOMB)


def test_a_complex_mapping_key_is_one_line(tmp_path: Path) -> None:
    assert "a key must be a plain name" in error(tmp_path, "? [a, b]\n: 1\n")
    assert "a key must be a plain name" in error(tmp_path, "config: {{a: 1}: y}\n")


@pytest.mark.parametrize("condition", ["!" * 5000 + "y", "(" * 3000 + "y" + ")" * 3000,
                                       "!(" * 500 + "y" + ")" * 500],
                         ids=["5000-not", "3000-parens", "500-not-parens"])
def test_deeply_nested_expect_conditions_are_one_line(tmp_path: Path, condition: str) -> None:
    message = error(tmp_path, ONE + f"""
    expect:
      kernel/module/:
        main.o: "{condition}"
    """)
    assert ("nested deeper than" in message or "too long" in message) and len(message) < 400


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    assert "matrix.yaml:2: not UTF-8" in error(tmp_path, b"config: {CONFIG_MODULES: y}\n# \xff\xfe\n")


def test_a_directory_given_as_the_matrix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory: pass the matrix file"):
        load_matrix(tmp_path)


def test_yaml_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    message = error(tmp_path, "a: " + "[" * 20000 + "]" * 20000 + "\n")
    assert "nested too deep" in message or "YAML error" in message


# --- expansion cap ----------------------------------------------------------------------------

AXES20 = "axes:\n" + "".join(f"  CONFIG_A{i}: [y, n]\n" for i in range(20))


def test_twenty_boolean_axes_are_counted_not_expanded(tmp_path: Path) -> None:
    message = error(tmp_path, AXES20)
    assert "expand to 1048576 combinations" in message and "max_combinations" in message


def test_the_cap_is_configurable(tmp_path: Path) -> None:
    text = "axes:\n" + "".join(f"  CONFIG_A{i}: [y, n]\n" for i in range(4))
    assert "expand to 16 combinations" in error(tmp_path, text + "build: {max_combinations: 8}\n")
    m = load_matrix(write(tmp_path, text + "build: {max_combinations: 16}\n"))
    assert len(m.combinations) == 16


# --- hostile ids, values, directories and targets -----------------------------------------------

@pytest.mark.parametrize("combo_id", ['"abc\\n"', "run.json", "junit.xml", "x" * 300])
def test_ids_that_break_files_are_refused(tmp_path: Path, combo_id: str) -> None:
    message = error(tmp_path, f"""
    include:
      - id: {combo_id}
        config: {{CONFIG_MODULES: y}}
    """)
    assert "id" in message


@pytest.mark.parametrize("value", ['"a\\rb"', '"a\\0b"', '"a\\u2028b"', '"a\\x1bb"'])
def test_control_characters_in_values_are_refused(tmp_path: Path, value: str) -> None:
    assert "is not a value" in error(tmp_path, f"config: {{CONFIG_LOCALVERSION: {value}}}\n")


def test_a_cmdline_with_a_newline_is_refused(tmp_path: Path) -> None:
    message = error(tmp_path, """
    include:
      - id: b
        config: {CONFIG_MODULES: y}
        boot: {cmdline: "quiet\\ninit=/bin/sh"}
    """)
    assert "cmdline must be a string on one line" in message


@pytest.mark.parametrize("directory", ["/etc/", "../../", "kernel/../../", "./kernel/"])
def test_expect_directories_outside_the_tree_are_refused(tmp_path: Path, directory: str) -> None:
    message = error(tmp_path, ONE + f"""
    build: {{targets: [all]}}
    expect:
      "{directory}":
        main.o: y
    """)
    assert "write a directory of the kernel tree" in message


@pytest.mark.parametrize("target", ["-n", "--eval=$(shell id)", "CC=evil", "/etc/", "../x/"])
def test_make_options_are_not_build_targets(tmp_path: Path, target: str) -> None:
    message = error(tmp_path, ONE + f"""
    build: {{targets: ["{target}"]}}
    """)
    assert "is not a make target" in message
