"""The judge on real kernel reports from other machines (tests/data/console/real/README.md:
syzbot's consoles kept in google/syzkaller, crashes quoted on public Linux mailing lists).

Each excerpt is spliced into a real good boot of the same architecture and judged: the boot
fails, the first report has the expected kind and starts inside the excerpt, and the whole list
of reports is exactly the expected one (so a report split in two, or one swallowed by the
report before it, fails here). Then: every kind of the report table (the generic rows and every
architecture record's rows) is covered by a real console, either an LKDTM boot
(tests/data/console/lkdtm/expected.json, tests/data/console/kfence/) or a file here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.arch import ARCHES
from harness.judge import Judgement, judge
from harness.judge.reports import CALL_TRACE_KIND, REPORT_KINDS, WARNING_KIND, arch_kinds
from harness.kconfig import parse_config
from harness.verdict import Verdict

DATA = Path(__file__).resolve().parent.parent / "data" / "console"
REAL = DATA / "real"

# file -> (architecture it is judged with, the reports the judge must find, in console order)
CASES: dict[str, tuple[str, list[str]]] = {
    "kmsan.log": ("x86_64", ["KMSAN"]),
    "kcsan.log": ("x86_64", ["KCSAN"]),
    "general-protection-fault.log": ("x86_64", ["general protection fault"]),
    "rcu-stall.log": ("x86_64", ["RCU stall"]),
    "rcu-stall-with-task-dumps.log": ("x86_64", ["RCU stall"]),
    "warning-new-format.log": ("x86_64", ["warning"]),
    "debugobjects.log": ("x86_64", ["debugobjects"]),
    "unwinder.log": ("x86_64", ["unwinder"]),
    "lockdep.log": ("x86_64", ["lockdep"]),
    "lockdep-rcu-4.3.log": ("x86_64", ["lockdep"]),
    "lockdep-unlock-balance-4.x.log": ("x86_64", ["lockdep"]),
    "hard-lockup.log": ("x86_64", ["hard lockup", "panic"]),
    "workqueue-lockup.log": ("x86_64", ["workqueue lockup", "workqueue lockup"]),
    "vfs-busy-inodes.log": ("x86_64", ["VFS", "BUG"]),
    "memory-leak.log": ("x86_64", ["memory leak", "memory leak"]),
    "netdev-refcount-leak.log": ("x86_64", ["netdev refcount leak"]),
    "kmod-busy.log": ("x86_64", ["kmod busy", "panic"]),
    "scheduling-while-atomic.log": ("x86_64", ["scheduling while atomic"]),
    "bad-page-state.log": ("x86_64", ["bad page state"]),
    "divide-error.log": ("x86_64", ["divide error", "panic"]),
    "invalid-opcode.log": ("x86_64", ["invalid opcode"]),
    "double-fault.log": ("x86_64", ["double fault"]),
    "machine-check.log": ("x86_64", ["machine check"]),
    "call-trace.log": ("x86_64", ["call trace"]),
    "arm64-serror.log": ("arm64", ["SError"]),
    "arm64-stack-end-corruption.log": ("arm64", ["stack end corruption"]),
    "arm64-stack-overflow.log": ("arm64", ["stack overflow"]),
    "arm64-unhandled-exception.log": ("arm64", ["unhandled exception"]),
    "arm64-undefined-instruction.log": ("arm64", ["undefined instruction", "panic"]),
    "arm64-oops.log": ("arm64", ["oops", "panic"]),
    "arm64-brk.log": ("arm64", ["BRK", "panic"]),
    "arm64-rcu-stall-then-hard-lockup.log": ("arm64", ["RCU stall", "hard lockup"]),
}

# Kinds no real console from another machine can show, with the reason (reviewed; docs/judge.md).
NOT_COVERED: dict[str, str] = {
    "guest harness error": "`KMATRIX-ERROR` is printed by kmatrix's own guest (harness/guest/init.c),"
                           " not by the kernel; test_judge_reports.py covers its form",
}

# the good boot each architecture's excerpts are spliced into, its config and command line
BOOTS = {"x86_64": ("dups-on.log", "dups-on.config", "console=ttyS0"),
         "arm64": ("arm64/dups-on.log", "arm64/dups-on.config", "console=ttyAMA0")}
AFTER = "KMATRIX-PHASE begin phase=repeat-fs"


def spliced(name: str, arch: str) -> tuple[str, int, int]:
    """The good boot with the excerpt after its repeat-fs phase begins; (text, first, last)
    line numbers (1-based) of the excerpt in it."""
    log, _, _ = BOOTS[arch]
    good = (DATA / log).read_text().splitlines()
    at = next(i for i, line in enumerate(good) if AFTER in line) + 1
    excerpt = (REAL / name).read_text().splitlines()
    return "\n".join(good[:at] + excerpt + good[at:]) + "\n", at + 1, at + len(excerpt)


def judged(name: str, arch: str) -> tuple[Judgement, int, int]:
    _, config, console = BOOTS[arch]
    text, first, last = spliced(name, arch)
    cmdline = f"{console} panic=-1 printk.devkmsg=on loglevel=7"
    return judge(text, parse_config((DATA / config).read_text()), cmdline, arch=ARCHES[arch]), \
        first, last


def test_every_file_has_a_case_and_a_readme_row() -> None:
    files = sorted(p.name for p in REAL.glob("*.log"))
    assert files == sorted(CASES)
    readme = (REAL / "README.md").read_text()
    for name in files:
        assert f"| {name} |" in readme, f"{name} has no row in real/README.md"
        assert len((REAL / name).read_text().splitlines()) <= 150


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_report_is_judged_with_its_kind_and_nothing_else(name: str) -> None:
    arch, kinds = CASES[name]
    result, first, last = judged(name, arch)
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.kind == kinds[0], result.reasons
    assert result.reasons[0].startswith(f"{kinds[0]} at line ")
    assert [r.kind for r in result.reports] == kinds  # no report split in two, none swallowed
    assert all(first <= r.line_no <= last for r in result.reports)  # all from the excerpt


def test_the_excerpts_are_reports_only_with_the_right_architecture() -> None:
    """The arm64 forms are the arm64 record's: judged as x86_64 they are not those kinds."""
    for name, (arch, kinds) in CASES.items():
        if arch == "arm64" and kinds[0] in {k.kind for k in arch_kinds(ARCHES["arm64"])} \
                - {"oops"}:
            other, _, _ = judged(name, "x86_64")
            assert other.kind != kinds[0], name


