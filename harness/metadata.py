"""metadata.json beside each combination's record, in TuxMake's shape, so tools that read
TuxMake output (its `build`, `results` and `compiler` keys) read kmatrix's.

Field names are TuxMake's where the meaning is the same: ``build.targets``,
``build.target_arch``, ``build.toolchain``, ``build.kconfig`` (the base config),
``build.kconfig_add`` (every requested value), ``build.jobs``, ``build.runtime``,
``build.reproducer_cmdline``; ``results.status``, ``results.targets`` (status and duration per
target), ``results.duration`` (seconds per step), ``results.artifacts``; ``compiler``,
``source``, ``git``, ``runtime``. What TuxMake has no word for is under ``kmatrix``: the
verdict, its reasons, config truth, the link check and the boot.

``results.status`` is TuxMake's PASS or FAIL for a kernel verdict; a combination kmatrix could
not judge (infra-error, or a record that never finished) is ERROR: neither a pass nor a kernel
failure. Written from the records alone (see harness/reports.py), so a killed combination's
record still gets one.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from . import __version__
from .results import Record, atomic_write
from .runinfo import RunInfo
from .verdict import KmatrixError, Verdict

METADATA = "metadata.json"
CONFIG_STEPS = ("base-config", "repair", "olddefconfig", "config-truth")


def status(record: Record) -> str:
    if record.verdict is Verdict.PASS:
        return "PASS"
    if record.verdict is None or record.verdict is Verdict.INFRA_ERROR:
        return "ERROR"
    return "FAIL"


def _target_status(stage_status: str | None) -> str:
    return {"pass": "PASS", "fail": "FAIL", "error": "FAIL", None: "SKIP"}.get(stage_status, "SKIP")


ARTIFACTS = (("log", "build.log"), ("config", "config"), ("reproducer", "reproducer.sh"))


def metadata(record: Record, info: RunInfo, files: set[str] | None = None) -> dict[str, Any]:
    """The metadata of one record; `files` are the names in its directory (the artifacts
    listed are those that exist; None: all of them)."""
    stages = {s.name: s for s in record.stages}
    toolchain, version = info.compiler(record.toolchain or info.toolchain)
    boots = record.boot is not None or "boot" in stages or \
        record.combination in info.matrix_info.get("boots", [])
    targets = list(info.targets)
    image_target = str(info.matrix_info.get("image_target", ""))
    if boots and image_target and image_target not in targets:
        targets.append(image_target)
    config = [stages[n] for n in CONFIG_STEPS if n in stages]
    config_status = None if not config else \
        ("pass" if all(s.status == "pass" for s in config) else "fail")
    build = stages.get("build")
    result_targets = {"config": {"status": _target_status(config_status),
                                 "duration": round(sum(s.duration_s for s in config), 1)}}
    for target in targets:
        result_targets[target] = {"status": _target_status(build.status if build else None),
                                  "duration": build.duration_s if build else 0.0}
    durations: dict[str, float] = {}
    for s in record.stages:
        durations[s.name] = round(durations.get(s.name, 0.0) + s.duration_s, 1)
    combo_dir = Path(record.combination)
    try:
        reproducer = shlex.split(record.reproducer)
    except ValueError:
        reproducer = [record.reproducer] if record.reproducer else []
    data: dict[str, Any] = {
        "build": {
            "targets": targets, "target_arch": record.arch or info.arch, "toolchain": toolchain,
            "wrapper": "ccache" if info.settings.get("ccache") else "none",
            "environment": {}, "kconfig": str(info.matrix_info.get("base", "")),
            "kconfig_add": [f"{k}={v}" for k, v in record.requested.items()],
            "jobs": info.settings.get("jobs"), "verbose": False,
            "runtime": record.image.get("runtime") or info.runtime,
            "reproducer_cmdline": reproducer,
        },
        "compiler": {"name": toolchain.split("-")[0], "version": version,
                     **({"version_full": record.compiler} if record.compiler else {})},
        "source": {"kernelversion": record.kernel.get("version") or info.kernel.get("version")},
        "runtime": {"image_name": record.image.get("tag") or info.image,
                    "image_digest": record.image.get("id") or info.image_id,
                    "version": str(info.settings.get("runtime_version", ""))},
        "results": {
            "status": status(record), "targets": result_targets,
            "duration": {**durations, "total": record.duration_s},
            "artifacts": {kind: [name] for kind, name in ARTIFACTS
                          if files is None or name in files},
        },
        "kmatrix": {
            "version": __version__, "run_id": record.run_id, "combination": record.combination,
            "verdict": record.verdict_text, "reasons": record.reasons, "values": record.values,
            "repaired": record.repaired, "mismatches": record.mismatches, "link": record.link,
            "boot": record.boot, "duplicate_of": record.duplicate_of,
            "resolved_config_hash": record.resolved_config_hash,
            "started": record.started, "finished": record.finished,
            "record": (combo_dir / "record.json").as_posix(),
        },
    }
    commit = record.kernel.get("commit") or info.kernel.get("commit")
    if commit:
        data["git"] = {"git_commit": commit}
    return data


def write_all(run_dir: Path, records: list[Record], info: RunInfo) -> None:
    for record in records:
        combo_dir = run_dir / record.combination
        files = {p.name for p in combo_dir.iterdir()} if combo_dir.is_dir() else set()
        try:
            atomic_write(combo_dir / METADATA,
                         json.dumps(metadata(record, info, files), indent=4, sort_keys=True)
                         + "\n")
        except (OSError, KmatrixError):
            continue  # its directory cannot hold files: the reports still carry its row
