"""The link check: the condition language, archive members of thin (Kbuild's built-in.a) and
regular ar archives, and missing/unexpected objects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import linkcheck
from harness.linkcheck import ConditionError, LinkReport

needs_ar = pytest.mark.skipif(shutil.which("ar") is None, reason="binutils `ar` not installed")

CONFIG = {"CONFIG_MODULES": "y", "CONFIG_MODULE_SIG": "y", "CONFIG_TEST_DUPS_TRISTATE": "m",
          "CONFIG_MODVERSIONS": "n"}


# --- conditions -------------------------------------------------------------------------------

def test_tokenize() -> None:
    assert linkcheck.tokenize(" !(A&&B)||CONFIG_C_2 ") == ["!", "(", "A", "&&", "B", ")", "||",
                                                          "CONFIG_C_2"]


def test_condition_symbols() -> None:
    assert linkcheck.condition_symbols("y") == set()
    assert linkcheck.condition_symbols("MODULE_SIG && !(CONFIG_KALLSYMS || n)") == \
        {"CONFIG_MODULE_SIG", "CONFIG_KALLSYMS"}


@pytest.mark.parametrize("cond, expected", [
    ("y", True), ("n", False),
    ("MODULES", True), ("CONFIG_MODULES", True),
    ("MODVERSIONS", False),  # "n"
    ("KALLSYMS", False),  # absent
    ("TEST_DUPS_TRISTATE", False),  # m is not built in
    ("!KALLSYMS", True), ("!!MODULES", True), ("!MODULES", False),
    ("MODULES && MODULE_SIG", True), ("MODULES && KALLSYMS", False), ("KALLSYMS && MODULES", False),
    ("KALLSYMS || MODULES", True), ("MODULES || KALLSYMS", True), ("KALLSYMS || n", False),
    # && binds tighter than ||
    ("MODULES || KALLSYMS && n", True), ("KALLSYMS && n || MODULES", True),
    ("(MODULES || KALLSYMS) && n", False), ("!(MODULES && KALLSYMS)", True),
    ("!MODULES || !MODULE_SIG", False), ("((MODULES))", True),
    ("MODULES && (KALLSYMS || !MODVERSIONS) && MODULE_SIG", True),
])
def test_evaluate(cond: str, expected: bool) -> None:
    assert linkcheck.evaluate(cond, CONFIG) is expected


@pytest.mark.parametrize("cond, message", [
    ("", "empty condition"),
    ("   ", "empty condition"),
    ("A &&", "condition 'A &&' ends too early"),
    ("!", "condition '!' ends too early"),
    ("(A", "condition '(A' ends too early"),
    ("(A B)", "missing ')' in '(A B)'"),
    ("A)", "unexpected ')' in 'A)'"),
    ("()", "unexpected ')' in '()'"),
    ("A B", "unexpected 'B' in 'A B'"),
    ("&& A", "unexpected '&&' in '&& A'"),
    ("A || || B", "unexpected '||' in 'A || || B'"),
    ("A & B", "cannot read '& B' in condition 'A & B'"),
    ("A = y", "cannot read '= y' in condition 'A = y'"),
])
def test_condition_errors(cond: str, message: str) -> None:
    with pytest.raises(ConditionError) as info:
        linkcheck.evaluate(cond, CONFIG)
    assert str(info.value) == message


# --- archives ---------------------------------------------------------------------------------

def ar_archive(path: Path, members: list[str], thin: bool, symtab: bool = False) -> Path:
    """A GNU ar archive written byte by byte (names in the // table, as GNU ar does for thin
    archives); a thin archive's members are references, with no bodies. `symtab` adds a GNU
    symbol table (the `/` member, which has a body even in a thin archive)."""
    table = b"".join(m.encode() + b"/\n" for m in members)
    out = bytearray(b"!<thin>\n" if thin else b"!<arch>\n")

    def header(name: str, size: int) -> bytes:
        return f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{size:<10}`\n".encode()

    if symtab:
        body = b"\x00\x00\x00\x01\x00\x00\x00\x00dups_request\x00"  # 21 bytes: odd
        out += header("/", len(body)) + body + b"\n"
    out += header("//", len(table)) + table + (b"\n" if len(table) % 2 else b"")
    offset = 0
    for name in members:
        body = b"" if thin else b"\x7fELF body of " + name.encode()
        out += header(f"/{offset}", 5 if thin else len(body)) + body
        out += b"\n" if len(body) % 2 else b""
        offset += len(name) + 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def objects(tmp_path: Path, names: list[str], directory: str = "kernel/module") -> list[str]:
    paths = []
    for name in names:
        obj = tmp_path / directory / name
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(b"object " + name.encode() + b"\n")  # odd and even sizes
        paths.append(f"{directory}/{name}")
    return paths


@needs_ar
def test_members_of_a_kbuild_thin_archive(tmp_path: Path) -> None:
    """Made like Kbuild's cmd_ar_builtin: `ar cDPrST built-in.a <objects>`."""
    names = ["main.o", "strict_rwx.o", "kmod.o", "dups.o", "a_name_longer_than_16_chars.o"]
    subprocess.run(["ar", "cDPrST", "kernel/module/built-in.a", *objects(tmp_path, names)],
                   cwd=tmp_path, check=True)
    archive = tmp_path / "kernel/module/built-in.a"
    assert archive.read_bytes().startswith(b"!<thin>\n")
    assert linkcheck.archive_members(archive) == names


