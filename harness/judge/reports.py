"""The kernel's report formats as data, and one streaming pass that finds them in a console log.

``REPORT_KINDS`` is the whole knowledge of what a kernel report looks like: one row per format
(kind, the headline pattern, where the report ends, severity, and the kernel file the text
comes from); an architecture's own forms come from its record (``Arch.report_forms``).
``ReportScanner.feed(no, line)`` takes cleaned console lines one at a time (no line is kept
beyond what a report quotes), so a log of any size is read in constant memory. Scenarios (the
dups guest, LKDTM) build their own rules on the reports.

Rules the table cannot say by itself:

- A WARN() splat is ``WARNING: CPU: N PID: P at FILE:LINE FUNC`` (or the older ``WARNING: at``;
  kernels since 2025 print ``WARNING: FILE:LINE at FUNC, CPU#N: COMM/PID``), usually after
  ``------------[ cut here ]------------`` and a message. The message names the kind when
  it is one of the table's (``refcount_t:``, ``list_add corruption``, ``ODEBUG:``, a fortify
  report, ...); otherwise the kind is ``warning``. Free text containing ``WARNING:``
  (``Spectre V2 : WARNING: Unprivileged eBPF ...``) is not a report.
- Lines inside an open report (its call trace, registers, SLUB's ``INFO:`` lines, KASAN's
  allocation stacks) belong to it; only a fatal headline (a panic) starts a new report there.
- A ``Call Trace:`` outside every report is a report of its own (``call trace``: dump_stack()),
  except right after a report that ends with its call trace: RCU stalls, hung tasks and lockups
  go on with more task dumps (``rcu: RCU grace-period kthread stack dump:``, NMI backtraces),
  which belong to that report.
- A report that ends with its call trace ends at the next headline of another kind after it
  (a trace without ``</TASK>``: an RCU stall followed by a hard lockup is two reports).
- A fatal report owns the panic it ends with (``SError Interrupt`` then ``Kernel panic - not
  syncing: Asynchronous SError Interrupt`` is one ``SError`` report).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .. import arch as archmod
from ..arch import ARCHES, Arch


class Severity(str, enum.Enum):
    FATAL = "fatal"  # the kernel stops (panic): nothing after it is the boot's doing
    ERROR = "error"  # the kernel found a bug or corruption and went on (maybe killing a task)
    WARNING = "warning"  # a WARN() splat: a bug the kernel reports and survives


class End(str, enum.Enum):
    """Where a report ends (the lines up to it belong to the report)."""

    LINE = "line"  # a one-line report
    TRACE = "end-trace"  # `---[ end trace ... ]---` (WARN, Oops, BUG, UBSAN)
    SEPARATOR = "separator"  # a line of `=` (KASAN, KFENCE, KCSAN, KMSAN)
    FIX = "fix"  # SLUB's `FIX cache: ...` line (or its separator)
    STACK = "stack"  # the end of the call trace that follows (`</TASK>`), lockdep, lockups
    PANIC = "panic"  # `---[ end Kernel panic` (the machine stops)


@dataclass(frozen=True)
class ReportKind:
    kind: str
    pattern: re.Pattern[str]
    end: End
    severity: Severity
    source: str  # the kernel file that prints it (6.12)
    arch: str = "*"  # "*": every architecture; else the one whose record adds it


def _k(kind: str, pattern: str, end: End, severity: Severity, source: str) -> ReportKind:
    return ReportKind(kind, re.compile(pattern), end, severity, source)


E, W, F = Severity.ERROR, Severity.WARNING, Severity.FATAL

# The reports every architecture prints. Architecture-only forms (traps, page faults) live in
# the architecture's record (harness/arch/: Arch.report_forms) and are checked first.
# Order matters: the first row whose pattern matches a line names its kind (specific before
# generic: `Kernel panic - not syncing: stack-protector: ...` is a stack-protector report).
REPORT_KINDS: tuple[ReportKind, ...] = (
    _k("stack-protector", r"stack-protector: Kernel stack is corrupted in", End.PANIC, F,
       "kernel/panic.c (__stack_chk_fail)"),
    _k("stack end corruption", r"corrupted stack end detected inside scheduler", End.PANIC, F,
       "kernel/sched/core.c (schedule_debug)"),
    _k("panic", r"Kernel panic - not syncing", End.PANIC, F, "kernel/panic.c"),
    _k("KASAN", r"BUG: KASAN: ", End.SEPARATOR, E, "mm/kasan/report.c"),
    _k("KFENCE", r"BUG: KFENCE: ", End.SEPARATOR, E, "mm/kfence/report.c"),
    _k("KCSAN", r"BUG: KCSAN: ", End.SEPARATOR, E, "kernel/kcsan/report.c"),
    _k("KMSAN", r"BUG: KMSAN: ", End.SEPARATOR, E, "mm/kmsan/report.c"),
    _k("UBSAN", r"UBSAN: [\w-]+ in ", End.TRACE, E, "lib/ubsan.c"),
    _k("slab corruption", r"^BUG [\w.:()-]+ \((Not tainted|Tainted: [^)]*)\): |"
       r"Wrong slab cache\. \S+ but object is from", End.FIX, E,
       "mm/slub.c (slab_bug, cache_from_obj)"),
    _k("bad page state", r"BUG: Bad (page state|page map|rss-counter)", End.STACK, E,
       "mm/page_alloc.c (bad_page), mm/memory.c (print_bad_pte)"),
    _k("soft lockup", r"BUG: soft lockup - CPU#|soft lockup - CPU#\d+ stuck", End.STACK, E,
       "kernel/watchdog.c"),
    _k("hard lockup", r"Watchdog detected hard LOCKUP|hard LOCKUP on cpu", End.STACK, E,
       "kernel/watchdog.c, kernel/watchdog_perf.c"),
    _k("workqueue lockup", r"BUG: workqueue lockup", End.LINE, E, "kernel/workqueue.c"),
    _k("RCU stall", r"detected (expedited )?stalls? on CPUs|self-detected stall on CPU|"
       r"detected expedited stalls|rcu: INFO: .*detected stall|INFO: rcu_\w+ detected stall",
       End.STACK, E, "kernel/rcu/tree_stall.h, kernel/rcu/tree_exp.h"),
    _k("hung task", r"INFO: task \S+ blocked (in I/O wait )?for more than \d+ seconds",
       End.STACK, E, "kernel/hung_task.c"),
    _k("lockdep", r"(WARNING: |\[ (INFO|BUG): )(possible (circular|recursive) locking|"
       r"inconsistent lock state|"
       r"bad unlock balance|suspicious RCU usage|held lock freed|lock held when returning|"
       r"possible irq lock inversion|\w+-safe -> \w+-unsafe lock order|"
       r"[Nn]ested lock was not taken|lock held at task exit|bad contention)|"
       r"BUG: (MAX_LOCKDEP|looking up invalid subclass)",
       End.STACK, E, "kernel/locking/lockdep.c"),
    _k("scheduling while atomic", r"BUG: scheduling while atomic", End.STACK, E,
       "kernel/sched/core.c (__schedule_bug)"),
    _k("sleeping in atomic context", r"BUG: sleeping function called from invalid context|"
       r"BUG: workqueue leaked atomic|do not call blocking ops when !TASK_RUNNING",
       End.STACK, E, "kernel/sched/core.c (__might_resched)"),
    _k("usercopy", r"usercopy: Kernel memory (exposure|overwrite) attempt detected", End.TRACE, E,
       "mm/usercopy.c"),
    _k("fortify", r"detected buffer \w* ?overflow|detected field-spanning write", End.TRACE, E,
       "lib/string_helpers.c (__fortify_report), include/linux/fortify-string.h"),
    _k("refcount", r"refcount_t: ", End.TRACE, E, "lib/refcount.c"),
    _k("list corruption", r"\b(h?list_(add|del)|list_add_valid|list_del_entry_valid) corruption",
       End.TRACE, E, "lib/list_debug.c"),
    _k("debugobjects", r"ODEBUG: ", End.TRACE, E, "lib/debugobjects.c"),
    _k("memory leak", r"unreferenced object 0x[0-9a-f]+|kmemleak: \d+ new suspected memory leak",
       End.LINE, E, "mm/kmemleak.c"),
    _k("netdev refcount leak", r"unregister_netdevice: waiting for \S+ to become free", End.LINE,
       E, "net/core/dev.c (netdev_wait_allrefs_any)"),
    _k("VFS", r"VFS: Busy inodes after unmount|VFS: Close: file count is 0", End.LINE, E,
       "fs/super.c, fs/open.c"),
    _k("BUG", r"kernel BUG at |^Kernel BUG \[", End.TRACE, E,
       "include/asm-generic/bug.h (BUG, BUG_ON), lib/bug.c"),
    _k("oops", r"^Oops(: | - |\[)|Unable to handle kernel (NULL pointer dereference|"
       r"paging request|execute|access)|^Internal error: |^Unhandled fault|"
       r"SError Interrupt on CPU", End.TRACE, E,
       "arch/*/kernel/dumpstack.c, arch/*/kernel/traps.c, arch/*/mm/fault.c (die, Oops)"),
    _k("kmod busy", r"kmod busy with \d+ threads", End.LINE, E, "kernel/module/kmod.c"),
    _k("BUG", r"\bBUG: ", End.STACK, E, "everything else that says `BUG: `"),
    _k("guest harness error", r"KMATRIX-ERROR", End.LINE, E, "harness/guest/init.c"),
)


def arch_kinds(arch: Arch) -> tuple[ReportKind, ...]:
    """The architecture's own rows (harness/arch/: Arch.report_forms)."""
    return tuple(ReportKind(f.kind, re.compile(f.pattern), End(f.end), Severity(f.severity),
                            f.source, arch.name) for f in arch.report_forms)


