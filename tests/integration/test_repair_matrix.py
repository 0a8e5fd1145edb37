"""Issue 4's promise: a matrix written with only the options a maintainer cares about plus
`repair: true` builds what the hand-written matrix builds. Checked on the combinations of the
default matrix whose dependencies are not obvious, by the resolve step (real olddefconfig):
the repaired request resolves to exactly the .config of the hand-written one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import resolve, session

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("repair-matrix")]

MATRIX = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}}
{repair}
include:
{includes}
"""
HAND_WRITTEN = {  # as in matrix.yaml
    "taint-tracking": "{CONFIG_MODULE_UNLOAD: y, CONFIG_MODULE_UNLOAD_TAINT_TRACKING: y}",
    "decompress": "{CONFIG_MODULE_COMPRESS: y, CONFIG_MODULE_COMPRESS_XZ: y, "
                  "CONFIG_MODULE_DECOMPRESS: y}",
    "kdb": "{CONFIG_DEBUG_KERNEL: y, CONFIG_KGDB: y, CONFIG_KGDB_KDB: y}",
    "livepatch": "{CONFIG_DEBUG_KERNEL: y, CONFIG_FTRACE: y, CONFIG_FUNCTION_TRACER: y, "
                 "CONFIG_DYNAMIC_FTRACE: y, CONFIG_KALLSYMS: y, CONFIG_KALLSYMS_ALL: y, "
                 "CONFIG_SYSFS: y, CONFIG_LIVEPATCH: y}",
}
CARED_ABOUT = {  # only what the maintainer cares about
    "taint-tracking": "{CONFIG_MODULE_UNLOAD_TAINT_TRACKING: y}",
    "decompress": "{CONFIG_MODULE_COMPRESS_XZ: y, CONFIG_MODULE_DECOMPRESS: y}",
    "kdb": "{CONFIG_DEBUG_KERNEL: y, CONFIG_KGDB_KDB: y}",
    "livepatch": "{CONFIG_DEBUG_KERNEL: y, CONFIG_DYNAMIC_FTRACE: y, CONFIG_KALLSYMS: y, "
                 "CONFIG_LIVEPATCH: y}",
}


def resolved(tmp_path: Path, tree: Path, name: str, combos: dict[str, str], repair: bool):
    path = tmp_path / name / "matrix.yaml"
    path.parent.mkdir()
    includes = "\n".join(f"  - {{id: {cid}, config: {cfg}}}" for cid, cfg in combos.items())
    path.write_text(MATRIX.format(tree=tree, includes=includes,
                                  repair="repair: true" if repair else ""))
    settings, _ = session.prepare_run(
        session.Options(matrix=path, results=tmp_path / name / "results", workers=1, jobs=2),
        say=lambda *_: None)
    return resolve.load(Path(settings.run_dir))


def test_repair_true_resolves_like_the_hand_written_matrix(tmp_path, kernel_tree):
    by_hand = resolved(tmp_path, kernel_tree, "by-hand", HAND_WRITTEN, repair=False)
    repaired = resolved(tmp_path, kernel_tree, "repaired", CARED_ABOUT, repair=True)
    for cid in HAND_WRITTEN:
        assert by_hand[cid].holds and not by_hand[cid].added
        assert repaired[cid].holds, (cid, repaired[cid])
        assert repaired[cid].added, cid  # it really had to add something
        assert repaired[cid].config_hash == by_hand[cid].config_hash, (cid, repaired[cid].added)
