"""The KCIDB export validates with kcidb-io's current schema, for every verdict there is, and
says what each record says: builds per combination, the checks as tests, logs referenced."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import kcidb_io
import pytest
import reportdata

from harness import cli, kcidb, runinfo

ID = re.compile(r"^[a-z0-9_]+:[^\0]*$")


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return reportdata.write_run(tmp_path, "20261129T000000Z-bbbb",
                                reportdata.default_matrix_records())


def export(run_dir: Path, url_base: str | None = None) -> dict:
    from harness import results

    return kcidb.export(results.read_records(run_dir), runinfo.load(run_dir), run_dir, url_base)


def test_the_export_of_every_verdict_validates_against_the_latest_schema(run_dir: Path) -> None:
    data = export(run_dir)
    kcidb_io.schema.LATEST.validate(data)
    assert kcidb_io.schema.LATEST.is_compatible_exactly(data) or \
        kcidb_io.schema.LATEST.is_compatible(data)
    ids = [o["id"] for kind in ("checkouts", "builds", "tests") for o in data[kind]]
    assert all(ID.match(i) and i.startswith("kmatrix:") for i in ids)
    assert len(ids) == len(set(ids))


def test_the_schema_check_can_fail(run_dir: Path) -> None:
    data = export(run_dir)
    data["builds"][0]["status"] = "BROKEN"
    with pytest.raises(jsonschema.exceptions.ValidationError):
        kcidb_io.schema.LATEST.validate(data)


def test_builds_and_tests_say_what_the_records_say(run_dir: Path) -> None:
    data = export(run_dir, "https://ci.example.org/artifacts/run-1")
    builds = {b["config_name"]: b for b in data["builds"]}
    assert len(builds) == 22  # every combination, finished or not
    tests = {(t["build_id"].rsplit(":", 1)[1], t["path"]): t for t in data["tests"]}
    records = {r.combination: r for r in reportdata.default_matrix_records()}
    for cid, rec in records.items():
        build, verdict = builds[cid], rec.verdict_text
        expected = {"pass": "PASS", "build-error": "FAIL", "config-dropped": "SKIP",
                    "unsatisfiable": "SKIP", "infra-error": "ERROR", "running": "MISS"}
        assert build["status"] == expected.get(verdict, "PASS"), (cid, verdict)
        assert build["misc"]["verdict"] == verdict
        if verdict == "config-dropped":
            assert tests[(cid, "kmatrix.config_truth")]["status"] == "FAIL"
            assert "dropped by Kconfig" in tests[(cid, "kmatrix.config_truth")]["log_excerpt"]
        if verdict == "link-mismatch":
            assert tests[(cid, "kmatrix.link_check")]["status"] == "FAIL"
        if verdict in ("boot-fail", "boot-timeout"):
            boot = tests[(cid, "kmatrix.boot")]
            assert boot["status"] == "FAIL"
            log = "console.log" if rec.boot else "build.log"  # the console log where there is one
            assert boot["log_url"] == f"https://ci.example.org/artifacts/run-1/{cid}/{log}"
    assert builds["stats"]["log_url"] == "https://ci.example.org/artifacts/run-1/stats/build.log"
    assert builds["stats"]["architecture"] == "x86_64"


def test_kmatrix_export_writes_validated_kcidb_json(run_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "--kcidb", str(run_dir)]) == 0
    data = json.loads((run_dir / "kcidb.json").read_text())
    kcidb_io.schema.LATEST.validate(data)
    assert data["builds"][0]["log_url"].startswith(run_dir.resolve().as_uri())
    assert "22 builds" in capsys.readouterr().out
    assert cli.main(["export", "--kcidb", str(run_dir), "-o", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == data


def test_exporting_a_directory_without_records_is_bad_input(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "--kcidb", str(tmp_path)]) == 2
    assert "holds no records" in capsys.readouterr().err
