"""What a run remembers in the cache between runs so that a warm rerun does not redo it: the
tree's symbol scan (keyed by its Kconfig files' fingerprint) and the builder image's package
list (keyed by the image id). Each is redone when its key changes or its memo is damaged."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from testhelpers import MINI_TREE

from harness import image, kconfig, resolve, session


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KMATRIX_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "tree"
    shutil.copytree(MINI_TREE, copy)
    return copy


def test_kconfig_files_skip_hidden_directories_and_all_of_documentation_but_its_top(
        tree: Path) -> None:
    (tree / ".git" / "x").mkdir(parents=True)
    (tree / ".git" / "x" / "Kconfig").write_text("config HIDDEN\n\tbool\n")
    (tree / "Documentation" / "sub").mkdir(parents=True)
    (tree / "Documentation" / "sub" / "Kconfig").write_text("config DOCSUB\n\tbool\n")
    (tree / "Documentation" / "Kconfig").write_text("config DOCTOP\n\tbool\n")
    files = kconfig.kconfig_files(tree)
    assert files == sorted(files)
    assert tree / "Documentation" / "Kconfig" in files
    assert not any(".git" in p.parts or "sub" in p.parts for p in files)
    symbols = kconfig.scan_symbols(tree, files)
    assert "CONFIG_DOCTOP" in symbols and "CONFIG_HIDDEN" not in symbols
    assert "CONFIG_DOCSUB" not in symbols


def test_the_symbol_scan_is_remembered_until_a_kconfig_file_changes(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, fingerprint = session.tree_symbols(tree)
    assert fingerprint == resolve.kconfig_fingerprint(tree)
    assert first.types == kconfig.scan_symbols(tree).types

    def no_scan(*_a: object) -> object:
        raise AssertionError("an unchanged tree is scanned again")

    monkeypatch.setattr(kconfig, "scan_symbols", no_scan)
    again, same = session.tree_symbols(tree)
    assert (again.types, same) == (first.types, fingerprint)

    monkeypatch.undo()
    monkeypatch.setenv("KMATRIX_CACHE", str(tree.parent / "cache"))
    kconfig_file = kconfig.kconfig_files(tree)[0]
    kconfig_file.write_text(kconfig_file.read_text() + "\nconfig KMATRIX_ADDED\n\tbool\n")
    os.utime(kconfig_file, ns=(1, 1))
    changed, other = session.tree_symbols(tree)
    assert other != fingerprint and "CONFIG_KMATRIX_ADDED" in changed


def test_a_damaged_symbol_memo_is_scanned_again(tree: Path) -> None:
    symbols, fingerprint = session.tree_symbols(tree)
    (memo,) = (tree.parent / "cache" / "symbols").iterdir()
    for damage in ("{not json", json.dumps(["a", "list"]), json.dumps({"X": 1})):
        memo.write_text(damage)
        again, same = session.tree_symbols(tree)
        assert (again.types, same) == (symbols.types, fingerprint)
        assert json.loads(memo.read_text()) == symbols.types


def _client(listings: list[int]) -> SimpleNamespace:
    def run(*_a: object, **_k: object) -> SimpleNamespace:
        listings.append(1)
        return SimpleNamespace(wait=lambda timeout: None, remove=lambda force: None,
                               logs=lambda stdout, stderr: b"bash\t5.2\nmake\t4.3\n")
    return SimpleNamespace(containers=SimpleNamespace(run=run))


def test_the_package_list_is_remembered_by_image_id(tmp_path: Path) -> None:
    listings: list[int] = []
    client = _client(listings)
    want = {"bash": "5.2", "make": "4.3"}
    assert image.packages_of("kmatrix-builder:x", "sha256:aa", client, tmp_path) == want
    assert image.packages_of("kmatrix-builder:x", "sha256:aa", client, tmp_path) == want
    assert len(listings) == 1
    assert image.packages_of("kmatrix-builder:y", "sha256:bb", client, tmp_path) == want
    assert len(listings) == 2  # another image is listed


def test_a_damaged_package_memo_is_listed_again(tmp_path: Path) -> None:
    listings: list[int] = []
    client = _client(listings)
    image.packages_of("kmatrix-builder:x", "sha256:aa", client, tmp_path)
    (memo,) = (tmp_path / "image-packages").iterdir()
    for damage in ("", "{}", json.dumps({"bash": 5})):
        memo.write_text(damage)
        assert image.packages_of("kmatrix-builder:x", "sha256:aa", client, tmp_path) == \
            {"bash": "5.2", "make": "4.3"}
    assert len(listings) == 4
