"""kmatrix history and kmatrix compare over fake run directories: verdicts over the runs kept,
flips with nothing changed flagged flaky, flips with a change named; compare's exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testhelpers import run_kmatrix

from harness import compare, history, results
from harness.results import Record
from harness.verdict import InputError


def rec(cid: str, verdict: str, config: str = "h1", commit: str = "c1", image: str = "sha:1") -> Record:
    return Record(combination=cid, run_id="r", matrix="/x/m.yaml", values={},
                  requested={"CONFIG_A": "y"}, status="done", verdict=verdict or None,
                  reasons=[] if verdict == "pass" else [f"{verdict} because"],
                  resolved_config_hash=config, kernel={"version": "6.12", "commit": commit},
                  image={"id": image})


def write_run(root: Path, name: str, records: list[Record], **info: object) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"matrix_path": "/x/m.yaml", "run_id": name, **info}))
    for r in records:
        results.write_record(run, r)
    return run


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    write_run(tmp_path, "20260101T000000Z-0001", [rec("steady", "pass"), rec("flaky", "pass"),
                                                  rec("broken", "pass"), rec("infra", "pass")])
    write_run(tmp_path, "20260102T000000Z-0002", [rec("steady", "pass"), rec("flaky", "boot-fail"),
                                                  rec("broken", "build-error", commit="c2"),
                                                  rec("infra", "infra-error")])
    # a shard and an --only run are not whole runs: left out
    write_run(tmp_path, "20260102T120000Z-0003", [rec("steady", "build-error")],
              shard={"index": 1, "count": 2, "partition": [["steady"], ["flaky"]]})
    write_run(tmp_path, "20260102T130000Z-0004", [rec("steady", "build-error")], only=["steady"])
    write_run(tmp_path, "20260103T000000Z-0005", [rec("steady", "pass"), rec("flaky", "pass"),
                                                  rec("broken", "build-error", commit="c2"),
                                                  rec("infra", "pass"), rec("new", "pass")])
    return tmp_path


def test_history_flags_a_flip_with_nothing_changed_as_flaky(runs: Path) -> None:
    found = history.history(runs, last=10)
    assert found.runs == ["20260101T000000Z-0001", "20260102T000000Z-0002", "20260103T000000Z-0005"]
    rows = {r.combination: r for r in found.rows}
    assert rows["steady"].verdicts == ["pass", "pass", "pass"] and not rows["steady"].flips
    assert rows["flaky"].flaky and [f.changed for f in rows["flaky"].flips] == [[], []]
    broken = rows["broken"]
    assert not broken.flaky and broken.flips[0].changed == ["kernel"]  # a regression, not flaky
    assert not rows["infra"].flips  # an infra-error says nothing either way
    assert rows["new"].verdicts == ["", "", "pass"]
    text = found.text()
    assert "regression in run 2 (kernel changed)" in text
    assert "FLAKY: pass -> boot-fail in run 2" in text and text.endswith("flaky: flaky")


def test_history_keeps_the_last_runs_and_says_when_there_are_none(runs: Path, tmp_path: Path) -> None:
    assert history.history(runs, last=2).runs == ["20260102T000000Z-0002", "20260103T000000Z-0005"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no whole run"):
        history.history(empty)


def test_history_and_compare_commands(runs: Path) -> None:
    done = run_kmatrix("history", "--results", str(runs), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [r["combination"] for r in data["rows"] if r["flaky"]] == ["flaky"]

    base, new = runs / "20260101T000000Z-0001", runs / "20260102T000000Z-0002"
    out = runs / "cmp.json"
    done = run_kmatrix("compare", str(base), str(new), "--json", str(out))
    assert done.returncode == 1, done.stderr  # something newly fails
    assert done.stdout.startswith("## Since 20260101T000000Z-0001")
    assert "`flaky`: pass -> boot-fail (flaky? the same kernel, config and image as before)" in done.stdout
    cmp = json.loads(out.read_text())
    assert [c["combination"] for c in cmp["new_failures"]] == ["broken", "flaky"]
    assert [c["combination"] for c in cmp["not_judged"]] == ["infra"]
    same = run_kmatrix("compare", str(base), str(base), "--json", "-")
    assert same.returncode == 0 and json.loads(same.stdout)["unchanged_passes"] == 4
    bad = run_kmatrix("compare", str(base), str(runs / "nope"))
    assert bad.returncode == 2 and "is not a run directory" in bad.stderr


def test_a_shard_compares_only_its_own_combinations(runs: Path) -> None:
    shard = runs / "20260102T120000Z-0003"
    assert compare.previous_comparable_run(runs, shard) == runs / "20260102T000000Z-0002"
    c = compare.since_previous(shard)
    assert c is not None and not c.removed and [x.combination for x in c.new_failures] == ["steady"]
    # a whole run's base is never a shard or an --only run
    assert compare.previous_comparable_run(runs, runs / "20260103T000000Z-0005") == \
        runs / "20260102T000000Z-0002"
