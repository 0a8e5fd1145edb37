"""Sampling on the real kernel in real containers: a break that needs two options.

A throwaway copy of the kernel tree (hard links: seconds, and the original is never written)
gets a `kernel/module/main.c` that fails to compile only when CONFIG_PROC_FS and CONFIG_SYSFS
are both y. The pairwise sample over three kernel/module/ options finds it (and reports 100 %
pairwise coverage after Kconfig); the one-at-a-time matrix of the same options passes;
`bisect-config` from the one-at-a-time base to the failing pairwise config reduces it to
exactly those two options. Object tier only (`make kernel/module/`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from filelock import FileLock
from testhelpers import run_kmatrix

pytestmark = pytest.mark.integration

BREAK = """
#if IS_ENABLED(CONFIG_PROC_FS) && IS_ENABLED(CONFIG_SYSFS)
#error "kmatrix test: PROC_FS and SYSFS together break kernel/module/main.c"
#endif
"""

EXPECT = """
build: {{targets: [kernel/module/], timeout: 900}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    dups.o: MODULE_DEBUG_AUTOLOAD_DUPS
    decompress.o: MODULE_DECOMPRESS
    signing.o: MODULE_SIG
    livepatch.o: LIVEPATCH
    tree_lookup.o: MODULES_TREE_LOOKUP
    debug_kmemleak.o: DEBUG_KMEMLEAK
    kallsyms.o: KALLSYMS
    procfs.o: PROC_FS
    sysfs.o: SYSFS
    kdb.o: KGDB_KDB
    version.o: MODVERSIONS
    tracking.o: MODULE_UNLOAD_TAINT_TRACKING
    stats.o: MODULE_STATS
"""  # every object of the Makefile: random configs switch any of them on

PAIRWISE = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y}}
sample: {{strategy: pairwise, seed: 3}}
axes:
  CONFIG_PROC_FS: [y, n]
  CONFIG_SYSFS: [y, n]
  CONFIG_KALLSYMS: [y, n]
""" + EXPECT

ONE_AT_A_TIME = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y}}
include:
  - {{id: base, config: {{}}}}
  - {{id: procfs, config: {{CONFIG_PROC_FS: y}}}}
  - {{id: sysfs, config: {{CONFIG_SYSFS: y}}}}
  - {{id: kallsyms, config: {{CONFIG_KALLSYMS: y}}}}
""" + EXPECT


def broken_tree(kernel_tree: Path, cache: Path) -> Path:
    """A hard-link copy of the tree with the two-option break in kernel/module/main.c, made
    once and cached (main.c is a new file: the original tree's main.c is never written)."""
    key = hashlib.sha256(str(kernel_tree.resolve()).encode()).hexdigest()[:12]
    root = cache / "sampling-test-tree" / key
    root.mkdir(parents=True, exist_ok=True)
    tree = root / "linux"
    with FileLock(str(root / "make.lock")):
        if (root / "done").exists():
            return tree
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["cp", "-al", str(kernel_tree), str(tree)], check=True)
        main_c = tree / "kernel" / "module" / "main.c"
        text = main_c.read_text()
        main_c.unlink()
        main_c.write_text(text + BREAK)
        (root / "done").write_text("ok\n")
    return tree


def run(tmp_path: Path, name: str, text: str, tree: Path, *args: str) -> tuple[int, Path, str]:
    matrix = tmp_path / f"{name}.yaml"
    matrix.write_text(text.format(tree=tree))
    results = tmp_path / f"results-{name}"
    done = run_kmatrix("run", str(matrix), "--results", str(results), "--workers", "1",
                       "--jobs", "2", *args, timeout=1800)
    print(done.stdout[-4000:], done.stderr[-2000:], flush=True)
    return done.returncode, (results / "latest").resolve(), done.stdout


def records(run_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("*/record.json")}


def check_pairwise(pair_dir: Path, out: str) -> list[str]:
    """The pairwise run failed exactly the rows with both options on, with 100 % coverage."""
    recs = records(pair_dir)
    failing = [c for c, r in recs.items() if r["verdict"] != "pass"]
    assert failing and all(recs[c]["verdict"] == "build-error" for c in failing), recs
    for c in failing:  # exactly the rows that hold both
        assert recs[c]["values"]["CONFIG_PROC_FS"] == "y" and recs[c]["values"]["CONFIG_SYSFS"] == "y"
        assert any("PROC_FS and SYSFS together" in r for r in recs[c]["reasons"])
    assert all(r["verdict"] == "pass" for c, r in recs.items() if c not in failing)
    assert len(recs) < 8  # a sample, not the product
    cov = json.loads((pair_dir / "coverage.json").read_text())
    assert cov["covered"] == cov["total"] == 12 and not cov["uncovered"], cov
    assert "2-wise coverage after Kconfig: 12/12 satisfiable 2-tuples (100.0 %)" in \
        (pair_dir / "summary.md").read_text()
    assert "100.0 %" in out
    return failing