def table(arch: Arch | None = None) -> tuple[ReportKind, ...]:
    """The rows the judge checks for one architecture's console, in order."""
    return (*arch_kinds(arch or archmod.default()), *REPORT_KINDS)


# A WARN() splat's own line (up to 2025 `WARNING: CPU: N PID: P at FILE:LINE FUNC`, since then
# `WARNING: FILE:LINE at FUNC, CPU#N: COMM/PID`), and the lines around splats and traces.
WARN_LINE = re.compile(r"^WARNING: (CPU: \d+ PID: \d+ at |at |(?=\S+:\d+ at \S+, CPU#\d+: ))"
                       r"(?P<where>\S+)?(?P<rest>.*)")
CUT_HERE = "------------[ cut here ]------------"
END_TRACE = re.compile(r"---\[ end trace( [0-9a-f]+)? \]---")
END_PANIC = re.compile(r"---\[ end Kernel panic")
SEPARATOR = re.compile(r"^={20,}$")
FIX_LINE = re.compile(r"^FIX [\w.:()-]+: ")
CALL_TRACE = re.compile(r"^\s*Call [Tt]race:")
TRACE_DONE = re.compile(r"^\s*</TASK>\s*$")
TAINTED = re.compile(r"\bTainted: ([A-Z ]{1,19})")
MAX_REPORT_LINES = 400  # a report with no end in sight ends here
MAX_MESSAGE_LINES = 6  # a `cut here` not followed by a WARNING/BUG line within this is noise
MAX_TRAILING_LINES = 30  # a `Call Trace:` this close after a call-trace report belongs to it
WARNING_KIND = ReportKind("warning", WARN_LINE, End.TRACE, W,
                          "kernel/panic.c (__warn), include/asm-generic/bug.h (WARN, WARN_ON)")
