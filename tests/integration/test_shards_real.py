"""The nightly flow on this machine (`kmatrix nightly`, what `nox -s nightly` and the shipped
workflow run): two shards of a small object-tier matrix on the real tree, merged, have exactly
the verdicts of one run; a second nightly with one injected regression compares to exactly that
regression; the merged run directory holds every report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from testhelpers import nightly_matrix, run_kmatrix

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("shards")]

INCLUDE = """\
  - {{id: sh-procfs, config: {{CONFIG_PROC_FS: y}}}}
  - {{id: sh-sysfs, config: {{CONFIG_SYSFS: y}}}}
  - {{id: sh-victim, config: {victim}}}"""
LAST_NIGHT = "{CONFIG_PROC_FS: y, CONFIG_SYSFS: y}"
TONIGHT = "{CONFIG_PROC_FS: y, CONFIG_SYSFS: y, CONFIG_KALLSYMS: y}"  # the injected regression
# own trees: each combination's tree keeps its last config, so a run after the first rebuilds
# only what changed (the injected regression), and the test stays within its minutes
OPTIONS = ("--workers", "1", "--jobs", "2", "--trees", "own")


def verdicts(run_dir: Path) -> dict[str, tuple[str, list[str]]]:
    out = {}
    for path in run_dir.glob("*/record.json"):
        data = json.loads(path.read_text())
        out[data["combination"]] = (data["verdict"], data["reasons"])
    return out


def nightly(matrix: Path, results: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    done = run_kmatrix("nightly", str(matrix), "--shards", "2", "--results", str(results),
                       "--bisect-new-failures", "0", "--", *OPTIONS, timeout=1500)
    merged = sorted(results.glob("*-nightly"))
    assert merged, f"no merged run directory: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done, merged[-1]


def test_two_shards_merge_to_one_run_and_compare_to_the_injected_regression(
        tmp_path, kernel_tree, builder_image):
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(nightly_matrix(kernel_tree, INCLUDE.format(victim=LAST_NIGHT)))
    results = tmp_path / "results"
    first, merged = nightly(matrix, results)
    assert first.returncode == 0, first.stdout + first.stderr
    shards = [json.loads(p.read_text())["shard"] for p in results.glob("*/run.json")
              if "index" in json.loads(p.read_text())["shard"]]
    assert sorted(s["index"] for s in shards) == [1, 2] and all(s["count"] == 2 for s in shards)
    assert all(s["partition"][s["index"] - 1] for s in shards)  # both shards had work
    assert {c: v for c, (v, _) in verdicts(merged).items()} == \
        {"sh-procfs": "pass", "sh-sysfs": "pass", "sh-victim": "pass"}
    run = json.loads((merged / "run.json").read_text())
    assert run["shard"]["count"] == 2 and len(run["shard"]["merged"]) == 2
    for report in ("summary.md", "junit.xml", "report.html"):
        assert (merged / report).is_file(), report
    assert (results / "latest").resolve() == merged
    # one report covering every shard: a heatmap cell per combination, a metadata.json each
    html = (merged / "report.html").read_text()
    for combo in ("sh-procfs", "sh-sysfs", "sh-victim"):
        assert f'data-combination="{combo}" data-verdict="pass"' in html, combo
        assert (merged / combo / "metadata.json").is_file(), combo

    # tonight: one combination gains an option the matrix expects not to be linked
    matrix.write_text(nightly_matrix(kernel_tree, INCLUDE.format(victim=TONIGHT)))
    single = run_kmatrix("run", str(matrix), "--results", str(tmp_path / "single"), *OPTIONS,
                         timeout=1500)
    assert single.returncode == 1, single.stdout + single.stderr
    one_run = verdicts((tmp_path / "single" / "latest").resolve())
    second, merged2 = nightly(matrix, results)
    assert second.returncode == 1, second.stdout + second.stderr  # a kernel failure tonight
    # the merge of two shards is one run: every verdict and every reason, the failure's too
    assert verdicts(merged2) == one_run and one_run["sh-victim"][0] == "link-mismatch"
    comparison = json.loads((merged2 / "comparison.json").read_text())
    assert [c["combination"] for c in comparison["new_failures"]] == ["sh-victim"]
    for other in ("fixed", "still_failing", "not_judged", "added", "removed"):
        assert comparison[other] == [], (other, comparison)
    assert comparison["base"] == merged.name and comparison["unchanged_passes"] == 2
    summary = (merged2 / "summary.md").read_text()
    assert summary.index(f"## Since {merged.name}") < summary.index("| combination |")
    assert "**New failures: 1**" in summary and "`sh-victim`: pass -> link-mismatch" in summary
    assert "- sh-victim: not bisected" in summary  # the budget of 0 s, said so
    assert (merged2 / "comparison.md").read_text().startswith(f"## Since {merged.name}")
    assert (merged2 / "junit.xml").read_text().count("<failure") == 1
    html2 = (merged2 / "report.html").read_text()  # the new failure at the top of the report
    assert 'data-combination="sh-victim" data-verdict="link-mismatch"' in html2
    assert html2.index("sh-victim") < html2.index('data-combination="sh-procfs"')
    assert "sh-victim" in second.stdout and "flaky: none" in second.stdout  # the history


def test_resume_redoes_only_the_unfinished_combinations(tmp_path, kernel_tree, builder_image):
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(nightly_matrix(kernel_tree, INCLUDE.format(victim=LAST_NIGHT)))
    results = tmp_path / "results"
    first = run_kmatrix("run", str(matrix), "--results", str(results), *OPTIONS,
                        "--only", "sh-procfs", "--only", "sh-sysfs", timeout=1500)
    assert first.returncode == 0, first.stdout + first.stderr
    run_dir = (results / "latest").resolve()
    # as a run killed while sh-sysfs built leaves it: a running record, latest elsewhere
    killed = json.loads((run_dir / "sh-sysfs" / "record.json").read_text())
    (run_dir / "sh-sysfs" / "record.json").write_text(json.dumps(
        {**killed, "status": "running", "verdict": "", "finished": ""}))
    (results / "latest").unlink()
    kept = (run_dir / "sh-procfs" / "record.json").read_text()

    done = run_kmatrix("run", "--resume", "--results", str(results), timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming run" in done.stdout and "1 of 2 combinations left" in done.stdout
    assert (run_dir / "sh-procfs" / "record.json").read_text() == kept  # not run again
    again = json.loads((run_dir / "sh-sysfs" / "record.json").read_text())
    assert (again["status"], again["verdict"]) == ("done", "pass")
    assert again["started"] >= killed["started"]
    assert (results / "latest").resolve() == run_dir
    assert "| sh-procfs | pass |" in (run_dir / "summary.md").read_text()  # the whole run

    matrix.write_text(matrix.read_text() + "# changed\n")
    changed = run_kmatrix("run", "--resume", str(run_dir), "--results", str(results))
    assert changed.returncode == 2 and "cannot resume" in changed.stderr
    assert "the matrix: matrix.yaml" in changed.stderr
