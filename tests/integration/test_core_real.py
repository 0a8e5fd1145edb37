"""The core on the real kernel in real containers: every build verdict, shown for real.

Each test writes a small matrix against the real tree (Debian's linux-source-6.12 unless
KMATRIX_TEST_KERNEL is set), prepares a run exactly as `kmatrix run` does, and runs the
combination's whole chain in the builder container.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from testhelpers import run_kmatrix

from harness import session
from harness.pipeline import run_combination
from harness.settings import Job

pytestmark = pytest.mark.integration

COMMON = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{{common}}}
build: {{targets: {targets}, timeout: {timeout}}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    dups.o: {dups_condition}
    tree_lookup.o: MODULES_TREE_LOOKUP
    stats.o: MODULE_STATS
include:
{includes}
"""
DEBUG = "CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y"


def write_matrix(tmp_path: Path, tree: Path, includes: str, common: str = DEBUG,
                 dups_condition: str = "MODULE_DEBUG_AUTOLOAD_DUPS",
                 targets: str = "[kernel/module/]", timeout: int = 1800) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(COMMON.format(tree=tree, common=common, includes=includes,
                                  dups_condition=dups_condition, targets=targets,
                                  timeout=timeout))
    return path


def run_one(tmp_path: Path, matrix_path: Path, combo_id: str, pristine: bool = False):
    settings, matrix = session.prepare_run(
        session.Options(matrix=matrix_path, results=tmp_path / "results", workers=1, jobs=2,
                        pristine=pristine),
        say=lambda *_: None)
    symbols = session.load_symbols(Path(settings.run_dir))
    record = run_combination(Job(settings, matrix, matrix.combination(combo_id), symbols,
                                 settings.runner()))
    saved = json.loads((Path(settings.run_dir) / combo_id / "record.json").read_text())
    assert saved["verdict"] == record.verdict and saved["status"] == "done"
    return record, Path(settings.run_dir) / combo_id


def test_repair_adds_what_the_request_needs(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-repair, repair: true, "
                     "config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}",
                     common="CONFIG_MODULES: y")
    record, _ = run_one(tmp_path, m, "it-repair")
    assert sorted(record.repaired) == ["+DEBUG_FS=y", "+MODULE_DEBUG=y"]
    assert record.verdict == "pass", record.reasons
    assert "dups.o" in members(record)


def test_resolve_first_finds_duplicates_and_unsatisfiable(tmp_path, kernel_tree):
    from harness import resolve
    from harness.pipeline import tree_name

    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-res-a, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}\n"
                     "  - {id: it-res-b, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y, "
                     "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE: n}}\n"
                     "  - {id: it-res-mips, config: {CONFIG_BMIPS_CPUFREQ: y}}")
    settings, matrix = session.prepare_run(
        session.Options(matrix=m, results=tmp_path / "results", workers=1, jobs=2),
        say=lambda *_: None)
    found = resolve.load(Path(settings.run_dir))
    assert found["it-res-b"].duplicate_of == "it-res-a"  # TRACE=n is the default: same .config
    # one tree, the duplicate right after its first: its build finds everything up to date
    assert tree_name(settings, matrix.combination("it-res-b")) == \
        tree_name(settings, matrix.combination("it-res-a"))
    assert found["it-res-b"].position == found["it-res-a"].position + 1
    assert "MIPS" in found["it-res-mips"].unsatisfiable
    record = run_combination(Job(settings, matrix, matrix.combination("it-res-mips"),
                                 session.load_symbols(Path(settings.run_dir)),
                                 settings.runner()))
    assert record.verdict == "unsatisfiable"
    assert [s.name for s in record.stages] == ["resolve"]  # no config, no build spent


def members(record) -> list[str]:
    return record.link["kernel/module/"]["members"]


def test_dups_links_when_requested(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-dups-on, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}")
    record, combo_dir = run_one(tmp_path, m, "it-dups-on")
    assert record.verdict == "pass", record.reasons
    assert "dups.o" in members(record)
    assert "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y" in (combo_dir / "config").read_text()
    log = (combo_dir / "build.log").read_text()
    assert log.startswith("# kmatrix: combination it-dups-on")
    assert "$ docker run --rm --network none" in log and " kernel/module/\n" in log


def test_dups_absent_when_off(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-dups-off, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: n}}")
    record, _ = run_one(tmp_path, m, "it-dups-off")
    assert record.verdict == "pass", record.reasons
    assert "dups.o" not in members(record)
    assert {"main.o", "kmod.o", "strict_rwx.o"} <= set(members(record))