CALL_TRACE_KIND = ReportKind("call trace", CALL_TRACE, End.STACK, E,
                             "lib/dump_stack.c (dump_stack outside any report)")
# every kind the judge can give, on any architecture kmatrix knows
KINDS: tuple[str, ...] = tuple(dict.fromkeys(
    [k.kind for a in ARCHES.values() for k in arch_kinds(a)]
    + [k.kind for k in REPORT_KINDS] + [WARNING_KIND.kind, CALL_TRACE_KIND.kind]))

# kernel/panic.c taint_flags[] (6.12): bit -> (letter, name). `G` is "no proprietary module".
TAINT_FLAGS: tuple[tuple[str, str], ...] = (
    ("P", "PROPRIETARY_MODULE"), ("F", "FORCED_MODULE"), ("S", "CPU_OUT_OF_SPEC"),
    ("R", "FORCED_RMMOD"), ("M", "MACHINE_CHECK"), ("B", "BAD_PAGE"), ("U", "USER"),
    ("D", "DIE"), ("A", "OVERRIDDEN_ACPI_TABLE"), ("W", "WARN"), ("C", "CRAP"),
    ("I", "FIRMWARE_WORKAROUND"), ("O", "OOT_MODULE"), ("E", "UNSIGNED_MODULE"),
    ("L", "SOFTLOCKUP"), ("K", "LIVEPATCH"), ("X", "AUX"), ("T", "RANDSTRUCT"), ("N", "TEST"))
