"""The judge on golden console logs from real boots (tests/data/console/), and on variants of
them with injected failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.judge import (
    clean_lines,
    cmdline_from_console,
    judge,
    main_print,
    trace_on_cmdline,
    verdict_json,
)
from harness.kconfig import parse_config
from harness.verdict import EXIT_BAD_INPUT, EXIT_KERNEL_FAILED, EXIT_OK, InputError, Verdict

DATA = Path(__file__).resolve().parent.parent / "data" / "console"
CMDLINE = "console=ttyS0 panic=-1 printk.devkmsg=on loglevel=7"
TRACE_CMDLINE = CMDLINE + " module.enable_dups_trace=1"


def log(name: str) -> str:
    return (DATA / f"{name}.log").read_text()


def config(name: str) -> dict[str, str]:
    return parse_config((DATA / f"{name}.config").read_text())


ON, OFF = config("dups-on"), config("dups-off")


def insert_after(text: str, marker: str, new_lines: list[str]) -> str:
    """Insert lines (with a kernel-style timestamp) after the first line containing marker."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if marker in line)
    stamp = "[    3.000000] "
    return "\n".join(lines[:at + 1] + [stamp + n for n in new_lines] + lines[at + 1:]) + "\n"


def drop_lines(text: str, pattern: str, count: int = 1) -> str:
    lines, out, dropped = text.splitlines(), [], 0
    for line in lines:
        if dropped < count and re.search(pattern, line):
            dropped += 1
            continue
        out.append(line)
    assert dropped == count
    return "\n".join(out) + "\n"


# -- the golden logs ----------------------------------------------------------------------

