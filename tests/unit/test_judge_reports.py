"""The generic part of the judge: the report table, WARN() splats versus free-text `WARNING:`,
taint decoding, and what can never pass (markers alone, malformed markers, oversized logs).

The headlines below are the kernel's own format strings (6.12, file named in the table) with
values filled in; real captured reports are in tests/data/console/ (test_judge_golden.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.arch import ARCHES, Arch, default
from harness.judge import REPORT_KINDS, judge, scan_reports, verdict_json
from harness.judge.console import check_size, clean_lines
from harness.judge.reports import KINDS, arch_kinds, table, taint_from_mask, taint_from_text
from harness.kconfig import parse_config
from harness.verdict import EXIT_BAD_INPUT, EXIT_KERNEL_FAILED, InputError, Verdict

DATA = Path(__file__).resolve().parent.parent / "data" / "console"
CMDLINE = "console=ttyS0 panic=-1 printk.devkmsg=on loglevel=7"
ON = parse_config((DATA / "dups-on.config").read_text())
GOOD = (DATA / "dups-on.log").read_text()


def splice(lines: list[str], after: str = "KMATRIX-PHASE begin phase=repeat-fs") -> str:
    out = GOOD.splitlines()
    at = next(i for i, line in enumerate(out) if after in line)
    return "\n".join(out[:at + 1] + [f"[    3.000000] {line}" for line in lines] + out[at + 1:]) + "\n"


# One headline per row of the table (and per pattern alternative the issue names).
HEADLINES: list[tuple[str, str]] = [
    ("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: lkdtm_CORRUPT_STACK+0x3c/0x40", "stack-protector"),
    ("Kernel panic - not syncing: corrupted stack end detected inside scheduler", "stack end corruption"),
    ("PANIC: double fault, error_code: 0x0", "double fault"),
    ("BUG: TASK stack guard page was hit at ffffc90000147ff8 (stack is ffffc90000148000..ffffc9000014c000)", "stack guard page"),
    ("Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b", "panic"),
    ("BUG: KASAN: slab-use-after-free in kmod_dup_request_delete+0x20/0x60", "KASAN"),
    ("BUG: KFENCE: use-after-free read in test_use_after_free_read+0xb3/0x143", "KFENCE"),
    ("BUG: KCSAN: data-race in generic_fillattr / inode_set_ctime_current", "KCSAN"),
    ("BUG: KMSAN: uninit-value in __crc32c_le_base+0x2a4/0x4c0", "KMSAN"),
    ("UBSAN: array-index-out-of-bounds in drivers/misc/lkdtm/bugs.c:422:16", "UBSAN"),
    ("BUG kmalloc-8 (Tainted: G    B             ): Object already free", "slab corruption"),
    ("BUG kmalloc-1k (Not tainted): Right Redzone overwritten", "slab corruption"),
    ("kmem_cache_free: Wrong slab cache. lkdtm-heap-b but object is from lkdtm-heap-a", "slab corruption"),
    ("BUG: Bad page state in process init  pfn:02a3c", "bad page state"),
    ("watchdog: BUG: soft lockup - CPU#0 stuck for 11s! [init:45]", "soft lockup"),
    ("NMI watchdog: Watchdog detected hard LOCKUP on cpu 1", "hard lockup"),
    ("BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!", "workqueue lockup"),
    ("rcu: INFO: rcu_sched self-detected stall on CPU", "RCU stall"),
    ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "RCU stall"),
    ("rcu: INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 0-... } 21003 jiffies s: 53 root: 0x1/.", "RCU stall"),
    ("INFO: task init:45 blocked for more than 10 seconds.", "hung task"),
    ("INFO: task kworker/0:1:12 blocked in I/O wait for more than 122 seconds.", "hung task"),
    ("WARNING: possible circular locking dependency detected", "lockdep"),
    ("WARNING: suspicious RCU usage", "lockdep"),
    ("[ INFO: possible circular locking dependency detected ]", "lockdep"),  # before 4.15
    ("[ BUG: bad unlock balance detected! ]", "lockdep"),
    ("BUG: scheduling while atomic: init/45/0x00000002", "scheduling while atomic"),
    ("BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283", "sleeping in atomic context"),
    ("usercopy: Kernel memory exposure attempt detected from SLUB object 'lkdtm-usercopy' (offset 16, size 1024)!", "usercopy"),
    ("strscpy: detected buffer overflow: 6 byte read of buffer size 5", "fortify"),
    ("memcpy: detected field-spanning write (size 64) of single field \"target->a\" at drivers/misc/lkdtm/fortify.c:109 (size 8)", "fortify"),
    ("refcount_t: saturated; leaking memory.", "refcount"),
    ("list_add corruption. prev->next should be next (ffffc90000163e70), but was 0000000000000000. (prev=ffffc90000163e58).", "list corruption"),
    ("list_del corruption, ffff888003f9e240->next is LIST_POISON1 (dead000000000100)", "list corruption"),
    ("ODEBUG: free active (active state 0) object: ffff88810a3c5e20 object type: timer_list hint: foo+0x0/0x10", "debugobjects"),
    ("pinned CR4 bits changed: 0x100000!?", "CR pinning"),
    ("unreferenced object 0xffff888105f36e00 (size 64):", "memory leak"),
    ("kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)", "memory leak"),
    ("unregister_netdevice: waiting for lo to become free. Usage count = 2", "netdev refcount leak"),
    ("VFS: Busy inodes after unmount of sda1 (ext4)", "VFS"),
    ("VFS: Close: file count is 0 (f_op=shm_file_operations)", "VFS"),
    ("Oops: general protection fault, probably for non-canonical address 0xdffffc0000000000: 0000 [#1] PREEMPT SMP KASAN NOPTI", "general protection fault"),
    ("Oops: divide error: 0000 [#1] PREEMPT SMP NOPTI", "divide error"),
    ("divide error: 0000 [#1] SMP", "divide error"),
    ("Oops: invalid opcode: 0000 [#1] PREEMPT NOPTI", "invalid opcode"),
    ("kernel BUG at drivers/misc/lkdtm/bugs.c:100!", "BUG"),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000000", "oops"),
    ("BUG: unable to handle page fault for address: ffffffff82a0e000", "oops"),
    ("kernel tried to execute NX-protected page - exploit attempt? (uid: 0)", "oops"),
    ("Oops: 0002 [#1] NOPTI", "oops"),
    ("Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000", "oops"),
    ("Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP", "oops"),
    ("Unhandled fault: page domain fault (0x01b) at 0x00000000", "oops"),
    ("mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 4: b200000000070f0f", "machine check"),
    ("WARNING: kernel stack frame pointer at 00000000b0a0a0a0 in init:1 has bad value 0000000000000000", "unwinder"),
    ("request_module: modprobe fs-x cannot be processed, kmod busy with 50 threads for more than 5 seconds now", "kmod busy"),
    ("BUG: using smp_processor_id() in preemptible [00000000] code: init/1", "BUG"),
    ("KMATRIX-ERROR mount debugfs: No such device", "guest harness error"),
    ("WARNING: CPU: 0 PID: 45 at drivers/misc/lkdtm/bugs.c:95 lkdtm_WARNING+0x11/0x20", "warning"),
    ("WARNING: at kernel/foo.c:12 foo+0x1/0x2()", "warning"),
    ("WARNING: fs/dcache.c:829 at fast_dput+0x334/0x430, CPU#0: syz.0.17/6007", "warning"),
    ("Call Trace:", "call trace"),
]


# The forms only another architecture's record adds: (architecture, headline, kind).
ARCH_HEADLINES: list[tuple[str, str, str]] = [
    ("arm64", "Unable to handle kernel paging request at virtual address dead000000000108", "oops"),
    ("arm64", "Unable to handle kernel write to read-only memory at virtual address ffff800080e2c000", "oops"),
    ("arm64", "Internal error: Oops - BRK: 00000000f2000800 [#1] PREEMPT SMP", "BRK"),
    ("arm64", "Internal error: BRK handler: 00000000f2000800 [#1] PREEMPT SMP", "BRK"),  # 6.12
    ("arm64", "Internal error: Oops - Undefined instruction: 0000000002000000 [#1] SMP", "undefined instruction"),
    ("arm64", "SError Interrupt on CPU0, code 0x00000000be000000 -- SError", "SError"),
    ("arm64", "Unhandled 64-bit el1h sync exception on CPU0, ESR 0x0000000096000044 -- DABT (current EL)", "unhandled exception"),
    ("arm64", "Bad mode in Synchronous Abort handler detected on CPU0, code 0x86000004 -- IABT (current EL)", "unhandled exception"),
    ("arm64", "Insufficient stack space to handle exception!", "stack overflow"),
]


def test_every_table_kind_has_a_headline_test() -> None:
    assert set(KINDS) == {kind for _, kind in HEADLINES} | {kind for _, _, kind in ARCH_HEADLINES}


@pytest.mark.parametrize("arch,line,kind", ARCH_HEADLINES,
                         ids=[f"{a}-{k}:{line[:30]}" for a, line, k in ARCH_HEADLINES])
def test_architecture_headline_names_its_kind(arch: str, line: str, kind: str) -> None:
    result = judge(splice([line]), ON, CMDLINE, arch=ARCHES[arch])
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.kind == kind, result.reasons
    assert line.strip()[:60] in result.reasons[0]


@pytest.mark.parametrize("line,kind", HEADLINES, ids=[f"{k}:{line[:30]}" for line, k in HEADLINES])
def test_headline_names_its_kind(line: str, kind: str) -> None:
    result = judge(splice([line]), ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.kind == kind
    assert result.reasons[0].startswith(f"{kind} at line ")
    assert line.strip()[:60] in result.reasons[0]


# -- free text with WARNING: is not a warning -----------------------------------------------

BENIGN = [
    "Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!",
    "Speculative Return Stack Overflow: WARNING: See https://kernel.org/doc/html/latest/admin-guide/hw-vuln/srso.html for mitigation options.",
    "RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable to RETBleed attacks, data leaks possible!",
    "ITS: WARNING: Spectre-v2 mitigation is off, disabling ITS",
    "WARNING: fbcon: Driver 'bochs-drm' missed to adjust virtual screen size (1024x768 vs. 1024x1536)",
    "fbcon: WARNING: taking over console (from the issue's example form)",
    "WARNING: The mand mount option has been deprecated and",
    "XFS (sda1): WARNING: Reset corrupted AGFL on AG 0. 4 blocks leaked. Please unmount and run xfs_repair.",
    "EXT4-fs (vda): warning: mounting unchecked fs, running e2fsck is recommended",
    "ACPI Warning: SystemIO range 0x0000000000000B00-0x0000000000000B08 conflicts",
    "platform regulatory.0: Direct firmware load for regulatory.db failed with error -2",
    "Spectre V2 : Spectre v2 / SpectreRSB mitigation: Filling RSB on context switch",
    "MDS: Vulnerable: Clear CPU buffers attempted, no microcode",
    "x86/cpu: SGX disabled by BIOS.",
    "BUGS: none reported here, and debug_bug_mode=0",
]


@pytest.mark.parametrize("line", BENIGN)
def test_informational_warning_text_passes(line: str) -> None:
    result = judge(splice([line]), ON, CMDLINE)
    assert result.verdict is Verdict.PASS, result.reasons
    assert result.reports == []


def test_all_benign_lines_together_pass() -> None:
    assert judge(splice(BENIGN, after="Linux version"), ON, CMDLINE).verdict is Verdict.PASS


# -- splats: the message names the kind; the parts belong to the report ---------------------

def splat(message: str, where: str = "lib/refcount.c:25 refcount_warn_saturate+0x9a/0x130") -> list[str]:
    return ["------------[ cut here ]------------", message,
            f"WARNING: CPU: 0 PID: 45 at {where}",
            "CPU: 0 UID: 0 PID: 45 Comm: init Tainted: G        W          6.12.117 #1",
            "RIP: 0010:refcount_warn_saturate+0x9a/0x130", "Call Trace:", " <TASK>",
            " lkdtm_do_action+0x12/0x20", " </TASK>", "---[ end trace 0000000000000000 ]---"]


def test_warn_message_names_the_kind_and_is_quoted() -> None:
    result = judge(splice(splat("refcount_t: saturated; leaking memory.")), ON, CMDLINE)
    assert result.kind == "refcount"
    assert "refcount_t: saturated" in result.reasons[0]
    [report] = result.reports
    assert report.where == "lib/refcount.c:25" and report.call_trace and report.ended
    assert result.reasons[1] == "kernel tainted W (WARN) (last `Tainted:` line)"


def test_warn_without_known_message_is_a_warning() -> None:
    result = judge(splice(splat("Warning message trigger", "drivers/misc/lkdtm/bugs.c:95 x+0x1/0x2")),
                   ON, CMDLINE)
    assert [r.kind for r in result.reports] == ["warning"]
    assert result.reasons[0].startswith("warning at line ")
    assert "WARNING: CPU: 0 PID: 45 at drivers/misc/lkdtm/bugs.c:95" in result.reasons[0]


def test_lines_inside_a_report_are_not_reports_of_their_own() -> None:
    oops = ["BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "#PF: supervisor write access in kernel mode", "Oops: 0002 [#1] NOPTI",
            "CPU: 0 UID: 0 PID: 46 Comm: init Not tainted 6.12.117 #1", "Call Trace:", " <TASK>",
            " ? __die+0x1f/0x60", " </TASK>", "BUG: this line is part of the Oops",
            "---[ end trace 0000000000000000 ]---"]
    result = judge(splice(oops), ON, CMDLINE)
    assert [r.kind for r in result.reports] == ["oops"]
    assert result.reports[0].ended and result.reports[0].call_trace


def test_a_panic_inside_a_report_is_its_own_report() -> None:
    lockup = ["watchdog: BUG: soft lockup - CPU#0 stuck for 11s! [init:45]",
              "CPU: 0 UID: 0 PID: 45 Comm: init Not tainted 6.12.117 #1",
              "Kernel panic - not syncing: softlockup: hung tasks",
              "---[ end Kernel panic - not syncing: softlockup: hung tasks ]---"]
    result = judge(splice(lockup), ON, CMDLINE)
    assert [r.kind for r in result.reports] == ["soft lockup", "panic"]
    assert result.kind == "soft lockup"


def test_slub_report_ends_at_its_fix_line() -> None:
    slub = ["=============================================================================",
            "BUG kmalloc-8 (Tainted: G    B             ): Object already free",
            "-----------------------------------------------------------------------------",
            "INFO: Allocated in lkdtm_SLAB_FREE_DOUBLE+0x1a/0x70 age=1 cpu=0 pid=45",
            "Call Trace:", " <TASK>", " </TASK>",
            "FIX kmalloc-8: Object at 0xffff888003f2d2a0 not freed"]
    result = judge(splice(slub), ON, CMDLINE)
    assert [r.kind for r in result.reports] == ["slab corruption"]
    assert result.reports[0].ended


def test_a_fatal_report_owns_the_panic_it_ends_with() -> None:
    serror = ["SError Interrupt on CPU5, code 0xbf000002 -- SError", "pc : x+0x178/0x268",
              "Kernel panic - not syncing: Asynchronous SError Interrupt", "Call trace:",
              " panic+0x15c/0x380", "---[ end Kernel panic - not syncing: Asynchronous SError ]---"]
    result = judge(splice(serror), ON, CMDLINE, arch=ARCHES["arm64"])
    assert [r.kind for r in result.reports] == ["SError"] and result.reports[0].ended


def test_task_dumps_right_after_a_call_trace_report_belong_to_it() -> None:
    stall = ["rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "Call Trace:", " <TASK>",
             " </TASK>", "rcu: RCU grace-period kthread stack dump:",
             "task:rcu_preempt     state:I stack:0 pid:16", "Call Trace:", " <TASK>", " </TASK>"]
    result = judge(splice(stall), ON, CMDLINE)
    assert [r.kind for r in result.reports] == ["RCU stall"] and result.reports[0].ended
    far = stall[:4] + ["random: crng init done"] * 31 + ["Call Trace:", " <TASK>", " </TASK>"]
    assert [r.kind for r in judge(splice(far), ON, CMDLINE).reports] == ["RCU stall", "call trace"]
    line_report = ["BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 59s!",
                   "Call Trace:", " <TASK>", " </TASK>"]
    assert [r.kind for r in judge(splice(line_report), ON, CMDLINE).reports] == [
        "workqueue lockup", "call trace"]


def test_a_call_trace_report_ends_at_the_next_headline_after_its_trace() -> None:
    """arm64 prints no `</TASK>`: the hard lockup after an RCU stall's trace is its own report."""
    stall = ["rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "Call trace:",
             " __switch_to+0xe4/0x168", "watchdog: Watchdog detected hard LOCKUP on cpu 3"]
    result = judge(splice(stall), ON, CMDLINE, arch=ARCHES["arm64"])
    assert [r.kind for r in result.reports] == ["RCU stall", "hard lockup"]