TAINT_NAMES = dict(TAINT_FLAGS)
TAINT_WARN = 1 << 9


def taint_from_mask(mask: int) -> list[str]:
    """/proc/sys/kernel/tainted as letters, e.g. 512 -> ["W"]; unknown bits as "bitN"."""
    letters = [letter for bit, (letter, _) in enumerate(TAINT_FLAGS) if mask >> bit & 1]
    letters += [f"bit{bit}" for bit in range(len(TAINT_FLAGS), 64) if mask >> bit & 1]
    return letters


def taint_from_text(flags: str) -> list[str]:
    """The letters of `Tainted: G        W  O` (G, the untainted default, dropped)."""
    return [c for c in dict.fromkeys(flags) if c in TAINT_NAMES]


def describe_taint(letters: Iterable[str]) -> str:
    return ", ".join(f"{c} ({TAINT_NAMES.get(c, 'unknown')})" for c in letters)


@dataclass
class Report:
    """One kernel report on the console."""

    kind: str
    severity: Severity
    line_no: int  # the headline's line (1-based)
    text: str  # the headline, as printed (prefixes stripped)
    message: str = ""  # a WARN()'s message line(s) after `cut here`
    where: str = ""  # FILE:LINE of a WARN() (`at kernel/module/dups.c:174`)
    call_trace: bool = False  # a `Call Trace:` inside the report
    lines: int = 0  # how many console lines it spans
    ended: bool = False  # its end line was seen (a truncated log has reports that never end)

    def quote(self) -> str:
        return f"line {self.line_no}: `{self.text.strip()[:200]}`"

    def reason(self) -> str:
        return f"{self.kind} at {self.quote()}"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "severity": self.severity.value, "line": self.line_no,
                "text": self.text.strip()[:300], "message": self.message[:300],
                "where": self.where, "call_trace": self.call_trace, "ended": self.ended}


def classify(line: str, kinds: tuple[ReportKind, ...] = REPORT_KINDS) -> ReportKind | None:
    """The table's row for a headline, or None (WARN lines and call traces are not rows)."""
    for row in kinds:
        if row.pattern.search(line):
            return row
    return None


@dataclass
class LineInfo:
    """What the scanner made of one line, for the scenarios' own rules."""

    started: Report | None = None  # a report whose headline is this line
    inside: Report | None = None  # the open report this line belongs to
    in_cut_here: bool = False  # between `cut here` and its WARNING/BUG line (a WARN message)


