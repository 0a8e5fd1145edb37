"""A run as KCIDB data (the schema kernel CI systems exchange results in), from the records.

One checkout per run (the kernel tree it built), one build per combination (its config and
`make` of the build targets), and the checks as tests of each build: ``kmatrix.config_truth``,
``kmatrix.link_check`` and ``kmatrix.boot``, each with its log referenced. Ids follow KCIDB's
``origin:local-id``: ``kmatrix:<run-id>``, ``kmatrix:<run-id>:<combination>``,
``kmatrix:<run-id>:<combination>:<check>``.

Statuses: a stage that passed is PASS, a kernel failure FAIL, a stage that hit an
infrastructure problem ERROR; a build kmatrix did not run because config truth already failed
is SKIP; a combination whose record never finished has its build MISS (the harness failed).
Logs are URLs under ``url_base`` (where the run directory is published; by default its own
``file://`` address).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .results import Record
from .runinfo import RunInfo
from .verdict import Verdict

ORIGIN = "kmatrix"
SCHEMA_MAJOR, SCHEMA_MINOR = 5, 3  # the version written (kcidb-io's LATEST when this was made)
CONFIG_STEPS = ("base-config", "repair", "olddefconfig", "config-truth")
TESTS = (("config-truth", "config_truth"), ("link-check", "link_check"), ("boot", "boot"))
STATUS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}
EXCERPT = 16384


def _text(value: str) -> str:
    """KCIDB strings may hold anything but NUL."""
    return value.replace("\0", "\ufffd")


def _local(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", value)


class Urls:
    def __init__(self, run_dir: Path, url_base: str | None) -> None:
        base = url_base or run_dir.resolve().as_uri()
        self.base = base if base.endswith("/") else base + "/"
        self.run_dir = run_dir

    def of(self, relative: str) -> str | None:
        """The URL of a file of the run directory, if it exists."""
        if not (self.run_dir / relative).is_file():
            return None
        return self.base + quote(relative)


def export(records: list[Record], info: RunInfo, run_dir: Path,
           url_base: str | None = None) -> dict[str, Any]:
    urls = Urls(run_dir, url_base)
    run = _local(info.run_id)
    checkout_id = f"{ORIGIN}:{run}"
    starts = sorted(r.started for r in records if r.started)
    checkout: dict[str, Any] = {
        "id": checkout_id, "origin": ORIGIN, "valid": True,
        "tree_name": _text(str(info.kernel.get("origin") or "unknown")),
        "comment": _text(f"Linux {info.kernel.get('version') or '?'} "
                         f"({info.kernel.get('origin') or 'unknown source'}): {info.title()}"),
        "misc": {"run_id": info.run_id, "matrix": info.matrix_name, "image": info.image,
                 "image_id": info.image_id, "kernel": info.kernel, "runtime": info.runtime,
                 "runtime_version": str(info.settings.get("runtime_version", ""))},
    }
    commit = str(info.kernel.get("commit") or "")
    if re.fullmatch(r"[0-9a-f]{40}", commit):
        checkout["git_commit_hash"] = commit
    if info.kernel.get("version"):
        checkout["git_commit_name"] = f"v{info.kernel['version']}"
    if starts:
        checkout["start_time"] = starts[0]
    builds, tests = [], []
    for record in records:
        toolchain, version = info.compiler(record.toolchain or info.toolchain)
        build, build_tests = _build(record, info, checkout_id, urls,
                                    record.compiler or f"{toolchain.split('-')[0]} {version}")
        builds.append(build)
        tests += build_tests
    return {"version": {"major": SCHEMA_MAJOR, "minor": SCHEMA_MINOR},
            "checkouts": [checkout], "builds": builds, "tests": tests}


def _build(record: Record, info: RunInfo, checkout_id: str, urls: Urls,
           compiler: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cid = record.combination
    build_id = f"{checkout_id}:{_local(cid)}"
    stages = {s.name: s for s in record.stages}
    make = stages.get("build")
    if make is not None:
        status = STATUS.get(make.status, "ERROR")
    elif record.verdict is None:
        status = "MISS"  # never finished: the harness, not the kernel
    elif record.verdict is Verdict.INFRA_ERROR:
        status = "ERROR"
    else:
        status = "SKIP"  # config truth failed first: kmatrix does not build a wrong config
    duration = sum(s.duration_s for s in record.stages if s.name in CONFIG_STEPS + ("build",))
    build: dict[str, Any] = {
        "id": build_id, "checkout_id": checkout_id, "origin": ORIGIN,
        "comment": _text(f"{cid}: " + " ".join(f"{k}={v}" for k, v in record.values.items())),
        "config_name": _text(cid), "status": status, "duration": round(duration, 1),
        "compiler": _text(compiler.strip()),
        "misc": {"verdict": record.verdict_text, "reasons": [_text(r) for r in record.reasons],
                 "requested": record.requested, "repaired": record.repaired,
                 "reproducer": _text(record.reproducer), "record_status": record.status},
    }
    if re.fullmatch(r"[a-z0-9_]+", arch := record.arch or info.arch):
        build["architecture"] = arch
    if record.started:
        build["start_time"] = record.started
    if make is not None and make.command:
        build["command"] = _text(make.command)
    for key, name in (("log_url", "build.log"), ("config_url", "config")):
        if url := urls.of(f"{cid}/{name}"):
            build[key] = url
    if url := urls.of(f"{cid}/input.config"):
        build["input_files"] = [{"name": "input.config", "url": url}]
    if status in ("FAIL", "ERROR") and record.reasons:
        build["log_excerpt"] = _text("\n".join(record.reasons))[:EXCERPT]
    tests = []
    for stage_name, path in TESTS:
        stage = stages.get(stage_name)
        if stage is None:
            continue
        test: dict[str, Any] = {
            "id": f"{build_id}:{stage_name}", "build_id": build_id, "origin": ORIGIN,
            "path": f"kmatrix.{path}", "status": STATUS.get(stage.status, "ERROR"),
            "duration": stage.duration_s, "comment": _text(f"{cid}: {stage_name}"),
        }
        if record.started:
            test["start_time"] = record.started
        log = urls.of(f"{cid}/build.log")
        misc: dict[str, Any] = {}
        if stage_name == "config-truth":
            misc = {"mismatches": record.mismatches, "repaired": record.repaired}
        elif stage_name == "link-check":
            misc = {"link": record.link}
        elif stage_name == "boot" and record.boot:
            console = Path(str(record.boot.get("console_log", ""))).name
            log = urls.of(f"{cid}/{console}") if console else None
            log = log or urls.of(f"{cid}/build.log")
            misc = {k: record.boot.get(k) for k in ("cmdline", "accel", "qemu_exit_code",
                                                     "timed_out", "verdict")}
            test["environment"] = {"comment": _text(f"QEMU ({record.boot.get('accel', '?')})")}
        if log:
            test["log_url"] = log
        if test["status"] != "PASS" and stage.name == _failed_stage(record):
            test["log_excerpt"] = _text("\n".join(record.reasons))[:EXCERPT]
        test["misc"] = misc
        tests.append(test)
    return build, tests


def _failed_stage(record: Record) -> str:
    """The stage whose failure the record's reasons describe (its last one)."""
    return record.stages[-1].name if record.stages else ""


def validate(data: dict[str, Any]) -> None:
    """Check `data` against kcidb-io's schema (the package is a dependency of kmatrix)."""
    import kcidb_io

    kcidb_io.schema.LATEST.validate(data)
