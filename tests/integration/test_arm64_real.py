"""arm64 on the real 6.12 tree, in the real builder container: config truth for arm64 (another
architecture's option is named as such), and one `kmatrix run` cross-built with
aarch64-linux-gnu- gcc: two object-tier combinations (link check) and the dups kernel and the
dups-off kernel booted in qemu-system-aarch64 -M virt under TCG, judged like x86_64's.

The two bootable kernels share one output tree (dups off first, then dups on relinks), so the
run builds one arm64 kernel and one incremental relink (docs/arm64.md has the costs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from testhelpers import run_kmatrix

from harness import arch as archmod
from harness.kconfig import Config, merge
from harness.kconfig.explain import explain
from harness.kconfig.repair import repair
from harness.kconfig.session import KconfigSession

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("arm64")]

ROOT = Path(__file__).resolve().parents[2]
ARM64 = archmod.get("arm64")


@pytest.fixture(scope="module")
def session(kernel_tree: Path, docker_runner, work_cache: Path, tmp_path_factory):
    out = work_cache / f"explain-arm64-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    log_path = tmp_path_factory.mktemp("explain-arm64") / "kconfig.log"
    with open(log_path, "w", encoding="utf-8") as log:
        yield KconfigSession(kernel_tree, out, docker_runner, log, arch=ARM64)
    print(f"commands and output: {log_path}")


@pytest.fixture(scope="module")
def base(session: KconfigSession) -> Config:
    return merge(session.config_target("tinyconfig"), {"CONFIG_MODULES": "y"})


def test_config_truth_on_arm64(session: KconfigSession, base: Config) -> None:
    session.olddefconfig(base)
    dump = session.dump()
    assert dump.header.get("srcarch") == "arm64"
    x86_only = explain("CONFIG_X86_X2APIC", "y", dump, None, session.tree)
    assert not x86_only.exists
    assert x86_only.unsatisfiable == ("X86_X2APIC exists only on x86_64 (arch/x86), "
                                      "not on arm64 (SRCARCH=arm64)")
    # defined outside arch/, in a Kconfig file only some architectures source
    livepatch = explain("CONFIG_LIVEPATCH", "y", dump, None, session.tree)
    assert not livepatch.exists
    assert livepatch.unsatisfiable == ("LIVEPATCH exists only on arch/loongarch, arch/powerpc, "
                                       "arch/s390, x86_64 (arch/x86), not on arm64 "
                                       "(SRCARCH=arm64)")
    # the arm64 serial console from tinyconfig: repair finds what it needs (TTY first)
    console = repair({"CONFIG_SERIAL_AMBA_PL011_CONSOLE": "y"}, base, session)
    assert console.holds, console.unsatisfiable
    assert console.added.get("CONFIG_TTY") == "y"


def test_kmatrix_explain_resolves_for_the_matrix_architecture(tmp_path, kernel_tree,
                                                              builder_image):
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"kernel": {"source": str(kernel_tree), "arch": "arm64"},
                                      "base": "tinyconfig", "include": [{"id": "one"}]}))
    done = run_kmatrix("explain", "CONFIG_X86_X2APIC", str(matrix), "--config",
                       str(ROOT / "harness" / "fragments" / "boot.config"), timeout=600, cwd=ROOT)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "X86_X2APIC exists only on x86_64 (arch/x86), not on arm64 (SRCARCH=arm64)" \
        in done.stdout
    assert "ARCH=arm64 " in done.stdout and "CROSS_COMPILE=aarch64-linux-gnu-" in done.stdout


def test_cross_built_objects_and_two_arm64_boots(tmp_path, kernel_tree, builder_image):
    default = yaml.safe_load((ROOT / "matrix.yaml").read_text())
    matrix = tmp_path / "matrix.yaml"
    dups = "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"
    matrix.write_text(yaml.safe_dump({
        "kernel": {"source": str(kernel_tree), "arch": "arm64"},
        "base": "tinyconfig",
        "config": default["config"],
        # a fresh arm64 kernel took over 30 minutes at load 14 on 2 cores (docs/arm64.md)
        "build": {"targets": ["kernel/module/"], "timeout": 3600, "boot_timeout": 180},
        "include": [
            {"id": "arm64-obj-on", "config": {dups: "y"}},
            {"id": "arm64-obj-off", "config": {dups: "n", "CONFIG_MODULE_STATS": "y"}},
            {"id": "arm64-boot-on", "config": {dups: "y"}, "boot": True},
            {"id": "arm64-boot-off", "config": {dups: "n"}, "boot": True},
        ],
        "expect": default["expect"],
    }, sort_keys=False))
    results = tmp_path / "results"
    done = run_kmatrix("run", str(matrix), "--results", str(results), timeout=7200, cwd=ROOT)
    run_dir = (results / "latest").resolve()
    records = {c: json.loads((run_dir / c / "record.json").read_text())
               for c in ("arm64-obj-on", "arm64-obj-off", "arm64-boot-on", "arm64-boot-off")}
    assert done.returncode == 0, (done.stdout[-3000:] + done.stderr[-3000:],
                                  {c: r["reasons"] for c, r in records.items()})
    assert all(r["verdict"] == "pass" for r in records.values())
    assert json.loads((run_dir / "run.json").read_text())["matrix_info"]["arch"] == "arm64"

    build_log = (run_dir / "arm64-obj-on" / "build.log").read_text()
    assert "ARCH=arm64" in build_log and "CROSS_COMPILE=aarch64-linux-gnu-" in build_log
    on, off = records["arm64-obj-on"], records["arm64-obj-off"]
    assert "dups.o" in on["link"]["kernel/module/"]["members"]
    assert "dups.o" not in off["link"]["kernel/module/"]["members"]
    assert "stats.o" in off["link"]["kernel/module/"]["members"]

    # the boots: an arm64 Image, the arm64 guest, the PL011 console, the same judge
    boot_on, boot_off = records["arm64-boot-on"], records["arm64-boot-off"]
    assert boot_on["boot"]["verdict"] == boot_off["boot"]["verdict"] == "pass"
    assert boot_on["boot"]["cmdline"].startswith("console=ttyAMA0 ")
    assert boot_on["boot"]["phases"]["repeat-fs"]["duplicates"] == {"fs-kmatrixfs": 1}
    assert boot_off["boot"]["phases"]["concurrent-fs"]["modprobe"] == {"fs-kmatrixfs": 8}
    console = Path(boot_on["boot"]["console_log"]).read_text(errors="replace")
    assert "Machine model: linux,dummy-virt" in console
    assert "ttyAMA0" in console and "KMATRIX-END" in console
    reproducer = next(s["command"] for s in boot_on["stages"] if s["name"] == "boot")
    assert "qemu-system-aarch64 -M virt -accel tcg -cpu cortex-a57" in reproducer
