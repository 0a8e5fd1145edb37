"""The boot tier through `kmatrix run`, end to end: two bootable kernels one option apart
follow each other in one output tree (the second, in a copy of the first's directory, is an
incremental rebuild and relink, not a new kernel), each boots in QEMU with the dups behaviour
its config asks for, and a rerun finds both kernels built (nothing compiled, no Kconfig run)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

import pytest
import yaml
from testhelpers import run_kmatrix

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("boot-tier")]

ROOT = Path(__file__).resolve().parents[2]
CC_LINE = re.compile(r"^\s+CC\s+\S+\.o$")


def test_two_boot_kernels_share_one_tree_and_both_boot(tmp_path, kernel_tree, builder_image):
    # trees of their own (named after the first combination), removed at the end: a tree left
    # by an earlier run would make the first run here a rerun
    tok = secrets.token_hex(3)
    boot_on, boot_off = f"it-boot-on-{tok}", f"it-boot-off-{tok}"
    try:
        run_both(tmp_path, kernel_tree, boot_on, boot_off)
    finally:  # the trees, their locks and size notes: every name in the cache with the token
        listed = tmp_path / "trees.txt"
        for tree in listed.read_text().split() if listed.exists() else []:
            for path in Path(tree).parent.glob(f"*{tok}*"):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def run_both(tmp_path: Path, kernel_tree: Path, boot_on: str, boot_off: str) -> None:
    default = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({
        "kernel": {"source": str(kernel_tree), "arch": "x86_64"},
        "base": "tinyconfig",
        "config": default["config"],
        "build": {"targets": ["kernel/module/"], "timeout": 1800, "boot_timeout": 180},
        "include": [
            {"id": boot_on, "config": {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}, "boot": True},
            {"id": boot_off, "config": {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "n"}, "boot": True},
        ],
        "expect": default["expect"],  # the default matrix's map, from the seed Makefile
    }, sort_keys=False))
    results = tmp_path / "results"
    done = run_kmatrix("run", str(matrix), "--results", str(results), timeout=1800, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # dups off is nearer the seed: its kernel comes first, dups on follows in the same tree
    assert f"tree {boot_off}: {boot_off} -> {boot_on} (1 option changes after the first)" \
        in done.stdout
    assert "1 output tree(s): 1 in parallel x make -j" in done.stdout or os.cpu_count() == 1

    run_dir = (results / "latest").resolve()
    on, off = (json.loads((run_dir / c / "record.json").read_text())
               for c in (boot_on, boot_off))
    (tmp_path / "trees.txt").write_text(f"{on['output_dir']}\n{off['output_dir']}\n")
    assert on["verdict"] == off["verdict"] == "pass", (on["reasons"], off["reasons"])
    # the follower builds in a directory of its own, a copy of the first's (TREE~HASH)
    assert on["output_dir"].startswith(off["output_dir"] + "~"), (on["output_dir"],
                                                                   off["output_dir"])
    assert "dups.o" in on["link"]["kernel/module/"]["members"]
    assert "dups.o" not in off["link"]["kernel/module/"]["members"]

    # the follower recompiled a handful of objects, not a kernel (a fresh one is ~700)
    log = (run_dir / boot_on / "build.log").read_text()
    compiled = [ln.strip() for ln in log.splitlines() if CC_LINE.match(ln)]
    assert 0 < len(compiled) < 60, compiled
    assert "CC      kernel/module/dups.o" in compiled
    assert f"starts as a copy of {boot_off}, the config before it" in log
    # each tree took the resolve step's .config (no make olddefconfig): Kconfig ran once in
    # the build (SYNC), and the kernels below behave as their configs say
    for combo in (boot_on, boot_off):
        first_log = (run_dir / combo / "build.log").read_text()
        assert "written as the resolve step's Kconfig made it" in first_log, combo
        assert "SYNC    include/config/auto.conf.cmd" in first_log, combo

    # and each kernel behaves as its config says (docs/boot.md)
    assert on["boot"]["verdict"] == off["boot"]["verdict"] == "pass"
    assert on["boot"]["phases"]["repeat-fs"]["duplicates"] == {"fs-kmatrixfs": 1}
    assert off["boot"]["phases"]["concurrent-fs"]["modprobe"] == {"fs-kmatrixfs": 8}

    # a rerun, nothing changed: each directory already holds its kernel; both boot again
    again = run_kmatrix("run", str(matrix), "--results", str(results), timeout=1800, cwd=ROOT)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    rerun = (results / "latest").resolve()
    assert rerun != run_dir
    for combo in (boot_on, boot_off):
        record = json.loads((rerun / combo / "record.json").read_text())
        assert record["verdict"] == "pass" and record["boot"]["verdict"] == "pass", combo
        log = (rerun / combo / "build.log").read_text()
        assert "olddefconfig not run:" in log and "SYNC" not in log, combo
        assert not [ln for ln in log.splitlines() if CC_LINE.match(ln)], combo