def lkdtm_kinds() -> set[str]:
    expected = json.loads((DATA / "lkdtm" / "expected.json").read_text())
    kinds = {str(r["kind"]) for kernel in expected.values() for r in kernel["types"].values()
             if r["kind"]}
    return kinds | {"KFENCE"}  # tests/data/console/kfence/ (test_judge_golden.py)


def test_every_kind_of_the_table_is_covered_by_a_real_console() -> None:
    """A new row (generic or in an architecture's record) needs a real log here or from LKDTM,
    or a reviewed entry in NOT_COVERED; the LKDTM boots are x86_64."""
    covered = {("x86_64", kind) for kind in lkdtm_kinds()}
    covered |= {(arch, kind) for arch, kinds in CASES.values() for kind in kinds}
    missing = [f"{arch.name}: {row.kind}" for arch in ARCHES.values() for row in arch_kinds(arch)
               if (arch.name, row.kind) not in covered and row.kind not in NOT_COVERED]
    generic = {row.kind for row in REPORT_KINDS} | {WARNING_KIND.kind, CALL_TRACE_KIND.kind}
    missing += [f"generic: {kind}" for kind in sorted(generic) if kind not in NOT_COVERED
                and not any(k == kind for _, k in covered)]
    assert missing == []
    for kind in NOT_COVERED:  # the exclusions stay true: in the table, and still uncovered
        assert kind in generic and not any(k == kind for _, k in covered)
