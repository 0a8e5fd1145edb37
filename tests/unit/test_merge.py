"""kmatrix merge on fake shard directories: one run's records and reports, or one line that
says why not (another run's shard, a shard twice, combinations missing or in two shards)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testhelpers import run_kmatrix

from harness import merge, results
from harness.results import Record
from harness.settings import RunSettings
from harness.verdict import InputError

PARTITION = [["a", "b"], ["c"], ["d", "e"]]
FINGERPRINT = {"matrix": "m.yaml 1111", "kernel": "Linux 6.12.1 (debian)", "image": "img:1",
               "selection": "every combination", "digest": "d1"}


def rec(cid: str, verdict: str, run_id: str) -> Record:
    return Record(combination=cid, run_id=run_id, matrix="/x/m.yaml", values={}, requested={},
                  status="done", verdict=verdict or None, reasons=[] if verdict == "pass" else ["why"])


def make_shard(root: Path, index: int, verdicts: dict[str, str], count: int = 3,
               partition: list[list[str]] | None = None, **fingerprint: str) -> Path:
    run_id = f"20260101T00000{index}Z-000{index}"
    run = root / run_id
    settings = RunSettings(run_id=run_id, matrix_path="/x/m.yaml", run_dir=str(run), cache="/c",
                           tree="/t", kernel={"version": "6.12.1"}, image="img:1",
                           fingerprint={**FINGERPRINT, **fingerprint},
                           shard={"index": index, "count": count, "selection": [],
                                  "partition": partition or PARTITION,
                                  "partition_digest": json.dumps(partition or PARTITION)},
                           only=(partition or PARTITION)[index - 1])
    run.mkdir(parents=True)
    settings.save()
    for cid, verdict in verdicts.items():
        results.write_record(run, rec(cid, verdict, run_id))
        (run / cid / "build.log").write_text(f"log of {cid}\n")
    (run / "seed.log").write_text(f"seed of shard {index}\n")
    return run


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    return [make_shard(tmp_path / "shards", 1, {"a": "pass", "b": "link-mismatch"}),
            make_shard(tmp_path / "shards", 2, {"c": "pass"}),
            make_shard(tmp_path / "shards", 3, {"d": "pass", "e": "pass"})]


def verdicts(run: Path) -> dict[str, str]:
    return {r.combination: r.verdict_text for r in results.read_records(run)}


def test_merge_is_one_run_with_every_record_log_and_report(tmp_path: Path, shards: list[Path]) -> None:
    out = tmp_path / "results" / "20260101T010000Z-nightly"
    done = run_kmatrix("merge", str(out), *map(str, shards))
    assert done.returncode == 1, done.stderr  # b failed: the whole run's status
    assert verdicts(out) == {"a": "pass", "b": "link-mismatch", "c": "pass", "d": "pass",
                             "e": "pass"}
    assert (out / "e" / "build.log").read_text() == "log of e\n"
    assert (out / "shards" / "2" / "seed.log").read_text() == "seed of shard 2\n"
    settings = RunSettings.load(out)
    assert settings.run_id == out.name and settings.only == []
    assert settings.shard["merged"] == [s.name for s in shards] and settings.shard["count"] == 3
    assert settings.fingerprint == FINGERPRINT
    assert "# kmatrix run 20260101T010000Z-nightly" in (out / "summary.md").read_text()
    assert "(merged from 3 shards)" in (out / "summary.md").read_text()
    assert (out / "junit.xml").read_text().count("<testcase") == 5
    assert (tmp_path / "results" / "latest").resolve() == out.resolve()


def test_shards_of_another_run_are_refused_naming_what_differs(tmp_path: Path, shards: list[Path]) -> None:
    other = make_shard(tmp_path / "other", 2, {"c": "pass"}, kernel="Linux 6.12.2 (debian)")
    with pytest.raises(InputError) as err:
        merge.merge(tmp_path / "out", [shards[0], other, shards[2]])
    assert "kernel: Linux 6.12.1 (debian) vs Linux 6.12.2 (debian)" in err.value.message
    assert "\n" not in err.value.message
    assert not (tmp_path / "out").exists()


def test_another_n_or_another_partition_is_refused(tmp_path: Path, shards: list[Path]) -> None:
    four = make_shard(tmp_path / "four", 2, {"c": "pass"}, count=4)
    with pytest.raises(InputError, match="merge shards of one N"):
        merge.merge(tmp_path / "out", [shards[0], four])
    split = make_shard(tmp_path / "split", 2, {"c": "pass"}, partition=[["a"], ["b", "c"], ["d", "e"]])
    with pytest.raises(InputError, match="split the matrix differently"):
        merge.merge(tmp_path / "out", [shards[0], split])


def test_a_shard_twice_and_a_combination_in_two_shards_are_named(tmp_path: Path, shards: list[Path]) -> None:
    with pytest.raises(InputError, match="shard 1/3 given twice"):
        merge.merge(tmp_path / "out", [shards[0], shards[0]])
    stray = make_shard(tmp_path / "stray", 2, {"c": "pass", "a": "pass"})
    with pytest.raises(InputError, match=r"1 combination\(s\) in more than one shard: a \("):
        merge.merge(tmp_path / "out", [shards[0], stray, shards[2]])


def test_missing_combinations_are_named_or_reported_as_not_run(tmp_path: Path, shards: list[Path]) -> None:
    with pytest.raises(InputError) as err:
        merge.merge(tmp_path / "out", [shards[0], shards[2]])
    assert "1 combination(s) have no record in any shard (shard(s) 2/3 not given): c" in \
        err.value.message
    out = tmp_path / "results" / "20260101T010000Z-nightly"
    done = run_kmatrix("merge", str(out), str(shards[0]), str(shards[2]), "--allow-missing")
    assert done.returncode == 3, done.stderr  # not judged: infrastructure, never a pass
    c = next(r for r in results.read_records(out) if r.combination == "c")
    assert c.verdict is None and c.status == "missing" and "2/3 did not finish" in c.reasons[0]
    assert "| c | missing |" in (out / "summary.md").read_text()
    from harness import runstate  # an incomplete merge is never a finished run to compare with
    assert not runstate.is_finished_run(out)
    assert "did not finish (failed)" in runstate.incomplete_reason(out)


def test_not_a_shard_and_an_existing_out_are_refused(tmp_path: Path, shards: list[Path]) -> None:
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / "run.json").write_text(json.dumps({"run_id": "w", "matrix_path": "m", "run_dir": "w",
                                                "cache": "c", "tree": "t", "kernel": {},
                                                "image": "i"}))
    with pytest.raises(InputError, match="is not a shard"):
        merge.merge(tmp_path / "out", [whole])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(InputError, match="already exists"):
        merge.merge(tmp_path / "out", shards)
