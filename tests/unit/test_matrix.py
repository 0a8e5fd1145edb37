"""matrix.yaml: validation (every error names file:line), expansion, stable ids, and the check
against a tree's Kconfig symbols (tests/data/mini-tree)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from testhelpers import MINI_TREE

from harness import kconfig, makefile
from harness import matrix as matrixmod
from harness.matrix import BuildSettings, check_against_tree, load_matrix, requested_config
from harness.verdict import EXIT_BAD_INPUT, InputError

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = kconfig.scan_symbols(MINI_TREE)


def write(tmp_path: Path, text: str, name: str = "matrix.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(tmp_path: Path, text: str) -> matrixmod.Matrix:
    return load_matrix(write(tmp_path, text))


def error(tmp_path: Path, text: str) -> str:
    """The one-line message of the InputError a matrix raises, with the tmp path shortened."""
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_matrix(path)
    assert info.value.exit_status == EXIT_BAD_INPUT
    assert "\n" not in info.value.message
    return info.value.message.replace(str(path.resolve()), "M")


def ids(m: matrixmod.Matrix) -> list[str]:
    return [c.id for c in m.combinations]


TWO_AXES = """
    axes:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
      CONFIG_TEST_DUPS_TRISTATE: [y, m, n]
    """


# --- expansion ---------------------------------------------------------------------------------

def test_axes_expand_to_their_cartesian_product_in_file_order(tmp_path: Path) -> None:
    m = load(tmp_path, TWO_AXES)
    assert ids(m) == ["module_debug_autoload_dups-y.test_dups_tristate-y",
                      "module_debug_autoload_dups-y.test_dups_tristate-m",
                      "module_debug_autoload_dups-y.test_dups_tristate-n",
                      "module_debug_autoload_dups-n.test_dups_tristate-y",
                      "module_debug_autoload_dups-n.test_dups_tristate-m",
                      "module_debug_autoload_dups-n.test_dups_tristate-n"]
    assert m.combinations[1].values == (("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", "y"),
                                        ("CONFIG_TEST_DUPS_TRISTATE", "m"))
    assert all(c.line == 1 for c in m.combinations)  # the `axes:` line


def test_exclude_drops_matching_points_with_single_values_and_lists(tmp_path: Path) -> None:
    m = load(tmp_path, TWO_AXES + """
    exclude:
      - {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: n, CONFIG_TEST_DUPS_TRISTATE: [y, m]}
      - {CONFIG_TEST_DUPS_TRISTATE: n, CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}
    """)
    assert ids(m) == ["module_debug_autoload_dups-y.test_dups_tristate-y",
                      "module_debug_autoload_dups-y.test_dups_tristate-m",
                      "module_debug_autoload_dups-n.test_dups_tristate-n"]


def test_include_adds_combinations_after_the_axes(tmp_path: Path) -> None:
    m = load(tmp_path, """
    short_names:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups
    axes:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
    include:
      - id: stats
        config: {CONFIG_MODULE_STATS: y}
      - config: {CONFIG_MODULE_UNLOAD: y, MODULE_UNLOAD_TAINT_TRACKING: y}
      - id: dups-boot
        config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}
        boot: {cmdline: module.enable_dups_trace=1}
        repair: true
      - id: plain-boot
        boot: true
    """)
    assert ids(m) == ["dups-y", "dups-n", "stats",
                      "module_unload-y.module_unload_taint_tracking-y", "dups-boot", "plain-boot"]
    stats, taint, boot, plain = m.combinations[2:]
    assert stats.values == (("CONFIG_MODULE_STATS", "y"),)
    assert stats.line == 6 and taint.line == 8 and boot.line == 9
    # a symbol written without CONFIG_ is normalized
    assert taint.values[1] == ("CONFIG_MODULE_UNLOAD_TAINT_TRACKING", "y")
    assert boot.boot == matrixmod.BootRequest("module.enable_dups_trace=1") and boot.repair
    assert plain.boot == matrixmod.BootRequest("") and plain.values == () and not plain.repair
    assert stats.boot is None


def test_an_include_entry_without_values_or_id_is_the_base(tmp_path: Path) -> None:
    m = load(tmp_path, "include:\n  - {}\n")
    assert ids(m) == ["base"]


def test_short_names_and_value_slugs_make_readable_ids(tmp_path: Path) -> None:
    m = load(tmp_path, """
    short_names:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups
      LOCALVERSION: lv
    axes:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y]
      CONFIG_LOCALVERSION: ["-kmatrix test", plain]
      CONFIG_LOG_BUF_SHIFT: [17]
    """)
    assert ids(m) == ["dups-y.lv-kmatrix_test.log_buf_shift-17", "dups-y.lv-plain.log_buf_shift-17"]
    assert all(re.fullmatch(matrixmod.ID_RE.pattern, i) for i in ids(m))


def test_ids_are_the_same_on_every_load_and_for_the_default_matrix(tmp_path: Path) -> None:
    first = load_matrix(REPO / "matrix.yaml")
    second = load_matrix(REPO / "matrix.yaml")
    assert ids(first) == ids(second)
    assert len(set(ids(first))) == len(ids(first))
    assert ids(first)[:3] == ["dups-y.trace-y", "dups-y.trace-n", "dups-n.trace-n"]
    assert "dups-n.trace-y" not in ids(first)  # excluded: trace needs dups


def test_default_matrix_expects_exactly_what_the_seed_makefile_wires() -> None:
    """The default matrix's expect map is the tree's own rules, as `kmatrix expect-map` makes it."""
    seed = (MINI_TREE / "kernel/module/Makefile").read_text()
    m = load_matrix(REPO / "matrix.yaml")
    assert m.expect["kernel/module/"] == makefile.expect_map(makefile.parse_object_rules(seed))


def test_default_matrix_links_and_omits_every_optional_object() -> None:
    m = load_matrix(REPO / "matrix.yaml")
    common = {s: v for s, v, _ in m.common}
    for obj, cond in m.expect["kernel/module/"].items():
        if cond == "y":
            continue
        on = [c.id for c in m.combinations if {**common, **dict(c.values)}.get(f"CONFIG_{cond}") == "y"]
        off = [c.id for c in m.combinations
               if {**common, **dict(c.values)}.get(f"CONFIG_{cond}", "n") != "y"]
        assert on, f"no combination links {obj}"
        assert off, f"no combination leaves out {obj}"


def test_unknown_combination_id_lists_known_ones(tmp_path: Path) -> None:
    m = load(tmp_path, TWO_AXES)
    assert m.combination("module_debug_autoload_dups-n.test_dups_tristate-m").values[1][1] == "m"
    with pytest.raises(InputError, match=r"no combination 'nope': known ids: "
                       r"module_debug_autoload_dups-y\.test_dups_tristate-y, "):
        m.combination("nope")


# --- shape errors, each with file:line ---------------------------------------------------------

def test_duplicate_ids_from_include_name_both_lines(tmp_path: Path) -> None:
    msg = error(tmp_path, """
    short_names: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups}
    axes:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
    include:
      - id: stats
        config: {CONFIG_MODULE_STATS: y}
      - id: dups-y
        config: {CONFIG_MODULE_STATS: n}
    """)
    assert msg == ("M:7: combination id 'dups-y' is used twice (also line 2): give one of them "
                   "its own id")


def test_duplicate_ids_from_repeated_axis_values(tmp_path: Path) -> None:
    msg = error(tmp_path, "axes:\n  CONFIG_MODULES: [y, y]\n")
    assert msg.startswith("M:1: combination id 'modules-y' is used twice")


@pytest.mark.parametrize("text, line, key, where", [
    ("axes:\n  MODULES: [y]\naxis:\n  X: [y]\n", 3, "axis", "the matrix"),
    ("kernel:\n  source: debian\n  version: 6.12\ninclude: [{}]\n", 3, "version", "kernel"),
    ("include:\n  - id: a\n    configs: {MODULES: y}\n", 3, "configs", "an include entry"),
    ("include: [{}]\nbuild:\n  targets: [all]\n  jobs: 4\n", 4, "jobs", "build"),
    ("include:\n  - boot: {cmdline: x, append: y}\n", 2, "append", "boot"),
])
def test_unknown_keys_name_file_line_and_the_allowed_keys(tmp_path: Path, text: str, line: int,
                                                          key: str, where: str) -> None:
    msg = error(tmp_path, text)
    assert msg.startswith(f"M:{line}: unknown key {key!r} in {where}: expected one of ")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    msg = error(tmp_path, "axes:\n  CONFIG_MODULES: [y, n\nbase: tinyconfig\n")
    assert re.match(r"M:3: YAML error: .*: fix the syntax at that line$", msg), msg


def test_duplicate_yaml_key_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    msg = error(tmp_path, "axes:\n  CONFIG_MODULES: [y]\n  CONFIG_MODULES: [n]\n")
    assert msg.startswith("M:3: YAML error: duplicate key 'CONFIG_MODULES'")


@pytest.mark.parametrize("word", ["yes", "no", "true", "off", "On"])
def test_yaml_booleans_are_rejected_with_the_fix(tmp_path: Path, word: str) -> None:
    msg = error(tmp_path, f"config:\n  CONFIG_MODULES: y\n  CONFIG_DEBUG_FS: {word}\ninclude: [{{}}]\n")
    assert msg.startswith("M:3: CONFIG_DEBUG_FS: YAML read ")
    assert msg.endswith("as a boolean: write y or n")


def test_yaml_booleans_are_rejected_in_axes_too(tmp_path: Path) -> None:
    assert error(tmp_path, "axes:\n  CONFIG_MODULES: [y, no]\n") == \
        "M:2: CONFIG_MODULES: YAML read False as a boolean: write y or n"


@pytest.mark.parametrize("symbol", ["config_modules", "CONFIG-MODULES", "CONFIG_module_debug",
                                    "_MODULES", "CONFIG_MODULES X", "12"])
def test_malformed_symbols_are_rejected(tmp_path: Path, symbol: str) -> None:
    msg = error(tmp_path, f"include:\n  - id: a\n    config:\n      {symbol}: y\n")
    assert msg.startswith("M:4: ")
    assert "is not a CONFIG_ symbol: write it like CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS" in msg


@pytest.mark.parametrize("value, problem", [
    ("''", "'' is not a value"),
    ("", "None is not a value"),
    ("1.5", "1.5 is not a value"),
    ("[y]", "['y'] is not a value"),
    ("{a: b}", "{'a': 'b'} is not a value"),
    ('"two\\nlines"', "'two\\nlines' is not a value"),
])
def test_malformed_values_are_rejected(tmp_path: Path, value: str, problem: str) -> None:
    msg = error(tmp_path, f"config:\n  CONFIG_LOCALVERSION: {value}\ninclude: [{{}}]\n")
    assert msg == f"M:2: CONFIG_LOCALVERSION: {problem}: write y, m, n, a number or a string"


def test_numbers_and_strings_are_kept_as_text(tmp_path: Path) -> None:
    m = load(tmp_path, """
    config:
      CONFIG_LOG_BUF_SHIFT: 17
      CONFIG_LOCALVERSION: -kmatrix
    include: [{}]
    """)
    assert m.common == (("CONFIG_LOG_BUF_SHIFT", "17", 2), ("CONFIG_LOCALVERSION", "-kmatrix", 3))


def test_a_hex_value_is_requested_as_written(tmp_path: Path) -> None:
    m = load(tmp_path, "include:\n  - config: {CONFIG_PHYSICAL_START: 0x1000000}\n")
    check_against_tree(m, SYMBOLS)
    combo = m.combinations[0]
    assert requested_config(m, combo, SYMBOLS)["CONFIG_PHYSICAL_START"] == "0x1000000"


@pytest.mark.parametrize("text, message", [
    ("", "M:1: the matrix is empty: see the README for a minimal matrix.yaml"),
    ("# only a comment\n", "M:1: the matrix is empty: see the README for a minimal matrix.yaml"),
    ("- a\n- b\n", "M:1: the matrix must be a mapping"),
    ("base: tinyconfig\n", "M:1: the matrix expands to no combination: add axes or include "
     "entries, or loosen exclude"),
    ("axes:\n  CONFIG_MODULES: [y]\nexclude:\n  - {CONFIG_MODULES: y}\n",
     "M:1: the matrix expands to no combination: add axes or include entries, or loosen exclude"),
])
def test_empty_matrices_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


@pytest.mark.parametrize("text, message", [
    ("axes:\n  CONFIG_MODULES: []\n",
     "M:2: axis CONFIG_MODULES needs a non-empty list of values, e.g. [y, n]"),
    ("axes:\n  CONFIG_MODULES: y\n",
     "M:2: axis CONFIG_MODULES needs a non-empty list of values, e.g. [y, n]"),
    ("axes:\n  CONFIG_MODULES: [y]\nexclude:\n  - {CONFIG_DEBUG_FS: y}\n",
     "M:4: exclude names CONFIG_DEBUG_FS, which is not an axis"),
    ("axes:\n  CONFIG_MODULES: [y]\nexclude: {CONFIG_MODULES: y}\n", "M:3: exclude must be a list"),
    ("axes:\n  CONFIG_MODULES: [y]\nexclude:\n  - CONFIG_MODULES\n",
     "M:4: an exclude rule must be a mapping"),
    ("include:\n  - id: has space\n", "M:2: id 'has space' may only use letters, digits, _ . + -"),
    ("include:\n  - boot: sometimes\n", "M:2: boot must be true, false or {cmdline: ...}"),
    ("include:\n  - repair: maybe\n", "M:2: repair must be true or false"),
    ("repair: 1\ninclude: [{}]\n", "M:1: repair must be true or false"),
    ("kernel: {arch: riscv64}\ninclude: [{}]\n",
     "M:1: arch 'riscv64' is not supported yet: use one of arm64, x86_64"),
    ("base: mydefconfig\ninclude: [{}]\n",
     "M:1: base 'mydefconfig' is neither tinyconfig, allnoconfig, defconfig nor an existing file"),
    ("base: [tinyconfig]\ninclude: [{}]\n",
     "M:1: base must be tinyconfig, allnoconfig, defconfig or a config file path"),
    ("short_names: {CONFIG_MODULES: 'mods rule'}\ninclude: [{}]\n",
     "M:1: short name 'mods rule' may only use letters, digits, _ . + -"),
    ("include: [{}]\nbuild:\n  timeout: -5\n",
     "M:3: timeout must be a positive number of seconds"),
    ("include: [{}]\nbuild:\n  targets: kernel/module/\n",
     "M:3: targets must be a list of make targets"),
    ("include: [{}]\nbuild:\n  trees: shared\n",
     "M:3: trees must be one of nearest, lanes, own (got 'shared')"),
])
def test_shape_errors_name_line_and_fix(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


@pytest.mark.parametrize("cond, problem", [
    ("'MODULE_SIG &&'", "dups.o: condition 'MODULE_SIG &&' ends too early"),
    ("'(MODULE_SIG'", "dups.o: condition '(MODULE_SIG' ends too early"),
    ("'A B'", "dups.o: unexpected 'B' in 'A B'"),
    ("'A & B'", "dups.o: cannot read '& B' in condition 'A & B'"),
    ("''", "dups.o: empty condition"),
    ("[A]", "dups.o: condition must be y, n or an expression like MODULE_SIG && !FOO"),
])
def test_bad_expect_conditions_name_the_object_line(tmp_path: Path, cond: str, problem: str) -> None:
    msg = error(tmp_path, f"include: [{{}}]\nexpect:\n  kernel/module/:\n    main.o: y\n"
                f"    dups.o: {cond}\n")
    assert msg == f"M:5: {problem}"


def test_expect_keys_must_be_directories_and_objects(tmp_path: Path) -> None:
    assert error(tmp_path, "include: [{}]\nexpect:\n  kernel/module:\n    main.o: y\n") == \
        "M:3: expect key 'kernel/module' must be a directory like kernel/module/"
    assert error(tmp_path, "include: [{}]\nexpect:\n  kernel/module/:\n    main.c: y\n") == \
        "M:4: 'main.c' is not an object name like dups.o"


def test_expect_map_is_read_with_its_lines(tmp_path: Path) -> None:
    m = load(tmp_path, """
    include: [{}]
    expect:
      kernel/module/:
        main.o: y
        dups.o: MODULE_DEBUG_AUTOLOAD_DUPS
        signing.o: MODULE_SIG && !MODVERSIONS
    """)
    assert m.expect == {"kernel/module/": {"main.o": "y", "dups.o": "MODULE_DEBUG_AUTOLOAD_DUPS",
                                           "signing.o": "MODULE_SIG && !MODVERSIONS"}}
    assert m.expect_lines[("kernel/module/", "signing.o")] == 6


def test_build_settings_and_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "include: [{}]\n").build == BuildSettings(("kernel/module/",), 1800.0, 300.0)
    m = load(tmp_path, "include: [{}]\nbuild: {targets: [kernel/module/, lib/], timeout: 60, "
             "boot_timeout: 30.5}\n")
    assert m.build == BuildSettings(("kernel/module/", "lib/"), 60.0, 30.5)
    assert m.build.trees == "nearest"
    assert load(tmp_path, "include: [{}]\nbuild: {trees: own}\n").build.trees == "own"


def test_paths_are_relative_to_the_matrix_file(tmp_path: Path) -> None:
    (tmp_path / "base.config").write_text("CONFIG_MODULES=y\n")
    m = load(tmp_path, "kernel: {source: ../linux}\nbase: base.config\ninclude: [{}]\n")
    assert m.source == str((tmp_path.parent / "linux").resolve())
    assert m.base == str(tmp_path / "base.config")
    assert load(tmp_path, "include: [{}]\n").source == "debian"
    assert load(tmp_path, "include: [{}]\n").srcarch == "x86"


def test_a_missing_matrix_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such matrix file: pass an existing matrix.yaml"):
        load_matrix(tmp_path / "nope.yaml")


# --- fragments and the requested config ---------------------------------------------------------

def test_missing_fragment_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "frags").mkdir()
    (tmp_path / "frags/debug.config").write_text("CONFIG_DEBUG_FS=y\n")
    msg = error(tmp_path, "fragments:\n  - frags/debug.config\n  - frags/missing.config\n"
                "include: [{}]\n")
    assert msg.startswith("M:3: fragment 'frags/missing.config' does not exist")


def test_requested_config_layers_fragments_common_and_own_values(tmp_path: Path) -> None:
    (tmp_path / "frags").mkdir()
    (tmp_path / "frags/a.config").write_text("CONFIG_MODULES=y\nCONFIG_DEBUG_FS=y\n"
                                             "CONFIG_LOCALVERSION=\"-frag\"\n")
    (tmp_path / "frags/b.config").write_text("# CONFIG_DEBUG_FS is not set\nCONFIG_MODULE_SIG=y\n")
    m = load(tmp_path, """
    fragments: [frags/a.config, frags/b.config]
    config:
      CONFIG_MODULE_SIG: n
      CONFIG_LOCALVERSION: -common
    include:
      - id: own
        config: {CONFIG_LOCALVERSION: -own, CONFIG_PHYSICAL_START: "1000000", CONFIG_MODULES: y}
    """)
    assert m.fragment_files == (tmp_path / "frags/a.config", tmp_path / "frags/b.config")
    check_against_tree(m, SYMBOLS)
    got = requested_config(m, m.combination("own"), SYMBOLS)
    assert got == {"CONFIG_DEBUG_FS": "n", "CONFIG_MODULE_SIG": "n",
                   "CONFIG_LOCALVERSION": '"-own"', "CONFIG_PHYSICAL_START": "0x1000000",
                   "CONFIG_MODULES": "y"}
    extra = requested_config(m, m.combination("own"), SYMBOLS, {"CONFIG_MODULES": "n",
                                                                "CONFIG_KALLSYMS": "y"})
    assert extra["CONFIG_MODULES"] == "y"  # the combination's own value wins over extras
    assert extra["CONFIG_KALLSYMS"] == "y"


# --- against the tree -------------------------------------------------------------------------

def tree_error(tmp_path: Path, text: str) -> str:
    m = load(tmp_path, text)
    with pytest.raises(InputError) as info:
        check_against_tree(m, SYMBOLS)
    return info.value.message.replace(str(m.path), "M")


def test_unknown_symbol_gets_a_close_match_hint(tmp_path: Path) -> None:
    msg = tree_error(tmp_path, "axes:\n  CONFIG_MODULE_DEBUG_AUTOLOAD_DUP: [y, n]\n")
    assert msg == ("M:1: CONFIG_MODULE_DEBUG_AUTOLOAD_DUP is not defined by any Kconfig file in "
                   "this kernel tree: did you mean CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS, "
                   "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE, CONFIG_MODULE_DEBUG?")


def test_unknown_symbol_without_a_close_match(tmp_path: Path) -> None:
    msg = tree_error(tmp_path, "config:\n  CONFIG_MODULES: y\n  CONFIG_ZZZ_QQQ: y\ninclude: [{}]\n")
    assert msg == ("M:3: CONFIG_ZZZ_QQQ is not defined by any Kconfig file in this kernel tree: "
                   "check the spelling")


def test_unknown_symbol_in_an_expect_condition(tmp_path: Path) -> None:
    msg = tree_error(tmp_path, "include: [{}]\nexpect:\n  kernel/module/:\n    main.o: y\n"
                     "    dups.o: MODULE_DEBUG && !MODULE_SIGN\n")
    assert msg.startswith("M:5: CONFIG_MODULE_SIGN is not defined by any Kconfig file")
    assert "did you mean CONFIG_MODULE_SIG" in msg


def test_unknown_symbol_in_a_fragment_names_the_fragment(tmp_path: Path) -> None:
    (tmp_path / "f.config").write_text("CONFIG_MODULES=y\nCONFIG_NOT_A_SYMBOL=y\n")
    m = load(tmp_path, "fragments: [f.config]\ninclude: [{}]\n")
    with pytest.raises(InputError, match=re.escape(str(tmp_path / "f.config")) +
                       r".*CONFIG_NOT_A_SYMBOL is not defined"):
        check_against_tree(m, SYMBOLS)


def test_unknown_symbol_in_a_fragment_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "f.config").write_text("CONFIG_MODULES=y\nCONFIG_NOT_A_SYMBOL=y\n")
    m = load(tmp_path, "fragments: [f.config]\ninclude: [{}]\n")
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'f.config'}:2: ")):
        check_against_tree(m, SYMBOLS)


@pytest.mark.parametrize("symbol, value, problem", [
    ("CONFIG_MODULES", "m", "a bool takes y or n"),
    ("CONFIG_TEST_DUPS_TRISTATE", "yes-please", "a tristate takes y, m or n"),
    ("CONFIG_LOG_BUF_SHIFT", "big", "an int takes a decimal number"),
    ("CONFIG_PHYSICAL_START", "0xZZ", "a hex takes a hexadecimal number"),
])
def test_values_are_type_checked_against_the_tree(tmp_path: Path, symbol: str, value: str,
                                                  problem: str) -> None:
    msg = tree_error(tmp_path, f"include:\n  - id: a\n    config:\n      {symbol}: {value}\n")
    assert msg == f"M:2: {symbol}={value}: {problem}"


def test_a_well_typed_matrix_passes_the_tree_check(tmp_path: Path) -> None:
    m = load(tmp_path, """
    config: {CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}
    axes:
      CONFIG_TEST_DUPS_TRISTATE: [y, m, n]
      CONFIG_LOG_BUF_SHIFT: [12, 25]
      CONFIG_LOCALVERSION: [-anything goes]
      CONFIG_PHYSICAL_START: ["0x200000"]
    expect:
      kernel/module/:
        dups.o: MODULE_DEBUG_AUTOLOAD_DUPS || (MODULE_STATS && !MODULES)
    """)
    check_against_tree(m, SYMBOLS)  # no error
    assert len(m.combinations) == 6