def test_silently_dropped_option_is_config_dropped(tmp_path, kernel_tree):
    # MODULE_DEBUG_AUTOLOAD_DUPS sits inside `if MODULE_DEBUG`: olddefconfig drops it silently.
    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-dropped, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}",
                     common="CONFIG_MODULES: y")
    record, _ = run_one(tmp_path, m, "it-dropped")
    assert record.verdict == "config-dropped"
    assert record.mismatches == [{"symbol": "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS",
                                  "requested": "y", "actual": "n"}]
    assert "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y dropped by Kconfig" in record.reasons[0]
    # and why, read by the tree's own Kconfig code, down to what the user can set
    assert record.reasons[1] == ("why: MODULE_DEBUG_AUTOLOAD_DUPS=y needs MODULE_DEBUG [=n]; "
                                 "MODULE_DEBUG=y needs DEBUG_FS [=n]")
    assert "build" not in [s.name for s in record.stages]  # no build spent on a wrong config


def test_wrong_expectation_is_link_mismatch(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-mismatch, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}",
                     dups_condition="MODULE_STATS")  # deliberately wired to the wrong option
    record, _ = run_one(tmp_path, m, "it-mismatch")
    assert record.verdict == "link-mismatch"
    assert record.link["kernel/module/"]["unexpected"] == ["dups.o"]
    assert "linked but not expected: dups.o" in record.reasons[0]


def test_make_failure_is_build_error_with_first_error(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree, "  - {id: it-build-error, config: {}}",
                     targets="[kernel/module/, kernel/module/no_such_object.o]")
    record, _ = run_one(tmp_path, m, "it-build-error")
    assert record.verdict == "build-error"
    assert "No rule to make target" in record.reasons[0]


def test_step_timeout_is_infra_error(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree, "  - {id: it-timeout, config: {}}",
                     targets="[vmlinux]", timeout=3)
    record, _ = run_one(tmp_path, m, "it-timeout")
    assert record.verdict == "infra-error"
    assert "timed out after 3 s" in record.reasons[0]


def kmatrix(*args: str, env: dict[str, str] | None = None, timeout: float | None = None
            ) -> subprocess.CompletedProcess[str]:
    return run_kmatrix(*args, env=env, timeout=timeout)


def test_cli_run_reports_every_combination_and_exits_1(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-cli-pass, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}\n"
                     "  - {id: it-cli-dropped, config: {CONFIG_MODULE_UNLOAD_TAINT_TRACKING: y}}")
    done = kmatrix("run", str(m), "--results", str(tmp_path / "res"), "--workers", "2",
                   "--jobs", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "it-cli-pass" in done.stdout and "it-cli-dropped" in done.stdout
    assert "reproduce: kmatrix run" in done.stdout
    latest = tmp_path / "res" / "latest"
    suite = ET.parse(latest / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    table = (latest / "summary.md").read_text()
    assert "| it-cli-dropped | config-dropped |" in table
    run = json.loads((latest / "run.json").read_text())
    assert run["image_packages"]["gcc"] and run["kernel"]["version"].startswith("6.12")


def test_no_docker_engine_is_infra_exit_3(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree, "  - {id: it-nodocker, config: {}}")
    done = kmatrix("run", str(m), "--results", str(tmp_path / "res"),
                   env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "no Docker engine is reachable" in done.stderr


def test_unknown_symbol_is_bad_input_exit_2(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree, "  - {id: it-typo, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUP: y}}")
    done = kmatrix("validate", str(m))
    assert done.returncode == 2
    assert "CONFIG_MODULE_DEBUG_AUTOLOAD_DUP is not defined" in done.stderr
    assert "did you mean CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS" in done.stderr


def test_ctrl_c_keeps_finished_records_and_no_container(tmp_path, kernel_tree):
    # a tree of its own, new each time, and no compiler cache: a warm tree or a ccache full of
    # these objects finishes the build before the Ctrl-C (seen in CI)
    combo = f"it-interrupt-{secrets.token_hex(3)}"
    m = write_matrix(tmp_path, kernel_tree, f"  - {{id: {combo}, config: {{}}}}",
                     targets="[vmlinux]")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(m), "--results",
                             str(tmp_path / "res"), "--workers", "1", "--jobs", "1",
                             "--trees", "own", "--no-ccache"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # Ctrl-C as at a terminal: a shell's background job (CI started
                            # with `&`) has SIGINT ignored, and a child would inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    record_path = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and record_path is None:
        time.sleep(1)
        found = list((tmp_path / "res").glob(f"*/{combo}/build.log"))
        if found and "$ docker run" in found[0].read_text().split("olddefconfig", 1)[-1]:
            record_path = found[0].parent / "record.json"
    assert record_path is not None, "the build never started"
    workdir = json.loads(record_path.read_text())["output_dir"]
    try:
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, out + err
        record = json.loads(record_path.read_text())  # whole, valid JSON
        assert record["status"] == "interrupted"
        leftover = subprocess.run(["docker", "ps", "-q", "--filter",
                                   f"label=org.kmatrix.workdir={workdir}"],
                                  capture_output=True, text=True).stdout.strip()
        assert leftover == ""
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