def test_scan_reports_on_plain_lines() -> None:
    reports = scan_reports(["hello", "UBSAN: shift-out-of-bounds in x.c:1:2", "---[ end trace ]---",
                            "Call Trace:", " </TASK>"])
    assert [r.kind for r in reports] == ["UBSAN", "call trace"]


def test_table_rows_name_their_source_and_architecture() -> None:
    for row in REPORT_KINDS:
        assert row.source and row.arch == "*"
    for arch in ARCHES.values():
        rows = arch_kinds(arch)
        assert all(row.source and row.arch == arch.name for row in rows)
        assert table(arch)[:len(rows)] == rows  # checked before the generic rows


def test_architecture_forms_come_from_the_arch_record() -> None:
    """A double fault is only a `double fault` on an architecture whose record says so."""
    line = "PANIC: double fault, error_code: 0x0"
    assert [r.kind for r in scan_reports([line])] == ["double fault"]
    bare = Arch(**{**default().__dict__, "name": "bare", "report_forms": ()})
    assert [r.kind for r in scan_reports([line], bare)] == []


# -- taint --------------------------------------------------------------------------------

def test_taint_decoding() -> None:
    assert taint_from_mask(0) == []
    assert taint_from_mask(512) == ["W"]
    assert taint_from_mask((1 << 7) | (1 << 9) | (1 << 12)) == ["D", "W", "O"]
    assert taint_from_text("G        W  O       ") == ["W", "O"]
    assert taint_from_text("P      D           ") == ["P", "D"]


