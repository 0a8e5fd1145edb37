"""The judge on real crash logs: every console of the LKDTM corpus (tests/data/console/lkdtm/,
made by tests/integration/test_lkdtm_real.py and harvested with lkdtm_harvest.py) is judged
again without booting, and must give exactly the verdict and kind measured on the real boot,
which must be what CRASH_TYPES says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.judge import judge_file
from harness.judge.lkdtm import BY_NAME
from harness.judge.reports import KINDS
from harness.kconfig import parse_config

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "console" / "lkdtm"
EXPECTED: dict[str, dict[str, dict[str, dict[str, object]]]] = json.loads(
    (GOLDEN / "expected.json").read_text())
CASES = [(kernel, name, record) for kernel, data in sorted(EXPECTED.items())
         for name, record in sorted(data["types"].items())]


def config(kernel: str) -> dict[str, str]:
    return parse_config((GOLDEN / f"{kernel}.config").read_text())


@pytest.mark.parametrize("kernel,name,record", CASES, ids=[f"{k}-{n}" for k, n, _ in CASES])
def test_golden_log_gives_the_measured_verdict_and_kind(kernel: str, name: str,
                                                        record: dict[str, object]) -> None:
    judgement, cmdline = judge_file(GOLDEN / kernel / f"{name}.log", config(kernel),
                                    known_guest=True)
    assert judgement.verdict.value == record["verdict"], judgement.reasons
    assert judgement.kind == record["kind"], judgement.reasons
    if name.startswith("benign-"):
        assert judgement.scenario == "dups" and judgement.reports == []
        assert record["verdict"] == "pass"
    else:
        assert f"kmatrix.lkdtm={name}" in cmdline
        lkdtm = judgement.extra["lkdtm"]
        assert isinstance(lkdtm, dict)
        if judgement.unexpected:  # the crash came after the guest triggered it
            assert judgement.unexpected[0].line_no > int(lkdtm["trigger_line"])


@pytest.mark.parametrize("kernel,name,record", [c for c in CASES if c[1] in BY_NAME],
                         ids=[f"{k}-{n}" for k, n, _ in CASES if n in BY_NAME])
def test_measured_kind_is_the_crash_table(kernel: str, name: str, record: dict[str, object]) -> None:
    crash = BY_NAME[name]
    want = crash.kasan if kernel.endswith("kasan") and crash.kasan else crash.expect
    assert record["kind"] == want


def test_golden_kinds() -> None:
    """Which kinds of the table LKDTM boots cover (the rest: real reports from other machines,
    test_judge_real_reports.py; both listed in docs/judge.md)."""
    seen = {str(r["kind"]) for _, _, r in CASES if r["kind"]}
    assert seen <= set(KINDS)
    assert {"panic", "BUG", "warning", "oops", "UBSAN", "list corruption", "slab corruption",
            "soft lockup", "hung task", "refcount", "usercopy", "fortify", "stack-protector",
            "stack guard page", "CR pinning", "sleeping in atomic context", "KASAN"} <= seen


BENIGN = GOLDEN.parent / "benign"
BENIGN_LOGS = sorted(BENIGN.glob("*.log"))


def test_there_are_benign_golden_logs() -> None:
    assert len(BENIGN_LOGS) >= 3


@pytest.mark.parametrize("log", BENIGN_LOGS, ids=[p.stem for p in BENIGN_LOGS])
def test_default_matrix_kernels_under_other_cpu_models_pass(log: Path) -> None:
    """tests/integration/test_boot_real.py booted these; they must pass here too."""
    label = "dups-off" if log.stem.startswith("dups-off") else "dups-on"
    judgement, _ = judge_file(log, parse_config((BENIGN / f"{label}.config").read_text()),
                              known_guest=True)
    assert judgement.verdict.value == "pass", judgement.reasons
    assert judgement.reports == [] or all(r.kind == "warning" for r in judgement.reports)


def test_real_kfence_report() -> None:
    """tests/data/console/kfence/README.md: KFENCE caught LKDTM's double free on a real boot."""
    kfence = GOLDEN.parent / "kfence"
    judgement, cmdline = judge_file(kfence / "lkdtm-kasan-SLAB_FREE_DOUBLE.log",
                                    parse_config((kfence / "lkdtm-kasan.config").read_text()),
                                    known_guest=True)
    assert "kmatrix.lkdtm=SLAB_FREE_DOUBLE" in cmdline
    assert judgement.verdict.value == "boot-fail"
    assert judgement.kind == "KFENCE"
    assert judgement.unexpected[0].ended  # the report ran to its closing `====` line