@pytest.mark.xdist_group("sampling-break")
def test_the_pairwise_sample_finds_a_break_that_needs_two_options(
        tmp_path, kernel_tree, kmatrix_cache, builder_image):
    tree = broken_tree(kernel_tree, kmatrix_cache)
    code, pair_dir, out = run(tmp_path, "pairwise", PAIRWISE, tree)
    assert code == 1
    check_pairwise(pair_dir, out)


@pytest.mark.sampling_full
@pytest.mark.xdist_group("sampling-break")
def test_pairwise_finds_the_two_option_break_one_at_a_time_misses_it_and_bisect_reduces_it(
        tmp_path, kernel_tree, kmatrix_cache, builder_image):
    tree = broken_tree(kernel_tree, kmatrix_cache)
    assert BREAK not in (kernel_tree / "kernel" / "module" / "main.c").read_text()

    code, one_dir, _ = run(tmp_path, "one", ONE_AT_A_TIME, tree)
    assert code == 0, "the one-at-a-time matrix must pass: the break needs two options"
    assert {c: r["verdict"] for c, r in records(one_dir).items()} == \
        {"base": "pass", "procfs": "pass", "sysfs": "pass", "kallsyms": "pass"}

    code, pair_dir, out = run(tmp_path, "pairwise", PAIRWISE, tree)
    assert code == 1
    failing = check_pairwise(pair_dir, out)

    done = run_kmatrix("bisect-config", str(tmp_path / "pairwise.yaml"),
                       "--good", str(one_dir / "base" / "config"),
                       "--bad", str(pair_dir / failing[0] / "config"),
                       "--results", str(tmp_path / "results-bisect"), "--jobs", "2",
                       timeout=1800)
    print(done.stdout[-3000:], done.stderr[-2000:])
    assert done.returncode == 0, done.stderr
    saved = json.loads(next((tmp_path / "results-bisect").glob("bisect-config-*/bisect-config.json"))
                       .read_text())
    assert sorted(saved["culprits"]) == ["CONFIG_PROC_FS=y", "CONFIG_SYSFS=y"], saved["message"]


RANDOM = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y}}
axes:
  CONFIG_PROC_FS: [y, n]
  CONFIG_SYSFS: [y, n]
""" + EXPECT


@pytest.mark.sampling_full
@pytest.mark.xdist_group("sampling-break")
def test_randconfig_is_reproducible_and_a_failing_random_config_is_reduced(
        tmp_path, kernel_tree, kmatrix_cache, builder_image):
    tree = broken_tree(kernel_tree, kmatrix_cache)
    # seeds 0x12 and 0x13 over the two axes: 0x12 turns PROC_FS on, 0x13 both (seen)
    code, run_dir, out = run(tmp_path, "random", RANDOM, tree, "--randconfig", "2", "--seed", "18",
                             "--randconfig-over", "axes")
    info = json.loads((run_dir / "randconfig.json").read_text())
    assert [c["seed"] for c in info["configs"]] == ["0x00000012", "0x00000013"]
    recs = records(run_dir)
    assert set(recs) == {c["id"] for c in info["configs"]}
    both = [c for c, r in recs.items()
            if r["requested"].get("CONFIG_PROC_FS") == "y" and r["requested"].get("CONFIG_SYSFS") == "y"]
    assert both and len(both) < len(recs), "pick other seeds: one config must hold both"
    assert code == 1 and all(recs[c]["verdict"] == "build-error" for c in both)
    assert all(r["verdict"] == "pass" for c, r in recs.items() if c not in both)
    reduced = [c for c in info["configs"] if c["id"] in both]
    assert all(sorted(c["reduced"]["culprits"]) == ["CONFIG_PROC_FS=y", "CONFIG_SYSFS=y"]
               for c in reduced), reduced
    assert "Failing random configs, reduced" in (run_dir / "summary.md").read_text()

    # the same seed gives the same configs (Kconfig only: no build)
    run_kmatrix("run", str(tmp_path / "random.yaml"), "--results", str(tmp_path / "again"),
                        "--workers", "1", "--jobs", "2", "--randconfig", "2", "--seed", "18",
                        "--randconfig-over", "axes", "--", "--collect-only", timeout=900)
    info2 = json.loads(next((tmp_path / "again").glob("*/randconfig.json")).read_text())
    assert [c["config_hash"] for c in info2["configs"]] == [c["config_hash"] for c in info["configs"]]