def test_end_marker_taint_is_decoded_in_the_reason() -> None:
    text = GOOD.replace("tainted=0", "tainted=640")  # D + W
    result = judge(text, ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert result.reasons == ["kernel tainted D (DIE), W (WARN): flags other than W"]
    assert result.taint == ["D", "W"]


# -- what can never pass ------------------------------------------------------------------

def markers_only() -> str:
    return "\n".join(line for line in GOOD.splitlines() if "KMATRIX-" in line) + "\n"


def test_markers_only_log_cannot_be_judged(tmp_path: Path) -> None:
    assert len(markers_only().splitlines()) >= 8
    with pytest.raises(InputError, match="no kernel banner"):
        judge(markers_only(), ON, CMDLINE)
    path = tmp_path / "markers.log"
    path.write_text(markers_only())
    record, status = verdict_json(path, DATA / "dups-on.config", CMDLINE)
    assert (record["verdict"], status) == ("cannot-judge", EXIT_BAD_INPUT)


def test_end_marker_without_fields_fails() -> None:
    result = judge(GOOD.replace("KMATRIX-END phases=3 tainted=0", "KMATRIX-END"), ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert [r.split(" at line")[0] for r in result.reasons] == [
        "end marker without phases=", "end marker without tainted="]


@pytest.mark.parametrize("old,new,field", [
    ("KMATRIX-END phases=3 tainted=0", "KMATRIX-END phases=three tainted=0", "phases=three"),
    ("KMATRIX-END phases=3 tainted=0", "KMATRIX-END phases=3 tainted=lots", "tainted=lots"),
    ("calls=8 returned=8 errno=ENODEV:8", "calls=8 returned=x errno=ENODEV:8", "returned=x"),
    ("errno=ENODEV:8", "errno=ENODEV:eight", "errno=eight"),
    ("name=fs-kmatrixfs n=8", "name=fs-kmatrixfs n=many", "n=many"),
])
def test_malformed_marker_fields_fail_with_the_reason(old: str, new: str, field: str,
                                                      tmp_path: Path) -> None:
    text = GOOD.replace(old, new, 1)
    result = judge(text, ON, CMDLINE)
    assert result.verdict is Verdict.BOOT_FAIL
    assert any("malformed marker at line" in r and field in r for r in result.reasons), result.reasons
    path = tmp_path / "bad.log"
    path.write_text(text)
    record, status = verdict_json(path, DATA / "dups-on.config", CMDLINE)
    assert (record["verdict"], status) == ("boot-fail", EXIT_KERNEL_FAILED)


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    with open(path, "wb") as f:
        f.truncate(65 << 20)  # sparse: no disk used
    with pytest.raises(InputError, match="over the judge's 64 MiB cap"):
        check_size(path)
    record, status = verdict_json(path, DATA / "dups-on.config")
    assert status == EXIT_BAD_INPUT and "cap" in record["reasons"][0]  # type: ignore[index]


def test_reading_is_streamed() -> None:
    """judge() takes any iterable of lines and never needs the whole text."""
    def lines():  # a generator: can be consumed once, has no len()
        yield from GOOD.splitlines(keepends=True)
    assert judge(lines(), ON, CMDLINE).verdict is Verdict.PASS


def test_report_json_is_serialisable() -> None:
    result = judge(splice(splat("refcount_t: saturated; leaking memory.")), ON, CMDLINE)
    data = json.loads(json.dumps(result.to_json()))
    assert data["kind"] == "refcount" and data["reports"][0]["where"] == "lib/refcount.c:25"


def test_clean_lines_handles_bare_carriage_returns() -> None:
    assert clean_lines("<6>[    1.000000] a\r\n[    2.0] b") == ["a", "b"]
