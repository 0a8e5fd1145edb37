"""The benchmark breaks for real and says so: an approach run with a missing tool is a FAILED
row with its first error line, and no ratio is computed against it (issue 17).

Each test runs one approach of benchmarks/bench_matrix.py on one combination of the default
matrix, on the real tree, and fails within seconds: the missing tool stops the very first step.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_matrix as bm  # noqa: E402
import bench_report as br  # noqa: E402

from harness import kconfig  # noqa: E402
from harness import matrix as matrixmod  # noqa: E402
from harness.container import connect  # noqa: E402

pytestmark = pytest.mark.integration


class Tree:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.version = "test"
        self.origin = "test"


def context(tmp_path: Path, kernel_tree: Path, image: str, client: Any = None) -> bm.Ctx:
    matrix = matrixmod.load_matrix(REPO / "matrix.yaml")
    symbols = kconfig.scan_symbols(kernel_tree)
    combos = [c for c in matrix.combinations if c.boot is None][:1]
    return {"matrix": matrix, "matrix_path": matrix.path, "tree": Tree(kernel_tree),
            "symbols": symbols, "combos": combos, "all_combos": False, "client": client,
            "image": image, "tmp": tmp_path, "kmcache": tmp_path / "cache", "boots": []}


def good(name: str, wall: float, cpu: float) -> dict[str, Any]:
    """A made-up successful approach, for the broken one to be compared against."""
    return br.judge({"approach": name, "combos": 1, "wall_s": wall, "cpu_s": cpu,
                     "system_busy_s": cpu, "marginal_median_s": wall, "invocations": 60,
                     "minimum": 50, "peak_rss_mib": 100,
                     "checks": {"c": {"ok": True, "artifacts": 5, "compiles": 60,
                                      "min_compiles": 5, "problems": []}}})


def report_of(broken: dict[str, Any]) -> str:
    res = {"machine": {"date": "now", "cores": 2, "cpu": "cpu", "mem_gib": 1, "kernel": "k"},
           "combos": 1, "tree": {"version": "6.12", "origin": "debian"},
           "approaches": [good("kmatrix-cold", 20.0, 20.0), good("kmatrix-warm", 5.0, 5.0),
                          *[good(n, 30.0, 30.0) for n in ("naive", "tuxmake-dir")
                            if n != broken["approach"]], broken]}
    assert all(q["peer"] != broken["approach"] for q in br.ratios(res))
    return br.report(res)


def path_without(tmp_path: Path, tool: str) -> str:
    """A PATH with every program of the current PATH except `tool`."""
    farm = tmp_path / "bin"
    farm.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.listdir(directory):
            src = Path(directory) / entry
            if entry != tool and not (farm / entry).exists() and os.access(src, os.X_OK):
                (farm / entry).symlink_to(src)
    return str(farm)


def test_tuxmake_without_flex_is_failed_with_no_ratio(tmp_path: Path, kernel_tree: Path) -> None:
    """The issue's case: TuxMake --runtime null on a host without flex fails at its config step
    in seconds; that must never be printed as a time. TuxMake comes with the test extra
    (pyproject.toml), its host build dependencies with setup.sh."""
    assert shutil.which("tuxmake"), "tuxmake is not installed: pip install -e '.[test]'"
    ctx = context(tmp_path, kernel_tree, image="unused")
    ctx["tuxmake_env"] = dict(os.environ, PATH=path_without(tmp_path, "flex"))
    fig = bm.run_tuxmake(ctx, 1, "dir")
    assert fig["status"] == "failed"
    assert "flex" in fig["error"], fig["error"]
    text = report_of(fig)
    row = next(ln for ln in text.splitlines() if ln.startswith("tuxmake-dir "))
    assert "FAILED" in row and "flex" in row
    assert not any(ln.startswith("tuxmake-dir /") for ln in text.splitlines())
    assert "no ratio against tuxmake-dir" in text


def test_naive_with_a_missing_make_is_failed_with_no_ratio(tmp_path: Path, kernel_tree: Path,
                                                          builder_image: str) -> None:
    """The naive approach in the builder image with a make that does not exist: Docker cannot
    start the first step; the row is FAILED with Docker's one line, not a time."""
    ctx = context(tmp_path, kernel_tree, builder_image, connect())
    ctx["naive_make"] = "make-that-does-not-exist"
    fig = bm.run_naive(ctx)
    assert fig["status"] == "failed"
    assert "make-that-does-not-exist" in fig["error"], fig["error"]
    text = report_of(fig)
    row = next(ln for ln in text.splitlines() if ln.startswith("naive "))
    assert "FAILED" in row and "make-that-does-not-exist" in row
    assert not any(ln.startswith("naive /") for ln in text.splitlines())
    assert "no ratio against naive" in text
