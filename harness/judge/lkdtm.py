"""The LKDTM scenario: the guest provokes one crash (drivers/misc/lkdtm) and the judge must name
it. The guest (harness/guest/init.c, `kmatrix.lkdtm=TYPE` on the command line) writes TYPE to
/sys/kernel/debug/provoke-crash/DIRECT from a child process and prints:

  KMATRIX-BEGIN version=1 mode=lkdtm type=TYPE
  KMATRIX-LKDTM trigger type=TYPE
  KMATRIX-LKDTM result type=TYPE status=exit:OK|exit:ERRNO|signal:N|stuck ms=T
  KMATRIX-END mode=lkdtm phases=0 tainted=T

No report is allowed: a crash is a boot-fail naming its kind. A type that provokes nothing
(the protection or the architecture is missing) passes, and LKDTM's own verdict line
(`lkdtm: FAIL: ...`, `lkdtm: XFAIL: ...`, `ok: ...`) is kept for the record.

``CRASH_TYPES`` is every type of tools/testing/selftests/lkdtm/tests.txt (6.12), with the kind
kmatrix must give on the default architecture (harness/arch/) for the kernels built from
harness/fragments/lkdtm.config, or
``None`` with the reason the type provokes no report there. The expectations were measured on
real boots (docs/judge.md, tests/data/console/lkdtm/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .reports import LineInfo, Report
from .scenario import Scenario, taint_problems

PARAM = "kmatrix.lkdtm"
WAIT_PARAM = "kmatrix.lkdtm_wait"
# More kernel command line for every LKDTM boot. `no_timer_check`: on a loaded host a TCG
# guest's timer may not tick within check_timer()'s window, and the kernel panics ("IO-APIC +
# timer doesn't work!") before init runs (seen here at load 15). The detectors' short
# thresholds are set by the guest just before the trigger (init.c), not here: at boot they
# would report a slow TCG boot as a soft lockup (seen: pty_init ran 13 s without scheduling).
# `kfence.sample_interval=0`: KFENCE (on in both LKDTM kernels) guards one allocation every
# 100 ms, so whether a heap crash is a KFENCE report or a SLUB/KASAN one would depend on the
# moment (seen: SLAB_FREE_DOUBLE on the KASAN kernel gave `BUG: KFENCE: invalid free`, kept as
# the golden log tests/data/console/kfence/); off, every heap type has one measured kind.
# `watchdog_thresh=60`: at host load 20 a TCG boot of the LKDTM kernel spent 22 s in one
# initcall without scheduling and the soft lockup detector (default 20 s) reported it in
# swapper/1 before init ran (seen on SPINLOCKUP and REFCOUNT_DEC_AND_TEST_SATURATED); the boot
# threshold is now 120 s and the guest lowers it to 10 s just before the trigger.
CMDLINE: tuple[str, ...] = ("no_timer_check", "kfence.sample_interval=0", "watchdog_thresh=60")
_LKDTM_SAYS = re.compile(r"lkdtm: ((X?FAIL|ok|OK)\b.*|.*(correctly poisoned|appears initialized|"
                         r"not poisoned|Negative detected|Saturation detected|unchanged).*)")

# kernel/watchdog_perf.c when the CPU has no PMU (QEMU TCG): no hard lockup detector at all
_NO_NMI_WATCHDOG = re.compile(r"NMI watchdog: Perf NMI watchdog permanently disabled")


@dataclass(frozen=True)
class CrashType:
    name: str
    expect: str | None  # the kind kmatrix must give; None: no report on this kernel/arch
    why: str  # the mechanism that reports it, or why nothing does
    extra: tuple[str, ...] = ()  # more kernel command line words for this type
    limit_s: float = 90.0  # the boot's wall-clock limit
    ci: bool = False  # in the CI subset
    kasan: str | None = None  # the kind on the KASAN kernel, when it differs
    hangs: bool = False  # provokes nothing visible and never returns: boot-timeout


def _t(name: str, expect: str | None, why: str, **kw: object) -> CrashType:
    return CrashType(name, expect, why, **kw)  # type: ignore[arg-type]


NX = "the page tables map it non-executable: `kernel tried to execute NX-protected page`"
RO = "the page is read-only (STRICT_KERNEL_RWX): a write page fault Oops"
REFCOUNT = "refcount_t saturates and WARN()s (lib/refcount.c)"
USERCOPY = "HARDENED_USERCOPY: usercopy_abort() then BUG()"
FORTIFY = "FORTIFY_SOURCE: __fortify_report() WARN()s, then BUG()"
CRASH_TYPES: tuple[CrashType, ...] = (
    _t("PANIC", "panic", "panic(\"dumptest\")", ci=True),
    _t("PANIC_STOP_IRQOFF", "panic", "panic() with interrupts off"),
    _t("BUG", "BUG", "BUG(): `kernel BUG at drivers/misc/lkdtm/bugs.c`", ci=True),
    _t("WARNING", "warning", "WARN_ON(1)", ci=True),
    _t("WARNING_MESSAGE", "warning", "WARN(1, \"Warning message trigger\")"),
    _t("EXCEPTION", "oops", "NULL pointer write: page fault Oops", ci=True,
       kasan="KASAN"),
    _t("LOOP", "soft lockup", "endless loop in process context, no preemption (PREEMPT_NONE): "
       "the soft lockup detector"),
    _t("EXHAUST_STACK", "stack guard page", "recursion until the VMAP_STACK guard page"),
    _t("CORRUPT_STACK", "stack-protector", "overwritten canary: __stack_chk_fail() panics",
       ci=True),
    _t("CORRUPT_STACK_STRONG", "stack-protector", "STACKPROTECTOR_STRONG canary"),
    _t("ARRAY_BOUNDS", "UBSAN", "UBSAN_BOUNDS: array-index-out-of-bounds", ci=True),
    _t("CORRUPT_LIST_ADD", "list corruption", "DEBUG_LIST: list_add corruption WARN()",
       ci=True),
    _t("CORRUPT_LIST_DEL", "list corruption", "DEBUG_LIST: list_del corruption WARN()"),
    _t("STACK_GUARD_PAGE_LEADING", "stack guard page", "read below the VMAP_STACK stack"),
    _t("STACK_GUARD_PAGE_TRAILING", "oops", "read above the VMAP_STACK stack: the fault "
       "handler names a guard page only below the stack, so this is a plain page fault Oops "
       "(measured)"),
    _t("REPORT_STACK_CANARY", None, "not a crash: prints `ok: stack canaries differ`"),
    _t("UNSET_SMEP", "CR pinning", "CR4 pinning WARN()s and restores SMEP"),
    _t("DOUBLE_FAULT", None, "LKDTM's double fault is 32-bit only (CONFIG_X86_32): XFAIL on 64-bit"),
    _t("CORRUPT_PAC", None, "arm64 pointer authentication only (XFAIL)"),
    _t("UNALIGNED_LOAD_STORE_WRITE", None, "the CPU allows unaligned access (no trap)"),
    _t("SLAB_LINEAR_OVERFLOW", "slab corruption", "SLUB_DEBUG_ON red zone check on kfree()",
       kasan="KASAN"),
    _t("VMALLOC_LINEAR_OVERFLOW", "oops", "write into the guard page after a vmalloc area",
       kasan="KASAN"),
    _t("WRITE_AFTER_FREE", "slab corruption", "SLUB_DEBUG_ON poison check", kasan="KASAN"),
    _t("READ_AFTER_FREE", None, "a read changes nothing SLUB can check; LKDTM itself reports "
       "whether the memory was poisoned", kasan="KASAN"),
    _t("WRITE_BUDDY_AFTER_FREE", None, "page allocator: no poisoning without page_poison",
       kasan="KASAN"),
    _t("READ_BUDDY_AFTER_FREE", None, "page allocator: a read changes nothing checkable",
       kasan="KASAN"),
    _t("SLAB_INIT_ON_ALLOC", None, "not a crash: LKDTM reports whether init_on_alloc zeroed",
       extra=("init_on_alloc=1",)),
    _t("BUDDY_INIT_ON_ALLOC", None, "not a crash: LKDTM reports whether init_on_alloc zeroed",
       extra=("init_on_alloc=1",)),
    _t("SLAB_FREE_DOUBLE", "slab corruption", "SLUB_DEBUG_ON: `Object already free`", ci=True,
       kasan="KASAN"),
    _t("SLAB_FREE_CROSS", "slab corruption", "kfree to the wrong cache: `Wrong slab cache`"),
    _t("SLAB_FREE_PAGE", "oops", "kfree() of a page-allocator page with SLUB debugging on: "
       "6.12.117 reads through a NULL cache in kmem_cache_debug_flags(), a NULL pointer Oops "
       "(measured)"),
    _t("SOFTLOCKUP", "soft lockup", "preemption off, endless loop: the soft lockup detector "
       "(the guest sets softlockup_panic=1, which then ends the boot)", ci=True),
    _t("HARDLOCKUP", None, "interrupts off, endless loop: no hard lockup detector can run "
       "(perf NMI watchdog needs a PMU, TCG has none; the buddy detector needs 2 CPUs); the "
       "boot hangs silently until QEMU is killed", limit_s=45.0, hangs=True),
    _t("SMP_CALL_LOCKUP", None, "needs SMP; the kernel has one CPU"),
    _t("SPINLOCKUP", "sleeping in atomic context", "one CPU: spinlocks only disable "
       "preemption, so the second lock returns; the task then returns to user space holding "
       "it and DEBUG_ATOMIC_SLEEP reports `sleeping function called from invalid context` "
       "(measured)"),
    _t("HUNG_TASK", "hung task", "uninterruptible sleep forever: the hung task detector "
       "(the guest sets a 10 s timeout)", ci=True),
    _t("EXEC_DATA", "oops", NX),
    _t("EXEC_STACK", "oops", NX),
    _t("EXEC_KMALLOC", "oops", NX),
    _t("EXEC_VMALLOC", "oops", NX),
    _t("EXEC_RODATA", "oops", NX),
    _t("EXEC_USERSPACE", "oops", "SMEP: `unable to execute userspace code`"),
    _t("EXEC_NULL", "oops", "call through NULL: page fault Oops"),
    _t("ACCESS_USERSPACE", "oops", "SMAP: kernel access to a user page faults"),
    _t("ACCESS_NULL", "oops", "NULL pointer read: page fault Oops"),
    _t("WRITE_RO", "oops", RO),
    _t("WRITE_RO_AFTER_INIT", "oops", RO),
    _t("WRITE_KERN", "oops", RO),
    _t("WRITE_OPD", None, "function descriptors exist on ppc64/ia64/parisc only (XFAIL)"),
    _t("REFCOUNT_INC_OVERFLOW", "refcount", REFCOUNT, ci=True),
    _t("REFCOUNT_ADD_OVERFLOW", "refcount", REFCOUNT),
    _t("REFCOUNT_INC_NOT_ZERO_OVERFLOW", "refcount", REFCOUNT),
    _t("REFCOUNT_ADD_NOT_ZERO_OVERFLOW", "refcount", REFCOUNT),
    _t("REFCOUNT_DEC_ZERO", "refcount", REFCOUNT),
    _t("REFCOUNT_DEC_NEGATIVE", "refcount", REFCOUNT),
    _t("REFCOUNT_DEC_AND_TEST_NEGATIVE", "refcount", REFCOUNT),
    _t("REFCOUNT_SUB_AND_TEST_NEGATIVE", "refcount", REFCOUNT),
    _t("REFCOUNT_INC_ZERO", "refcount", REFCOUNT),
    _t("REFCOUNT_ADD_ZERO", "refcount", REFCOUNT),
    _t("REFCOUNT_INC_SATURATED", "refcount", REFCOUNT),
    _t("REFCOUNT_DEC_SATURATED", "refcount", REFCOUNT),
    _t("REFCOUNT_ADD_SATURATED", "refcount", REFCOUNT),
    _t("REFCOUNT_INC_NOT_ZERO_SATURATED", "refcount", REFCOUNT),
    _t("REFCOUNT_ADD_NOT_ZERO_SATURATED", "refcount", REFCOUNT),
    _t("REFCOUNT_DEC_AND_TEST_SATURATED", "refcount", REFCOUNT),
    _t("REFCOUNT_SUB_AND_TEST_SATURATED", "refcount", REFCOUNT),
    _t("REFCOUNT_TIMING", "soft lockup", "a timing loop of INT_MAX refcount operations that "
       "never schedules: under TCG it runs past the guest's 10 s soft lockup threshold, a "
       "true report (measured)"),
    _t("ATOMIC_TIMING", "soft lockup", "the same INT_MAX loop with atomic_t: a soft lockup "
       "under TCG (measured)"),
    _t("USERCOPY_SLAB_SIZE_TO", "usercopy", USERCOPY),
    _t("USERCOPY_SLAB_SIZE_FROM", "usercopy", USERCOPY),
    _t("USERCOPY_SLAB_WHITELIST_TO", "usercopy", USERCOPY),
    _t("USERCOPY_SLAB_WHITELIST_FROM", "usercopy", USERCOPY),
    _t("USERCOPY_STACK_FRAME_TO", "usercopy", USERCOPY),
    _t("USERCOPY_STACK_FRAME_FROM", "usercopy", USERCOPY),
    _t("USERCOPY_STACK_BEYOND", "usercopy", USERCOPY),
    _t("USERCOPY_KERNEL", "usercopy", USERCOPY, ci=True),
    _t("STACKLEAK_ERASING", None, "needs GCC_PLUGIN_STACKLEAK (no GCC plugins in the image)"),
    _t("CFI_FORWARD_PROTO", None, "needs CFI_CLANG (kernel built with gcc)"),
    _t("CFI_BACKWARD", None, "no backward-edge CFI with gcc on this architecture (shadow call stack is "
       "arm64/clang)"),
    _t("FORTIFY_STRSCPY", "fortify", FORTIFY),
    _t("FORTIFY_STR_OBJECT", "fortify", FORTIFY),
    _t("FORTIFY_STR_MEMBER", "fortify", FORTIFY),
    _t("FORTIFY_MEM_OBJECT", "fortify", FORTIFY),
    _t("FORTIFY_MEM_MEMBER", "fortify", "FORTIFY_SOURCE: `detected field-spanning write` WARN()",
       ci=True),
    _t("PPC_SLB_MULTIHIT", None, "powerpc only (XFAIL)"),
)
BY_NAME = {t.name: t for t in CRASH_TYPES}


def selftest_types(text: str) -> list[str]:
    """Every type tools/testing/selftests/lkdtm/tests.txt names, the commented-out ones too
    (they are commented out because they take the machine down: here each has its own boot)."""
    names = []
    for line in text.splitlines():
        word = line.lstrip("#").split(" ", 1)[0].strip()
        if word:
            names.append(word)
    return names


def type_on_cmdline(cmdline: str) -> str | None:
    for word in cmdline.split():
        key, eq, value = word.partition("=")
        if key == PARAM and eq:
            return value
    return None


def cmdline_words(crash: CrashType, wait_s: int | None = None) -> tuple[str, ...]:
    """The extra kernel command line of one LKDTM boot."""
    words = [f"{PARAM}={crash.name}", *CMDLINE, *crash.extra]
    if wait_s is not None:
        words.append(f"{WAIT_PARAM}={wait_s}")
    return tuple(words)


class LkdtmScenario(Scenario):
    name = "lkdtm"
    expected_phases = 0

    def __init__(self, crash_type: str) -> None:
        super().__init__()
        self.crash_type = crash_type
        self.triggered = False
        self.trigger_line = 0
        self.status = ""
        self.lkdtm_says: list[str] = []
        self.no_hard_lockup_detector = ""  # the kernel's line saying the detector is off

    def feed(self, no: int, line: str, info: LineInfo) -> None:
        if _NO_NMI_WATCHDOG.search(line):
            self.no_hard_lockup_detector = line.strip()
        said = _LKDTM_SAYS.search(line)
        if said and len(self.lkdtm_says) < 5:
            self.lkdtm_says.append(said[0].strip()[:200])
        marker = self.markers.feed(no, line)
        if marker is None or "KMATRIX-LKDTM" not in line:
            return
        if " trigger " in line:
            self.triggered, self.trigger_line = True, no
        elif " result " in line:
            self.status = marker.fields.get("status", "?")

    def trouble(self) -> list[str]:
        return []

    def reports_before_trigger(self, reports: list[Report]) -> list[Report]:
        """Reports the crash cannot have caused: printed before the guest triggered it."""
        return [r for r in reports if not self.triggered or r.line_no < self.trigger_line]

    def where_stopped(self) -> str:
        if self.markers.begin is None:
            return "before /init ran"
        if self.triggered and not self.status:
            where = f"after triggering LKDTM {self.crash_type}, before the writer returned"
            if self.no_hard_lockup_detector:
                where += (" (a CPU spinning with interrupts off is seen by no detector here: "
                          f"`{self.no_hard_lockup_detector}`)")
            return where
        return "after the LKDTM result"

    def problems(self, reports: list[Report]) -> list[str]:
        end_problems = self.markers.end_problems(self.expected_phases)
        problems = list(self.markers.malformed)
        if self.markers.begin is None:
            problems.append("harness marker KMATRIX-BEGIN missing")
        if not self.triggered:
            problems.append(f"LKDTM {self.crash_type} was never triggered (no KMATRIX-LKDTM "
                            "trigger line)")
        elif not self.status:
            problems.append(f"LKDTM {self.crash_type}: no result line")
        elif self.status == "stuck":
            problems.append(f"LKDTM {self.crash_type}: the writer never returned and the kernel "
                            "reported nothing")
        problems += end_problems
        problems += taint_problems(self.markers.taint(), set(), False)
        return list(dict.fromkeys(problems))

    def to_json(self) -> dict[str, object]:
        return {"lkdtm": {"type": self.crash_type, "status": self.status,
                          "trigger_line": self.trigger_line, "lkdtm_says": self.lkdtm_says}}