@dataclass
class ReportScanner:
    """Feed cleaned console lines in order; collects `reports` and the last taint seen."""

    kinds: tuple[ReportKind, ...] = field(default_factory=lambda: table())  # the arch's table
    reports: list[Report] = field(default_factory=list)
    taint: list[str] = field(default_factory=list)  # from the last `Tainted:` line
    _open: Report | None = None
    _open_row: ReportKind | None = None
    _open_end: End | None = None  # the open report's end (a fatal one's panic moves it)
    _trailing: tuple[Report, ReportKind, int] | None = None  # call-trace report just ended
    _cut_here: int = 0  # line number of a pending `cut here`, 0 when none
    _message: list[tuple[int, str, ReportKind | None]] = field(default_factory=list)
    _trace_done: bool = False

    def feed(self, no: int, line: str) -> LineInfo:
        tainted = TAINTED.search(line)
        if tainted:
            self.taint = taint_from_text(tainted[1])
        elif "Not tainted" in line:
            self.taint = []
        if CUT_HERE in line:
            self._close()
            self._cut_here, self._message = no, []
            return LineInfo(in_cut_here=True)
        if self._cut_here:
            return self._in_cut_here(no, line)
        if self._open is not None:
            return self._in_report(no, line)
        return self._outside(no, line)

    def _start(self, row: ReportKind, no: int, line: str, message: str = "",
               where: str = "") -> Report:
        report = Report(row.kind, row.severity, no, line, message, where, lines=1)
        self.reports.append(report)
        if row.end is End.LINE:
            report.ended = True
        else:
            self._open, self._open_row, self._trace_done = report, row, False
            self._open_end = row.end
        self._trailing = None
        return report

    def _close(self, ended: bool = False, no: int = 0) -> None:
        if self._open is not None:
            self._open.ended = self._open.ended or ended
            if ended and self._open_end is End.STACK and self._open_row is not None:
                self._trailing = (self._open, self._open_row, no)
        self._open, self._open_row, self._open_end = None, None, None

    def _outside(self, no: int, line: str) -> LineInfo:
        warn = WARN_LINE.search(line)
        if warn:
            return LineInfo(started=self._start(WARNING_KIND, no, line, where=warn["where"] or ""))
        row = classify(line, self.kinds)
        if row is not None:
            return LineInfo(started=self._start(row, no, line))
        if CALL_TRACE.search(line):
            if self._trailing is not None and no - self._trailing[2] <= MAX_TRAILING_LINES:
                # another task dump of the report that just ended (an RCU stall's kthread)
                report, row, _ = self._trailing
                self._open, self._open_row, self._open_end = report, row, row.end
                self._trailing = None
                report.lines, report.ended = no - report.line_no + 1, False
                return LineInfo(inside=report)
            report = self._start(CALL_TRACE_KIND, no, line)
            report.call_trace = True
            return LineInfo(started=report)
        return LineInfo()

    def _in_cut_here(self, no: int, line: str) -> LineInfo:
        warn = WARN_LINE.search(line)
        row = classify(line, self.kinds)
        if warn or (row is not None and row.kind == "BUG" and "kernel BUG at" in line):
            # the splat's own line: the message (if one of the table's) names the kind
            named = next((r for _, _, r in self._message if r is not None), None)
            quoted = next(((n, t) for n, t, r in self._message if r is not None), (no, line))
            message = " | ".join(t.strip() for _, t, _ in self._message)
            self._cut_here, self._message = 0, []
            base = named or (row if row is not None and not warn else WARNING_KIND)
            where = (warn["where"] or "") if warn else ""
            report = self._start(base, quoted[0], quoted[1], message, where)
            report.lines = no - report.line_no + 1
            return LineInfo(started=report)
        if row is not None and row.severity is Severity.FATAL:
            self._cut_here = 0
            return LineInfo(started=self._start(row, no, line))
        self._message.append((no, line, row))
        if len(self._message) > MAX_MESSAGE_LINES:  # no splat came: judge the lines as usual
            pending, self._cut_here, self._message = self._message, 0, []
            info = LineInfo()
            for n, text, _ in pending:
                info = self.feed(n, text)
            return info
        return LineInfo(in_cut_here=True)

    def _in_report(self, no: int, line: str) -> LineInfo:
        report, row, end = self._open, self._open_row, self._open_end
        assert report is not None and row is not None and end is not None
        headline = classify(line, self.kinds)
        if headline is not None and headline.kind != report.kind:
            if headline.severity is Severity.FATAL and row.severity is Severity.FATAL \
                    and headline.kind == "panic":
                end = self._open_end = End.PANIC  # the fatal report's own panic
            elif headline.severity is Severity.FATAL or (end is End.STACK and report.call_trace):
                self._close()
                return LineInfo(started=self._start(headline, no, line))
        report.lines += 1
        if CALL_TRACE.search(line):
            report.call_trace = True
        info = LineInfo(inside=report)
        if END_TRACE.search(line) and end is not End.PANIC:
            self._close(ended=True)
        elif end is End.PANIC and END_PANIC.search(line):
            self._close(ended=True)
        elif end is End.SEPARATOR and SEPARATOR.search(line.strip()):
            self._close(ended=True)
        elif end is End.FIX and (FIX_LINE.search(line) or SEPARATOR.search(line.strip())):
            self._close(ended=True)
        elif end is End.STACK and report.call_trace and TRACE_DONE.search(line):
            self._close(ended=True, no=no)
        elif report.lines > MAX_REPORT_LINES:
            self._close()
        return info

    def finish(self) -> list[Report]:
        """After the last line: a pending `cut here` with no splat is dropped."""
        self._cut_here, self._message = 0, []
        self._close()
        return self.reports


def scan_reports(lines: Iterable[str], arch: Arch | None = None) -> list[Report]:
    """Every report in cleaned console lines (see harness.judge.console.clean_line)."""
    scanner = ReportScanner(table(arch))
    for no, line in enumerate(lines, start=1):
        scanner.feed(no, line)
    return scanner.finish()
