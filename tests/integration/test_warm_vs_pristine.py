"""Warm builds are trustworthy: a combination built incrementally in a tree that last held a
different config (options that change generated headers included) gets the same verdict and the
same kernel/module/ members as a pristine build from an empty directory without ccache."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_core_real import run_one

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("warm-vs-pristine")]

MATRIX = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    dups.o: MODULE_DEBUG_AUTOLOAD_DUPS
    livepatch.o: LIVEPATCH
    tree_lookup.o: MODULES_TREE_LOOKUP
    kallsyms.o: KALLSYMS
    sysfs.o: SYSFS
    stats.o: MODULE_STATS
include:
  - id: it-warm
    config: {values}
"""
LIVEPATCH = ("{CONFIG_DEBUG_KERNEL: y, CONFIG_FTRACE: y, CONFIG_FUNCTION_TRACER: y, "
             "CONFIG_DYNAMIC_FTRACE: y, CONFIG_KALLSYMS: y, CONFIG_KALLSYMS_ALL: y, "
             "CONFIG_SYSFS: y, CONFIG_LIVEPATCH: y}")
DUPS_STATS = "{CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y, CONFIG_MODULE_STATS: y}"


def write(tmp_path: Path, tree: Path, values: str, name: str) -> Path:
    path = tmp_path / name / "matrix.yaml"
    path.parent.mkdir()
    path.write_text(MATRIX.format(tree=tree, values=values))
    return path


def outcome(record) -> tuple[str, list[str]]:
    return record.verdict, record.link["kernel/module/"]["members"]


@pytest.mark.parametrize("first,second", [(LIVEPATCH, DUPS_STATS), (DUPS_STATS, LIVEPATCH)],
                         ids=["livepatch-then-dups", "dups-then-livepatch"])
def test_warm_flip_equals_pristine(tmp_path, kernel_tree, first, second):
    run_one(tmp_path, write(tmp_path, kernel_tree, first, "before"), "it-warm")
    warm, _ = run_one(tmp_path, write(tmp_path, kernel_tree, second, "warm"), "it-warm")
    pristine, pristine_dir = run_one(tmp_path, write(tmp_path, kernel_tree, second, "pristine"),
                                     "it-warm", pristine=True)
    assert warm.verdict == "pass", warm.reasons
    assert outcome(warm) == outcome(pristine)
    assert warm.resolved_config_hash == pristine.resolved_config_hash
    # the pristine build really started from nothing: host tools built, tree removed after
    assert "HOSTCC  scripts/basic/fixdep" in (pristine_dir / "build.log").read_text()
    assert not Path(pristine.output_dir).exists()
