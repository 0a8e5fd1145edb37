"""The boot tier through `kmatrix run`, end to end: two bootable kernels one option apart
follow each other in one output tree (the second is an incremental rebuild and relink, not a
new kernel), and each boots in QEMU with the dups behaviour its config asks for."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from testhelpers import run_kmatrix

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("boot-tier")]

ROOT = Path(__file__).resolve().parents[2]
CC_LINE = re.compile(r"^\s+CC\s+\S+\.o$")


def test_two_boot_kernels_share_one_tree_and_both_boot(tmp_path, kernel_tree, builder_image):
    default = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({
        "kernel": {"source": str(kernel_tree), "arch": "x86_64"},
        "base": "tinyconfig",
        "config": default["config"],
        "build": {"targets": ["kernel/module/"], "timeout": 1800, "boot_timeout": 180},
        "include": [
            {"id": "it-boot-on", "config": {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}, "boot": True},
            {"id": "it-boot-off", "config": {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "n"}, "boot": True},
        ],
        "expect": default["expect"],  # the default matrix's map, from the seed Makefile
    }, sort_keys=False))
    results = tmp_path / "results"
    done = run_kmatrix("run", str(matrix), "--results", str(results), timeout=1800, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # dups off is nearer the seed: its kernel comes first, dups on follows in the same tree
    assert "tree it-boot-off: it-boot-off -> it-boot-on (1 option changes after the first)" \
        in done.stdout
    assert "1 output tree(s): 1 in parallel x make -j" in done.stdout or os.cpu_count() == 1

    run_dir = (results / "latest").resolve()
    on, off = (json.loads((run_dir / c / "record.json").read_text())
               for c in ("it-boot-on", "it-boot-off"))
    assert on["verdict"] == off["verdict"] == "pass", (on["reasons"], off["reasons"])
    assert on["output_dir"] == off["output_dir"]
    assert "dups.o" in on["link"]["kernel/module/"]["members"]
    assert "dups.o" not in off["link"]["kernel/module/"]["members"]

    # the follower recompiled a handful of objects, not a kernel (a fresh one is ~700)
    log = (run_dir / "it-boot-on" / "build.log").read_text()
    compiled = [ln.strip() for ln in log.splitlines() if CC_LINE.match(ln)]
    assert 0 < len(compiled) < 60, compiled
    assert "CC      kernel/module/dups.o" in compiled

    # and each kernel behaves as its config says (docs/boot.md)
    assert on["boot"]["verdict"] == off["boot"]["verdict"] == "pass"
    assert on["boot"]["phases"]["repeat-fs"]["duplicates"] == {"fs-kmatrixfs": 1}
    assert off["boot"]["phases"]["concurrent-fs"]["modprobe"] == {"fs-kmatrixfs": 8}
