""".github/workflows/nightly.yml: it parses, its jobs run in the right order, and every kmatrix
command it runs is a step of harness/ci.py, the one place `kmatrix nightly` (and so
`nox -s nightly` and tests/integration/test_shards_real.py) renders its commands from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from testhelpers import REPO, run_kmatrix

from harness import ci

WORKFLOW = REPO / ".github" / "workflows" / "nightly.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def scripts(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_it_is_scheduled_and_its_jobs_run_shards_then_the_merge() -> None:
    flow = load()
    triggers = flow.get("on") or flow.get(True)  # YAML 1.1 reads a bare `on` as true
    assert triggers["schedule"][0]["cron"]
    assert set(flow["jobs"]) == {"shard", "merge"}
    shard, merge = flow["jobs"]["shard"], flow["jobs"]["merge"]
    assert "needs" not in shard
    assert merge["needs"] == "shard" and merge["if"] == "always()"  # merges what finished
    assert shard["strategy"]["fail-fast"] is False
    assert shard["strategy"]["matrix"]["shard"] == list(range(1, int(flow["env"]["SHARDS"]) + 1))


def uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_shards_restore_caches_and_upload_and_the_merge_publishes() -> None:
    jobs = load()["jobs"]
    shard, merge = jobs["shard"], jobs["merge"]
    caches = [s["with"] for s in shard["steps"] if s.get("uses", "").startswith("actions/cache")]
    keys = " ".join(c["key"] for c in caches)
    assert "steps.keys.outputs.image_key" in keys and "steps.keys.outputs.ccache_key_prefix" in keys
    assert "docker save" in scripts(shard) and "docker load" in scripts(shard)
    assert uses(shard)[-1] == "actions/upload-artifact"
    assert "actions/download-artifact" in uses(merge)
    upload = [s for s in merge["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["with"]["name"] == "kmatrix-nightly"
    assert upload[0]["if"] == "always()"
    assert merge["steps"][-1]["run"].startswith("exit ")  # the whole run's exit status


def test_the_workflow_runs_exactly_the_steps_of_harness_ci() -> None:
    flow = load()
    text = "\n".join(scripts(job) for job in flow["jobs"].values())
    rendered = {step: ci.render(step, **values) for step, values in ci.WORKFLOW_VALUES.items()}
    assert set(rendered) == set(ci.STEPS)
    for step, line in rendered.items():
        assert line in text, f"the workflow does not run the {step} step as harness/ci.py says: {line}"
    lines = [m.group(0).strip() for m in re.finditer(r"(?m)^\s*kmatrix .*$", text)]
    assert lines and all(any(line.startswith(r) for r in rendered.values()) for line in lines), lines


def test_the_keys_step_prints_what_the_workflow_reads() -> None:
    done = run_kmatrix("nightly", "--keys")
    assert done.returncode == 0, done.stderr
    printed = dict(line.split("=", 1) for line in done.stdout.splitlines())
    text = WORKFLOW.read_text()
    for key in re.findall(r"steps\.keys\.outputs\.(\w+)", text):
        assert key in printed, key
    assert printed["image"].startswith("kmatrix-builder:")


def test_local_flow_renders_the_same_templates() -> None:
    assert ci.argv("shard", matrix="m.yaml", shard="1", shards="2", results="res",
                   options="--workers 1")[3:] == ["run", "m.yaml", "--shard", "1/2", "--results", "res",
                                                 "--workers", "1"]
    assert ci.render("merge", merged="out", shard_dirs="a b", budget="0", options="") == \
        "kmatrix merge out a b --allow-missing --bisect-new-failures=0"


def test_local_flow_runs_the_steps_in_order_and_merges_only_the_shards(tmp_path, monkeypatch):
    """`kmatrix nightly` with the commands faked: image, each shard, merge, compare, history;
    the merge gets exactly the shard run directories (not pytest's cache, not latest)."""
    import subprocess

    results = tmp_path / "results"
    old = results / "20260101T000000Z-old-nightly"
    old.mkdir(parents=True)
    (old / "run.json").write_text('{"matrix_path": "/x/m.yaml"}')
    ran: list[list[str]] = []

    def fake_run(argv, env=None):
        words = argv[3:]
        ran.append(words)
        if words[0] == "run":
            (results / ".pytest_cache").mkdir(exist_ok=True)  # the first run makes --lf's cache
            k = words[words.index("--shard") + 1].split("/")[0]
            made = results / f"20260102T00000{len(ran)}Z-{k}of2"
            made.mkdir()
            shard = {"index": int(k), "count": 2, "partition": [["a"], ["b"]]}
            (made / "run.json").write_text(json.dumps({"matrix_path": "/x/m.yaml", "shard": shard}))
        if words[0] == "merge":
            Path(words[1]).mkdir()
            (Path(words[1]) / "run.json").write_text('{"matrix_path": "/x/m.yaml"}')
            return subprocess.CompletedProcess(argv, 1)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(ci.subprocess, "run", fake_run)
    said: list[str] = []
    status = ci.local_nightly(Path("/x/m.yaml"), results, 2, 0, ["--workers", "1"], said.append)
    assert status == 1  # the merged run's exit status
    assert [w[0] for w in ran] == ["image", "run", "run", "merge", "compare", "history"]
    assert ran[1][-2:] == ["--workers", "1"] and "1/2" in ran[1] and "2/2" in ran[2]
    merge = ran[3]
    shards = [w for w in merge[2:] if not w.startswith("-")]
    assert [Path(s).name for s in shards] == ["20260102T000002Z-1of2", "20260102T000003Z-2of2"]
    assert "--bisect-new-failures=0" in merge
    assert ran[4][1] == str(old)  # compared with the previous nightly
    assert all(line.startswith("kmatrix nightly: kmatrix ") for line in said)