@needs_ar
def test_thin_archive_members_are_paths_relative_to_the_archive(tmp_path: Path) -> None:
    subprocess.run(["ar", "rcT", "lib.a", *objects(tmp_path, ["x.o", "y.o"], "lib")],
                   cwd=tmp_path, check=True)
    assert linkcheck.archive_members(tmp_path / "lib.a") == ["lib/x.o", "lib/y.o"]


@needs_ar
@pytest.mark.skipif(shutil.which("as") is None, reason="binutils `as` not installed")
def test_thin_archive_of_real_objects_with_a_symbol_table(tmp_path: Path) -> None:
    names = ["dups.o", "a_name_longer_than_16_chars.o"]
    for name in names:
        src = tmp_path / (name + ".s")
        src.write_text(f".globl sym_{name[:-2]}\nsym_{name[:-2]}:\n\tret\n")
        subprocess.run(["as", "-o", name, str(src)], cwd=tmp_path, check=True)
    subprocess.run(["ar", "rcT", "built-in.a", *names], cwd=tmp_path, check=True)
    data = (tmp_path / "built-in.a").read_bytes()
    assert data.startswith(b"!<thin>\n/ ")  # the symbol table comes first
    assert linkcheck.archive_members(tmp_path / "built-in.a") == names


@needs_ar
def test_members_of_a_regular_archive_short_and_long_names(tmp_path: Path) -> None:
    names = ["main.o", "tracking.o", "a_name_longer_than_16_chars.o", "dups.o", "odd.o"]
    subprocess.run(["ar", "rcD", "reg.a", *objects(tmp_path, names)], cwd=tmp_path, check=True)
    data = (tmp_path / "reg.a").read_bytes()
    assert data.startswith(b"!<arch>\n") and b"main.o/" in data  # short names inline
    assert linkcheck.archive_members(tmp_path / "reg.a") == names


@needs_ar
@pytest.mark.parametrize("thin", [True, False])
@pytest.mark.parametrize("symtab", [True, False])
def test_the_test_writer_agrees_with_gnu_ar(tmp_path: Path, thin: bool, symtab: bool) -> None:
    names = ["main.o", "dups.o", "a_name_longer_than_16_chars.o"]
    objects(tmp_path, names)
    archive = ar_archive(tmp_path / "kernel/module/built-in.a", names, thin, symtab)
    listed = subprocess.run(["ar", "t", str(archive)], capture_output=True, text=True,
                            check=True, cwd=tmp_path).stdout.split()
    assert [Path(p).name for p in listed] == names


@pytest.mark.parametrize("thin", [True, False])
@pytest.mark.parametrize("symtab", [True, False])
def test_members_of_hand_written_archives(tmp_path: Path, thin: bool, symtab: bool) -> None:
    names = ["main.o", "kmod.o", "stats.o", "debug_kmemleak.o"]
    archive = ar_archive(tmp_path / "a.a", names, thin, symtab)
    assert linkcheck.archive_members(archive) == names


def test_empty_archives_have_no_members(tmp_path: Path) -> None:
    for magic in (b"!<arch>\n", b"!<thin>\n"):
        (tmp_path / "e.a").write_bytes(magic)
        assert linkcheck.archive_members(tmp_path / "e.a") == []


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "built-in.a").write_bytes(b"\x7fELF\x02\x01\x01")
    with pytest.raises(ValueError, match="is not an ar archive"):
        linkcheck.archive_members(tmp_path / "built-in.a")


# --- the check --------------------------------------------------------------------------------

EXPECT = {"main.o": "y", "kmod.o": "y", "dups.o": "MODULE_DEBUG_AUTOLOAD_DUPS",
          "signing.o": "MODULE_SIG", "never.o": "n"}


def test_link_check_passes_when_members_match() -> None:
    report = linkcheck.link_check("kernel/module/", EXPECT, {"CONFIG_MODULE_SIG": "y"},
                                  ["kernel/module/main.o", "kernel/module/signing.o", "kmod.o"])
    assert report == LinkReport("kernel/module/", ["kmod.o", "main.o", "signing.o"],
                                ["kmod.o", "main.o", "signing.o"], [], [])
    assert report.ok and report.describe() == []


def test_link_check_missing_and_unexpected() -> None:
    config = {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y", "CONFIG_MODULE_SIG": "n"}
    report = linkcheck.link_check("kernel/module", EXPECT, config,
                                  ["main.o", "kmod.o", "signing.o", "brand_new.o"])
    assert not report.ok
    assert report.expected == ["dups.o", "kmod.o", "main.o"]
    assert report.missing == ["dups.o"]
    assert report.unexpected == ["brand_new.o", "signing.o"]
    assert report.describe() == [
        "kernel/module: expected but not linked: dups.o",
        "kernel/module: linked but not expected: brand_new.o, signing.o",
    ]


def test_link_check_the_dups_wiring_bug_is_caught() -> None:
    """A Makefile that wires dups.o to MODULE_DEBUG instead of ..._AUTOLOAD_DUPS links it in a
    tree where only MODULE_DEBUG is on: the check calls it unexpected."""
    config = {"CONFIG_MODULE_DEBUG": "y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "n"}
    report = linkcheck.link_check("kernel/module/", EXPECT, config,
                                  ["kernel/module/main.o", "kernel/module/kmod.o",
                                   "kernel/module/dups.o"])
    assert (report.missing, report.unexpected) == ([], ["dups.o"])


def test_link_check_members_of_subdirectories_keep_their_path() -> None:
    report = linkcheck.link_check("kernel/", {"fork.o": "y"}, {},
                                  ["kernel/fork.o", "kernel/module/main.o"])
    assert report.unexpected == ["module/main.o"]
