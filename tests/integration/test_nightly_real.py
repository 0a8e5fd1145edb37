"""Nightly use, end to end through the CLI: a combination that passed in the previous run and
fails now is bisected automatically (`kmatrix run --bisect-new-failures=SECONDS`), and the
answer joins the summary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from testhelpers import nightly_matrix, run_kmatrix

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("nightly")]

LAST_NIGHT = "{CONFIG_PROC_FS: y}"
TONIGHT = ("{CONFIG_PROC_FS: y, CONFIG_SYSFS: y, CONFIG_MODULE_UNLOAD: y, "
           "CONFIG_MODULE_UNLOAD_TAINT_TRACKING: y, CONFIG_KALLSYMS: y}")


def kmatrix_run(matrix: Path, results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_kmatrix("run", str(matrix), "--results", str(results), "--workers", "1",
                       "--jobs", "2", *extra, timeout=1500)


def test_new_failure_is_bisected_and_reported(tmp_path, kernel_tree, builder_image):
    matrix, results = tmp_path / "matrix.yaml", tmp_path / "results"
    matrix.write_text(nightly_matrix(kernel_tree, f"  - {{id: it-nightly, config: {LAST_NIGHT}}}"))
    first = kmatrix_run(matrix, results)
    assert first.returncode == 0, first.stdout + first.stderr

    # the matrix changed
    matrix.write_text(nightly_matrix(kernel_tree, f"  - {{id: it-nightly, config: {TONIGHT}}}"))
    second = kmatrix_run(matrix, results, "--bisect-new-failures=900")
    assert second.returncode == 1, second.stdout + second.stderr
    assert "New failures since" in second.stdout
    summary = (results / "latest" / "summary.md").read_text()
    line = next(ln for ln in summary.splitlines() if ln.startswith("- it-nightly"))
    assert "KALLSYMS" in line, summary
    for innocent in ("SYSFS", "MODULE_UNLOAD_TAINT_TRACKING"):
        assert f"CONFIG_{innocent}=" not in line.split("KALLSYMS")[0], line
