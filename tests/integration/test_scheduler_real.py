"""The core budget and the critical-path order change how many make jobs each build gets and
when it starts, never a verdict: one real run with every build at make -j1 (`--jobs 1`, the
scheduler before) and one with the budget give the same verdict for every combination."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .test_core_real import kmatrix, write_matrix

pytestmark = pytest.mark.integration


def verdicts(run_dir: Path) -> dict[str, str]:
    return {json.loads(p.read_text())["combination"]: json.loads(p.read_text())["verdict"]
            for p in run_dir.glob("*/record.json")}


def test_the_core_budget_keeps_every_verdict(tmp_path, kernel_tree):
    m = write_matrix(tmp_path, kernel_tree,
                     "  - {id: it-budget-dups, config: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}}\n"
                     "  - {id: it-budget-stats, config: {CONFIG_MODULE_STATS: y}}\n"
                     "  - {id: it-budget-dropped, config: {CONFIG_MODULE_UNLOAD_TAINT_TRACKING: y}}")
    seen = {}
    for name, extra in (("fixed", ["--jobs", "1"]), ("budget", [])):
        done = kmatrix("run", str(m), "--results", str(tmp_path / name), "--workers", "2", *extra)
        assert done.returncode == 1, done.stdout + done.stderr
        run_dir = (tmp_path / name / "latest").resolve()
        seen[name] = verdicts(run_dir)
        run = json.loads((run_dir / "run.json").read_text())
        assert run["adaptive_jobs"] is (name == "budget")
        estimates = json.loads((run_dir / "estimates.json").read_text())
        assert set(estimates["seconds"]) == set(seen[name])
        assert "s left" in done.stdout
        if name == "budget":
            # every claim was given back; each build ran at the make -j its claim said
            assert json.loads((run_dir / "cores.json").read_text())["claims"] == []
            for combo in ("it-budget-dups", "it-budget-stats"):
                record = json.loads((run_dir / combo / "record.json").read_text())
                build = next(s for s in record["stages"] if s["name"] == "build")
                jobs = int(re.search(r" -j(\d+) ", build["command"]).group(1))
                assert 1 <= jobs <= run["workers"] * run["jobs"]
    assert seen["fixed"] == seen["budget"] == {"it-budget-dups": "pass", "it-budget-stats": "pass",
                                               "it-budget-dropped": "config-dropped"}
