"""Copy the console logs of the last judge corpus run (`nox -s judge_corpus`) into
tests/data/console/ as golden logs: the LKDTM boots into lkdtm/<kernel>/ with what was measured
(verdict and kind per type) in lkdtm/expected.json, the default matrix's kernels booted under
other CPU models into benign/ (each must pass):

    python3 -m tests.integration.lkdtm_harvest [KERNEL ...]     (default: lkdtm lkdtm-kasan)
    python3 -m tests.integration.lkdtm_harvest --table KERNEL   (the docs/judge.md table)

The unit tests (tests/unit/test_judge_golden.py) then judge every golden log without booting.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from harness import source

DEST = Path(__file__).resolve().parent.parent / "data" / "console" / "lkdtm"
BENIGN_DEST = DEST.parent / "benign"


def harvest(work: Path, kernel: str, dest: Path = DEST) -> dict[str, object]:
    results = [json.loads(line) for line in
               (work / kernel / "results.jsonl").read_text().splitlines() if line.strip()]
    last = {r["type"]: r for r in results}  # a rerun of a type replaces the earlier one
    out = dest / kernel
    out.mkdir(parents=True, exist_ok=True)
    types: dict[str, object] = {}
    for name, record in sorted(last.items()):
        log = work / kernel / f"{name}.log"
        if not log.exists():
            continue
        shutil.copy(log, out / f"{name}.log")
        types[name] = {"verdict": record["verdict"], "kind": record["kind"],
                       "reason": (record.get("reasons") or [""])[0],
                       "lkdtm": record.get("lkdtm"), "duration_s": record["duration_s"],
                       "cmdline": record["cmdline"]}
    shutil.copy(work / f"config-{kernel}", dest / f"{kernel}.config")
    return {"types": types}


def harvest_benign(boot_work: Path, dest: Path = BENIGN_DEST) -> list[str]:
    """The default matrix kernels' benign boots (test_boot_real.py), with their two configs."""
    results = boot_work / "benign-results.jsonl"
    if not results.exists():
        return []
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for line in results.read_text().splitlines():
        record = json.loads(line)
        name = f"{record['boot']}-{record['cpu']}"
        log = boot_work / f"benign-{name}" / "console.log"
        if log.exists() and record["verdict"] == "pass":
            shutil.copy(log, dest / f"{name}.log")
            copied.append(name)
    for label in ("dups-on", "dups-off"):
        shutil.copy(boot_work / f"config-{label}", dest / f"{label}.config")
    return sorted(set(copied))


def main(argv: list[str]) -> int:
    harvest_benign(source.cache_root() / "test-work" / "boot")
    work = source.cache_root() / "test-work" / "lkdtm"
    expected_path = DEST / "expected.json"
    expected = json.loads(expected_path.read_text()) if expected_path.exists() else {}
    for kernel in argv or ["lkdtm", "lkdtm-kasan"]:
        if (work / kernel / "results.jsonl").exists():
            expected[kernel] = harvest(work, kernel)
    expected_path.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return 0



def table(expected: dict[str, dict[str, dict[str, dict[str, object]]]], kernel: str) -> str:
    """The docs/judge.md table of one kernel's measured results."""
    from harness.judge.lkdtm import BY_NAME

    rows = ["| type | verdict | kind | what the kernel printed (first report, or LKDTM's own "
            "line, and the guest's writer status) | boot s |", "| --- | --- | --- | --- | --- |"]
    for name, record in expected[kernel]["types"].items():
        if name not in BY_NAME:
            continue
        lkdtm = record.get("lkdtm") or {}
        assert isinstance(lkdtm, dict)
        reason = str(record.get("reason") or "")
        if record["kind"]:
            said = reason.split(": `", 1)[-1].rstrip("`")
        else:
            said = "; ".join(lkdtm.get("lkdtm_says", [])[:2]) or "(nothing from LKDTM)"
        said = said.replace("|", "/").replace("`", "'")[:150]
        status = lkdtm.get("status") or "none: the boot ended first"
        rows.append(f"| {name} | {record['verdict']} | {record['kind'] or '-'} | `{said}` "
                    f"(writer: {status}) | {record['duration_s']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        print(table(json.loads((DEST / "expected.json").read_text()), sys.argv[2]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