def test_golden_configs_differ_only_in_dups() -> None:
    diff = {k for k in ON.keys() | OFF.keys() if ON.get(k, "n") != OFF.get(k, "n")}
    assert diff == {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"}
    assert ON["CONFIG_BUG"] == "y" and ON["CONFIG_MODULE_DEBUG"] == "y"


@pytest.mark.parametrize("name,cfg,cmdline,trace", [
    ("dups-on", ON, CMDLINE, False),
    ("dups-on-trace", ON, TRACE_CMDLINE, True),
    ("dups-off", OFF, CMDLINE, False),
])
def test_golden_boots_pass(name: str, cfg: dict[str, str], cmdline: str, trace: bool) -> None:
    result = judge(log(name), cfg, cmdline)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.trace is trace
    assert list(result.phases) == ["concurrent-fs", "repeat-fs", "concurrent-char"]


def test_dups_on_counts() -> None:
    phases = judge(log("dups-on"), ON, CMDLINE).phases
    assert phases["concurrent-fs"].modprobe == {"fs-kmatrixfs": 1}
    assert phases["concurrent-fs"].duplicates == {"fs-kmatrixfs": 7}
    assert phases["concurrent-fs"].errno == {"ENODEV": 8}
    assert phases["repeat-fs"].modprobe == {}
    assert phases["repeat-fs"].duplicates == {"fs-kmatrixfs": 1}
    assert phases["concurrent-char"].modprobe == {"char-major-120-1": 1, "char-major-120": 1}
    assert phases["concurrent-char"].duplicates == {"char-major-120-1": 7, "char-major-120": 7}


def test_dups_off_counts() -> None:
    phases = judge(log("dups-off"), OFF, CMDLINE).phases
    assert phases["concurrent-fs"].modprobe == {"fs-kmatrixfs": 8}
    assert phases["repeat-fs"].modprobe == {"fs-kmatrixfs": 1}
    assert phases["concurrent-char"].modprobe == {"char-major-120-1": 8, "char-major-120": 8}
    assert all(not p.duplicates for p in phases.values())


def test_trace_counts_warnings() -> None:
    phases = judge(log("dups-on-trace"), ON, TRACE_CMDLINE).phases
    assert phases["concurrent-fs"].dups_warnings == 7
    assert phases["repeat-fs"].dups_warnings == 1
    assert phases["concurrent-char"].dups_warnings == 14


def test_trace_option_instead_of_cmdline() -> None:
    cfg = dict(ON, CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE="y")
    assert judge(log("dups-on-trace"), cfg, CMDLINE).verdict is Verdict.PASS


def test_real_hang_is_timeout() -> None:
    result = judge(log("broken-hang"), ON, CMDLINE + " KMATRIX_BREAK=hang")
    assert result.verdict is Verdict.BOOT_TIMEOUT
    assert "no end marker" in result.reasons[0]
    assert "KMATRIX-BROKEN" in result.reasons[1]


def test_real_init_exit_is_panic() -> None:
    result = judge(log("broken-init-exit"), OFF, CMDLINE + " KMATRIX_BREAK=exit")
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.reasons[0].startswith("panic at line")
    assert "Attempted to kill init" in result.reasons[0]


# -- injected kernel problems -------------------------------------------------------------

@pytest.mark.parametrize("line,label", [
    ("Kernel panic - not syncing: Fatal exception", "panic"),
    ("Oops: 0000 [#1] NOPTI", "oops"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000008", "oops"),
    ("BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283", "sleeping in atomic context"),
    ("general protection fault, probably for non-canonical address 0xdead000000000100", "general protection fault"),
    ("WARNING: possible circular locking dependency detected", "lockdep"),
    ("WARNING: inconsistent lock state", "lockdep"),
    ("rcu: INFO: rcu_sched self-detected stall on CPU", "RCU stall"),
    ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [init:1]", "soft lockup"),
    ("Watchdog detected hard LOCKUP on cpu 0", "hard lockup"),
    ("INFO: task init:1 blocked for more than 120 seconds.", "hung task"),
    ("refcount_t: underflow; use-after-free.", "refcount"),
    ("list_del corruption. prev->next should be ffff888000123400", "list corruption"),
    ("BUG: KASAN: slab-use-after-free in kmod_dup_request_delete+0x20/0x60", "KASAN"),
    ("UBSAN: array-index-out-of-bounds in kernel/module/dups.c:99:12", "UBSAN"),
    ("request_module: modprobe fs-x cannot be processed, kmod busy with 50 threads", "kmod busy"),
])
def test_injected_problem_fails_with_quote(line: str, label: str) -> None:
    text = insert_after(log("dups-on"), "KMATRIX-PHASE begin phase=repeat-fs", [line])
    result = judge(text, ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.reasons[0].startswith(label + " at line")
    assert line[:60] in result.reasons[0]


def test_problem_wins_over_missing_end_marker() -> None:
    text = drop_lines(log("dups-on"), "KMATRIX-END")
    text = insert_after(text, "KMATRIX-RESULT phase=concurrent-char",
                        ["Kernel panic - not syncing: Attempted to kill init!"])
    assert judge(text, ON, CMDLINE).verdict is Verdict.BOOT_FAIL


def test_unexpected_warning_with_dups_off() -> None:
    splat = ["------------[ cut here ]------------",
             "WARNING: CPU: 0 PID: 1 at mm/slub.c:1234 kfree+0x10/0x20",
             "Call Trace:", " <TASK>", " </TASK>", "---[ end trace 0000000000000000 ]---"]
    result = judge(insert_after(log("dups-off"), "KMATRIX-BEGIN", splat), OFF, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    [reason] = result.reasons
    assert re.fullmatch(r"warning at line \d+: "
                        r"`WARNING: CPU: 0 PID: 1 at mm/slub.c:1234 kfree\+0x10/0x20`", reason)


def test_other_warning_fails_even_with_trace_on() -> None:
    splat = ["------------[ cut here ]------------",
             "WARNING: CPU: 0 PID: 9 at fs/namespace.c:77 path_mount+0x1/0x2",
             "Call Trace:", "---[ end trace 0000000000000000 ]---"]
    text = insert_after(log("dups-on-trace"), "KMATRIX-PHASE begin phase=repeat-fs", splat)
    result = judge(text, ON, TRACE_CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert "fs/namespace.c" in result.reasons[0]


def test_stray_call_trace_fails() -> None:
    text = insert_after(log("dups-on"), "KMATRIX-BEGIN", ["Call Trace:", " <TASK>", " </TASK>"])
    assert judge(text, ON, CMDLINE).reasons[0].startswith("call trace at line")


# -- the end marker and the harness's own markers -----------------------------------------

def test_missing_end_marker_is_timeout_with_last_lines() -> None:
    text = log("dups-on").split("KMATRIX-END")[0].rsplit("\n", 1)[0] + "\n"
    result = judge(text, ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_TIMEOUT
    assert result.reasons[0] == "no end marker (KMATRIX-END): stopped after the last phase"
    assert result.reasons[1].startswith("last console lines: ")
    assert "KMATRIX-RESULT phase=concurrent-char" in result.reasons[1]


def test_stuck_in_phase_is_timeout_naming_the_phase() -> None:
    text = log("dups-on").split("KMATRIX-MODPROBE name=char-major-120 ")[0]
    result = judge(text, ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_TIMEOUT
    assert "during phase concurrent-char" in result.reasons[0]


def test_timeout_before_init() -> None:
    text = log("dups-on").split("Run /init")[0]
    assert "before /init ran" in judge(text, ON, CMDLINE).reasons[0]


def test_missing_phase_fails() -> None:
    text = drop_lines(log("dups-on"), "phase=repeat-fs", 2)
    result = judge(text, ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert "phase repeat-fs: missing" in result.reasons


def test_callers_with_different_results_fail() -> None:
    text = log("dups-on").replace("errno=ENODEV:8", "errno=ENODEV:7,OK:1")
    result = judge(text, ON, CMDLINE)
    assert result.reasons == [("phase concurrent-fs: callers got ENODEV:7,OK:1, "
                               "expected every one ENODEV")]


def test_caller_that_never_returned_fails() -> None:
    text = log("dups-on").replace("calls=8 returned=8 errno=ENXIO:8", "calls=8 returned=7 errno=ENXIO:7")
    reasons = judge(text, ON, CMDLINE).reasons
    assert "phase concurrent-char: 1 of 8 callers never returned" in reasons


def test_unexpected_taint_fails() -> None:
    text = log("dups-on").replace("tainted=0", "tainted=4096")
    assert judge(text, ON, CMDLINE).reasons == [
        "kernel tainted O (OOT_MODULE): flags other than W"]


# -- dups behaviour -----------------------------------------------------------------------

def test_wrong_duplicate_count_fails() -> None:
    text = drop_lines(log("dups-on"), "duplicate request for module fs-kmatrixfs")
    result = judge(text, ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.reasons == ["phase concurrent-fs: 6 duplicate report(s) for fs-kmatrixfs, expected 7"]


def test_modprobe_run_twice_for_one_name_fails() -> None:
    text = log("dups-on").replace("modprobe=fs-kmatrixfs:1", "modprobe=fs-kmatrixfs:2")
    text = insert_after(text, "KMATRIX-MODPROBE name=fs-kmatrixfs",
                        ["KMATRIX-MODPROBE name=fs-kmatrixfs pid=99"])
    text = drop_lines(text, "duplicate request for module fs-kmatrixfs")
    reasons = judge(text, ON, CMDLINE).reasons
    assert "phase concurrent-fs: modprobe ran 2 time(s) for fs-kmatrixfs, expected 1 " \
           "(dups on, 8 request(s))" in reasons


def test_repeated_request_must_not_run_modprobe() -> None:
    text = log("dups-on").replace("errno=ENODEV:1 modprobe=none", "errno=ENODEV:1 modprobe=fs-kmatrixfs:1")
    text = insert_after(text, "KMATRIX-PHASE begin phase=repeat-fs",
                        ["KMATRIX-MODPROBE name=fs-kmatrixfs pid=99"])
    reasons = judge(text, ON, CMDLINE).reasons
    assert reasons[0].startswith("phase repeat-fs: modprobe ran 1 time(s) for fs-kmatrixfs, expected 0")


def test_init_and_console_modprobe_counts_must_agree() -> None:
    text = drop_lines(log("dups-off"), "KMATRIX-MODPROBE name=fs-kmatrixfs")
    reasons = judge(text, OFF, CMDLINE).reasons
    assert reasons and "the console shows" in reasons[0]


def test_dups_off_log_fails_as_dups_on() -> None:
    reasons = judge(log("dups-off"), ON, CMDLINE).reasons
    assert "phase concurrent-fs: modprobe ran 8 time(s) for fs-kmatrixfs, expected 1 " \
           "(dups on, 8 request(s))" in reasons


def test_dups_on_log_fails_as_dups_off() -> None:
    result = judge(log("dups-on"), OFF, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.reasons[0].startswith("duplicate request reported although dups is off")


def test_trace_expected_but_plain_reports_fail() -> None:
    reasons = judge(log("dups-on"), ON, TRACE_CMDLINE).reasons
    assert reasons[0].startswith("tracing is on but a duplicate was reported without a warning")


def test_trace_warning_without_trace_fails() -> None:
    result = judge(log("dups-on-trace"), ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.reasons[0].startswith("dups trace warning while tracing is off at line")


def test_trace_warning_without_call_trace_fails() -> None:
    text = drop_lines(log("dups-on-trace"), r"Call Trace:")
    reasons = judge(text, ON, TRACE_CMDLINE).reasons
    assert reasons == ["1 dups.c warning(s) without a call trace"]


def test_modules_off_expects_no_modprobe() -> None:
    cfg = dict(OFF, CONFIG_MODULES="n")
    reasons = judge(log("dups-off"), cfg, CMDLINE).reasons
    assert "phase concurrent-fs: modprobe ran 8 time(s) for fs-kmatrixfs, expected 0 " \
           "(dups off, 8 request(s))" in reasons


# -- input handling -----------------------------------------------------------------------

def test_not_a_console_log_cannot_be_judged() -> None:
    with pytest.raises(InputError):
        judge("make: *** [Makefile:1234: vmlinux] Error 2\n", ON, CMDLINE)


def foreign_log() -> str:
    """A real machine's serial log: the kernel ran some other init, no kmatrix guest."""
    head = log("dups-on").split("KMATRIX-BEGIN")[0].rsplit("\n", 1)[0]
    return head + "\n[    1.2] systemd[1]: Welcome to Debian GNU/Linux 12 (bookworm)!\n"


def test_log_of_another_init_cannot_be_judged() -> None:
    with pytest.raises(InputError, match="not from the kmatrix guest"):
        judge(foreign_log(), ON, CMDLINE)


def test_log_of_another_init_still_shows_kernel_problems() -> None:
    text = foreign_log() + "[    2.0] Kernel panic - not syncing: Fatal exception\n"
    assert judge(text, ON, CMDLINE).verdict is Verdict.BOOT_FAIL


def test_known_guest_without_markers_is_timeout() -> None:
    result = judge(foreign_log(), ON, CMDLINE, known_guest=True)
    assert result.verdict is Verdict.BOOT_TIMEOUT


def test_tolerates_crlf_and_no_timestamps() -> None:
    text = "\r\n".join(re.sub(r"^\[\s*\d+\.\d+\] ", "", line)
                       for line in log("dups-on").splitlines())
    assert judge(text, ON, CMDLINE).verdict is Verdict.PASS


@pytest.mark.parametrize("cmdline,on", [
    ("module.enable_dups_trace=1", True), ("module.enable_dups_trace", True),
    ("module.enable_dups_trace=Y", True), ("module.enable_dups_trace=0", False),
    ("quiet", False), ("module.enable-dups-trace=on", True)])
def test_trace_on_cmdline(cmdline: str, on: bool) -> None:
    assert trace_on_cmdline(cmdline) is on


def test_clean_lines_strips_prefixes() -> None:
    assert clean_lines("<4>[   12.5] [  T42] hello\r\nx") == ["hello", "x"]


def test_cmdline_from_console() -> None:
    assert cmdline_from_console(log("dups-on-trace")) == TRACE_CMDLINE


def test_verdict_json_statuses(tmp_path: Path) -> None:
    record, status = verdict_json(DATA / "dups-on-trace.log", DATA / "dups-on.config")
    assert (record["verdict"], status) == ("pass", EXIT_OK)
    assert record["cmdline"] == TRACE_CMDLINE
    json.dumps(record)
    _, status = verdict_json(DATA / "dups-on.log", DATA / "dups-off.config")
    assert status == EXIT_KERNEL_FAILED
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    record, status = verdict_json(junk, DATA / "dups-on.config")
    assert (record["verdict"], status) == ("cannot-judge", EXIT_BAD_INPUT)
    _, status = verdict_json(tmp_path / "missing.log", DATA / "dups-on.config")
    assert status == EXIT_BAD_INPUT
    _, status = verdict_json(DATA / "dups-on.log", junk)
    assert status == EXIT_BAD_INPUT


def test_main_print(capsys: pytest.CaptureFixture[str]) -> None:
    status = main_print(DATA / "dups-off.log", DATA / "dups-off.config", CMDLINE)
    assert status == EXIT_OK
    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"


def test_trace_warning_with_a_relative_source_path_passes() -> None:
    """A kmatrix run (O= outside the tree) prints dups.c's path relative to the output tree:
    `at ../../../tmp/kernel/linux-source-6.12/kernel/module/dups.c:174`. Still the dups trace."""
    text = (DATA / "dups-on-trace-relative-path.log").read_text()
    assert "/kernel/module/dups.c:" in text and "at kernel/module/dups.c" not in text
    cfg = parse_config((DATA / "dups-on-kmatrix-run.config").read_text())
    result = judge(text, cfg, "console=ttyS0 module.enable_dups_trace=1")
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.phases["concurrent-fs"].dups_warnings == 7


def test_trace_warning_in_the_2025_warn_format_passes() -> None:
    """Kernels since 2025 print a WARN() as `WARNING: FILE:LINE at FUNC, CPU#N: COMM/PID`
    (kernel/panic.c __warn; syzbot's consoles, tests/data/console/real/). The dups trace in that
    form is still the dups trace, not a `call trace` report."""
    text = (DATA / "dups-on-trace.log").read_text()
    new = re.sub(r"WARNING: CPU: 0 PID: (\d+) at (kernel/module/dups.c:174) (\S+)",
                 r"WARNING: \2 at \3, CPU#0: modprobe/\1", text)
    assert new != text and "WARNING: CPU:" not in new
    result = judge(new, ON, TRACE_CMDLINE)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.phases["concurrent-fs"].dups_warnings == (
        judge(text, ON, TRACE_CMDLINE).phases["concurrent-fs"].dups_warnings)
