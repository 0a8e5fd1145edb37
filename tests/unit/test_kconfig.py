""".config parsing, rendering and merging; config truth; the config hash; the symbol scan of a
tree's Kconfig files (tests/data/mini-tree)."""

from __future__ import annotations

from pathlib import Path

import pytest
from testhelpers import MINI_TREE

from harness import kconfig
from harness.kconfig import Mismatch, SymbolTable

DOTCONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.12.0 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (Debian 12.2.0-14) 12.2.0"
CONFIG_LOCALVERSION="-a # not a comment"
CONFIG_LOG_BUF_SHIFT=17
CONFIG_PHYSICAL_START=0x1000000
CONFIG_MODULES=y
CONFIG_TEST_DUPS_TRISTATE=m
# CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS is not set
   CONFIG_DEBUG_FS=y
# CONFIG_DEBUG_FS is enabled below, this line is a comment
"""


# --- parse / render / merge -------------------------------------------------------------------

def test_parse_reads_values_unset_lines_and_ignores_comments() -> None:
    assert kconfig.parse_config(DOTCONFIG) == {
        "CONFIG_CC_VERSION_TEXT": '"gcc (Debian 12.2.0-14) 12.2.0"',
        "CONFIG_LOCALVERSION": '"-a # not a comment"',
        "CONFIG_LOG_BUF_SHIFT": "17",
        "CONFIG_PHYSICAL_START": "0x1000000",
        "CONFIG_MODULES": "y",
        "CONFIG_TEST_DUPS_TRISTATE": "m",
        "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "n",
        "CONFIG_DEBUG_FS": "y",
    }


def test_parse_later_assignments_win_and_move_to_the_end() -> None:
    got = kconfig.parse_config("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_A is not set\nCONFIG_B=m\n")
    assert list(got.items()) == [("CONFIG_A", "n"), ("CONFIG_B", "m")]
    assert kconfig.parse_config("# CONFIG_A is not set\nCONFIG_A=y\n") == {"CONFIG_A": "y"}


def test_parse_empty_and_garbage() -> None:
    assert kconfig.parse_config("") == {}
    assert kconfig.parse_config("FOO=y\nCONFIG_=\nmake: *** oops\n") == {}


def test_render_writes_kconfig_syntax_and_round_trips() -> None:
    values = {"CONFIG_MODULES": "y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "n",
              "CONFIG_LOCALVERSION": '"-x"', "CONFIG_LOG_BUF_SHIFT": "17"}
    text = kconfig.render_config(values)
    assert text == ("CONFIG_MODULES=y\n# CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS is not set\n"
                    'CONFIG_LOCALVERSION="-x"\nCONFIG_LOG_BUF_SHIFT=17\n')
    assert kconfig.parse_config(text) == values
    assert kconfig.render_config({}) == ""


def test_merge_applies_fragments_in_order_without_touching_the_base() -> None:
    base = {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "n"}
    merged = kconfig.merge(base, {"CONFIG_B": "n", "CONFIG_D": "y"}, {"CONFIG_B": "m", "CONFIG_A": "y"})
    assert list(merged.items()) == [("CONFIG_C", "n"), ("CONFIG_D", "y"), ("CONFIG_B", "m"),
                                    ("CONFIG_A", "y")]
    assert base == {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "n"}
    assert kconfig.merge(base) == base and kconfig.merge(base) is not base


# --- config truth -----------------------------------------------------------------------------

def test_config_truth_passes_when_every_request_survives() -> None:
    resolved = kconfig.parse_config(DOTCONFIG)
    requested = {"CONFIG_MODULES": "y", "CONFIG_DEBUG_FS": "y", "CONFIG_TEST_DUPS_TRISTATE": "m",
                 "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "n", "CONFIG_NEVER_HEARD_OF": "n"}
    assert kconfig.config_truth(requested, resolved) == []


def test_config_truth_reports_dropped_and_changed_values() -> None:
    resolved = {"CONFIG_MODULES": "y", "CONFIG_TEST_DUPS_TRISTATE": "m",
                "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "n"}
    requested = {"CONFIG_MODULES": "y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y",
                 "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE": "y", "CONFIG_TEST_DUPS_TRISTATE": "y"}
    got = kconfig.config_truth(requested, resolved)
    assert got == [Mismatch("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", "y", "n"),
                   Mismatch("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE", "y", "n"),
                   Mismatch("CONFIG_TEST_DUPS_TRISTATE", "y", "m")]
    assert [m.describe() for m in got] == [
        "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y dropped by Kconfig (resolved: not set)",
        "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE=y dropped by Kconfig (resolved: not set)",
        "CONFIG_TEST_DUPS_TRISTATE=y changed by Kconfig (resolved: m)",
    ]


def test_config_truth_catches_a_value_kconfig_forced_on() -> None:
    got = kconfig.config_truth({"CONFIG_MODULES_TREE_LOOKUP": "n"}, {"CONFIG_MODULES_TREE_LOOKUP": "y"})
    assert [m.describe() for m in got] == ["CONFIG_MODULES_TREE_LOOKUP=n changed by Kconfig "
                                           "(resolved: y)"]


@pytest.mark.parametrize("requested, resolved", [
    ('"-kmatrix"', '"-kmatrix"'),
    ('"-kmatrix"', "-kmatrix"),
    ("0x1000000", "0x1000000"),
    ("0x10", "16"),
    ("17", " 17"),
    ('""', '""'),
])
def test_config_truth_normalizes_strings_and_numbers(requested: str, resolved: str) -> None:
    assert kconfig.config_truth({"CONFIG_X": requested}, {"CONFIG_X": resolved}) == []


@pytest.mark.parametrize("requested, resolved", [
    ('"-kmatrix"', '"-other"'),
    ("0x1000000", "0x200000"),
    ("17", "18"),
    ('"17"', "y"),
])
def test_config_truth_sees_real_differences(requested: str, resolved: str) -> None:
    assert kconfig.config_truth({"CONFIG_X": requested}, {"CONFIG_X": resolved}) == \
        [Mismatch("CONFIG_X", requested, resolved)]


def test_config_truth_string_dropped_to_unset() -> None:
    got = kconfig.config_truth({"CONFIG_LOCALVERSION": '"-x"'}, {})
    assert got[0].describe() == 'CONFIG_LOCALVERSION="-x" dropped by Kconfig (resolved: not set)'


# --- config hash ------------------------------------------------------------------------------

def test_config_hash_is_stable_and_ignores_order_and_unset_lines() -> None:
    a = {"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": "n"}
    b = {"CONFIG_B": "m", "CONFIG_A": "y"}
    h = kconfig.config_hash(a)
    assert len(h) == 16 and int(h, 16) >= 0
    assert h == kconfig.config_hash(b) == kconfig.config_hash(kconfig.parse_config(
        "# comment\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_A=y\n"))
    assert h != kconfig.config_hash({"CONFIG_A": "y", "CONFIG_B": "y"})
    assert h != kconfig.config_hash({"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_D": "y"})
    assert kconfig.config_hash({}) == kconfig.config_hash({"CONFIG_X": "n"})


# --- symbols of a tree ------------------------------------------------------------------------

def test_scan_symbols_of_the_mini_tree_with_types() -> None:
    table = kconfig.scan_symbols(MINI_TREE)
    assert table.types["MODULES"] == "bool"  # menuconfig
    assert table.types["MODULE_DEBUG_AUTOLOAD_DUPS"] == "bool"
    assert table.types["MODULE_DEBUGFS"] == "bool"
    assert table.types["DEBUG_FS"] == "bool"
    assert table.types["MODULE_DEBUG"] == "bool"
    assert table.types["X86_64"] == "bool"  # def_bool
    assert table.types["MODULES_TREE_LOOKUP"] == "bool"
    assert table.types["TEST_DUPS_TRISTATE"] == "tristate"
    assert table.types["LOCALVERSION"] == "string"
    assert table.types["LOG_BUF_SHIFT"] == "int"
    assert table.types["PHYSICAL_START"] == "hex"
    assert "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS" in table and "MODULE_DEBUG_AUTOLOAD_DUPS" in table
    assert "CONFIG_MODULE_DEBUG_AUTOLOAD_DUP" not in table
    assert table.type_of("CONFIG_LOG_BUF_SHIFT") == "int"
    assert table.type_of("CONFIG_NOPE") == "unknown"


def test_every_symbol_the_seed_makefile_uses_is_in_the_mini_tree() -> None:
    from harness import linkcheck, makefile

    table = kconfig.scan_symbols(MINI_TREE)
    rules = makefile.parse_object_rules((MINI_TREE / "kernel/module/Makefile").read_text())
    for rule in rules:
        for sym in linkcheck.condition_symbols(rule.condition):
            assert sym in table, sym


def test_scan_symbols_reads_the_sourced_documentation_kconfig() -> None:
    assert "CONFIG_WARN_MISSING_DOCUMENTS" in kconfig.scan_symbols(MINI_TREE)


def test_scan_symbols_first_typed_definition_wins_and_hidden_dirs_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "Kconfig").write_text("config FOO\n\tdepends on BAR\n\nconfig BAR\n\tint\n")
    (tmp_path / "a" / "Kconfig.extra").write_text("config FOO\n\ttristate \"foo\"\n"
                                                  "config FOO_HELPLESS\n")
    (tmp_path / ".git" / "Kconfig").write_text("config IN_GIT\n\tbool\n")
    (tmp_path / "a" / "Makefile").write_text("config NOT_KCONFIG\n")
    table = kconfig.scan_symbols(tmp_path)
    assert table.types == {"FOO": "tristate", "BAR": "int", "FOO_HELPLESS": "unknown"}


def test_close_matches() -> None:
    table = SymbolTable({"MODULE_SIG": "bool", "MODULE_SIG_ALL": "bool", "DEBUG_FS": "bool"})
    assert table.close_matches("CONFIG_MODULE_SGI") == ["CONFIG_MODULE_SIG", "CONFIG_MODULE_SIG_ALL"]
    assert table.close_matches("CONFIG_ZZZZZZ") == []


@pytest.mark.parametrize("symbol_type, value, problem", [
    ("bool", "y", None), ("bool", "n", None), ("bool", "m", "a bool takes y or n"),
    ("tristate", "m", None), ("tristate", "Y", "a tristate takes y, m or n"),
    ("int", "-12", None), ("int", "0x10", "an int takes a decimal number"),
    ("hex", "0x1f", None), ("hex", "1F", None), ("hex", "0xg", "a hex takes a hexadecimal number"),
    ("string", "anything at all", None), ("unknown", "m", None),
])
def test_check_value(symbol_type: str, value: str, problem: str | None) -> None:
    assert kconfig.check_value(symbol_type, value) == problem


@pytest.mark.parametrize("symbol_type, value, written", [
    ("string", "-kmatrix", '"-kmatrix"'),
    ("string", '"already quoted"', '"already quoted"'),
    ("string", 'say "hi" \\o/', '"say \\"hi\\" \\\\o/"'),
    ("hex", "1000000", "0x1000000"),
    ("hex", "0X10", "0X10"),
    ("int", "17", "17"),
    ("bool", "y", "y"),
    ("unknown", "y", "y"),
])
def test_config_value_writes_what_kconfig_reads(symbol_type: str, value: str, written: str) -> None:
    assert kconfig.config_value(symbol_type, value) == written
