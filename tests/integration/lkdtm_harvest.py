"""Copy the console logs of the last LKDTM corpus run into tests/data/console/lkdtm/ as golden
logs, with what was measured (verdict and kind per type) in expected.json:

    python3 -m tests.integration.lkdtm_harvest [KERNEL ...]     (default: lkdtm lkdtm-kasan)

The unit tests (tests/unit/test_judge_golden.py) then judge every golden log without booting.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from harness import source

DEST = Path(__file__).resolve().parent.parent / "data" / "console" / "lkdtm"


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
                       "lkdtm": record.get("lkdtm"), "duration_s": record["duration_s"],
                       "cmdline": record["cmdline"]}
    shutil.copy(work / f"config-{kernel}", dest / f"{kernel}.config")
    return {"types": types}


def main(argv: list[str]) -> int:
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

    rows = ["| type | kmatrix verdict | kind | expected | what the kernel printed (LKDTM's own line) |",
            "| --- | --- | --- | --- | --- |"]
    for name, record in expected[kernel]["types"].items():
        crash = BY_NAME.get(name)
        want = "" if crash is None else (crash.kasan if kernel.endswith("kasan") and crash.kasan
                                         else crash.expect) or "no report"
        lkdtm = record.get("lkdtm") or {}
        said = "; ".join(lkdtm.get("lkdtm_says", [])[:2]) if isinstance(lkdtm, dict) else ""
        rows.append(f"| {name} | {record['verdict']} | {record['kind'] or '-'} | {want} | "
                    f"{said.replace('|', '/')[:120]} |")
    return "\n".join(rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--table"]:
        print(table(json.loads((DEST / "expected.json").read_text()), sys.argv[2]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
