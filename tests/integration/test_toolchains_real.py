"""Toolchains on the real kernel in real containers: the object tier built with gcc-11 and with
clang-16 (LLVM=-16) on the same matrix, as a `toolchain` axis.

Each combination's resolved .config must name its own compiler (Kconfig asks the compiler:
GCC_VERSION, CC_IS_CLANG), its link check must pass, and nothing one toolchain built may be
reused by the other: not the compiler cache, not the seed tree, not the output tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness import kconfig, resolve, session
from harness.pipeline import run_combination
from harness.settings import Job

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def write_matrix(path: Path, tree: Path) -> None:
    default = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    path.write_text(yaml.safe_dump({
        "kernel": {"source": str(tree), "toolchain": "gcc-11"},
        "base": "tinyconfig",
        "config": default["config"],
        "short_names": {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "dups"},
        "axes": {"toolchain": ["gcc-11", "clang-16"], "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": ["y"]},
        "build": {"targets": ["kernel/module/"]},
        "expect": default["expect"],  # the default matrix's map, from the seed Makefile
    }, sort_keys=False))


def test_gcc_11_and_clang_16_build_the_object_tier_apart(tmp_path, kernel_tree):
    path = tmp_path / "matrix.yaml"
    write_matrix(path, kernel_tree)
    settings, matrix = session.prepare_run(
        session.Options(matrix=path, results=tmp_path / "results", workers=1, jobs=2),
        say=lambda *_: None)
    assert [c.id for c in matrix.combinations] == ["gcc-11.dups-y", "clang-16.dups-y"]
    # the run's own seed is made whole before the builds, the other only up to its base
    # config: the clang-16 combination makes the rest of it
    from harness import seeds as seedsmod

    clang_seed = Path(settings.seeds["x86_64-clang-16"])
    assert seedsmod.is_made(Path(settings.seeds["x86_64-gcc-11"]))
    base_only = (clang_seed / seedsmod.BASE_MARKER).exists()
    assert base_only or seedsmod.is_made(clang_seed)  # made by an earlier run (a warm cache)
    prelude = (Path(settings.run_dir) / "seed.log").read_text()
    assert not [ln for ln in prelude.splitlines() if " prepare" in ln and "LLVM=-16" in ln]
    symbols = session.load_symbols(Path(settings.run_dir))
    records = {}
    for combo in matrix.combinations:
        records[combo.toolchain] = run_combination(Job(settings, matrix, combo, symbols,
                                                       settings.runner()))
    for name, record in records.items():
        assert record.verdict == "pass", (name, record.reasons)
        assert "dups.o" in record.link["kernel/module/"]["members"]
        assert record.toolchain == name and record.values["toolchain"] == name

    run_dir = Path(settings.run_dir)
    gcc = kconfig.parse_config((run_dir / "gcc-11.dups-y" / "config").read_text())
    clang = kconfig.parse_config((run_dir / "clang-16.dups-y" / "config").read_text())
    assert gcc.get("CONFIG_CC_IS_GCC") == "y" and gcc["CONFIG_GCC_VERSION"].startswith("11")
    assert clang.get("CONFIG_CC_IS_CLANG") == "y" and clang["CONFIG_CLANG_VERSION"].startswith("16")
    assert "CONFIG_CC_IS_CLANG" not in gcc
    # Kconfig asks the compiler: the resolve step resolved each with its own toolchain (the
    # .config it found is the one the build made), and the two differ
    found = resolve.load(run_dir)
    for name, record in records.items():
        assert found[f"{name}.dups-y"].config_hash == record.resolved_config_hash, name
    assert found["gcc-11.dups-y"].config_hash != found["clang-16.dups-y"].config_hash
    # the build log shows the make command line that chose each toolchain
    assert "CC=ccache gcc-11" in (run_dir / "gcc-11.dups-y" / "build.log").read_text()
    assert "LLVM=-16" in (run_dir / "clang-16.dups-y" / "build.log").read_text()
    assert seedsmod.is_made(clang_seed)
    if base_only:
        assert "made now, from its base config" in \
            (run_dir / "clang-16.dups-y" / "build.log").read_text()

    # nothing shared: a seed, a compiler cache and an output tree each
    seeds = settings.seeds
    assert set(seeds) == {"x86_64-gcc-11", "x86_64-clang-16"}
    assert seeds["x86_64-gcc-11"] != seeds["x86_64-clang-16"]
    seed_clang = kconfig.parse_config((Path(seeds["x86_64-clang-16"]) / ".config").read_text())
    assert seed_clang.get("CONFIG_CC_IS_CLANG") == "y"
    assert records["gcc-11"].output_dir != records["clang-16"].output_dir
    assert Path(records["gcc-11"].output_dir).parent != Path(records["clang-16"].output_dir).parent
    caches = {settings.ccache_dir(v) for v in seeds}
    assert len(caches) == 2 and all(c.is_dir() and any(c.iterdir()) for c in caches)
    session.finish_run(settings)  # the reports, as at the end of `kmatrix run`
    meta = json.loads((run_dir / "clang-16.dups-y" / "metadata.json").read_text())
    assert meta["build"]["toolchain"] == "clang-16"
    assert meta["compiler"]["version_full"].startswith("Debian clang version 16")
    assert "Built with: x86_64 clang-16 (1), x86_64 gcc-11 (1)" in (run_dir / "summary.md").read_text()


def test_clang_16_cross_builds_the_object_tier_for_arm64(tmp_path, kernel_tree):
    """`toolchain: clang-16` with `arch: arm64`: LLVM=-16 and no CROSS_COMPILE (clang targets
    arm64 from SRCARCH); the resolved config is clang's and arm64's, and the link check holds."""
    default = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump({
        "kernel": {"source": str(kernel_tree), "arch": "arm64", "toolchain": "clang-16"},
        "base": "tinyconfig",
        "config": default["config"],
        "include": [{"id": "arm64-clang-dups", "config": {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}}],
        "build": {"targets": ["kernel/module/"]},
        "expect": default["expect"],
    }, sort_keys=False))
    settings, matrix = session.prepare_run(
        session.Options(matrix=path, results=tmp_path / "results", workers=1, jobs=2),
        say=lambda *_: None)
    symbols = session.load_symbols(Path(settings.run_dir))
    combo = matrix.combination("arm64-clang-dups")
    record = run_combination(Job(settings, matrix, combo, symbols, settings.runner()))
    assert record.verdict == "pass", record.reasons
    assert "dups.o" in record.link["kernel/module/"]["members"]
    assert record.arch == "arm64" and record.toolchain == "clang-16"
    config = kconfig.parse_config((Path(settings.run_dir) / combo.id / "config").read_text())
    assert config.get("CONFIG_CC_IS_CLANG") == "y" and config.get("CONFIG_ARM64") == "y"
    log = (Path(settings.run_dir) / combo.id / "build.log").read_text()
    assert "ARCH=arm64" in log and "LLVM=-16" in log and "CROSS_COMPILE=" not in log
