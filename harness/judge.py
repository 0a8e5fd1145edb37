"""Judge a kmatrix boot's console log: pure functions over text, no processes, no clock.

``judge(console_text, resolved_config, cmdline)`` returns a ``Judgement``: pass, boot-fail
(reason + the first bad console line quoted), or boot-timeout (no end marker; last lines
quoted). A text that is not a kernel console log at all raises ``InputError`` (cannot judge).
The markers are the ones harness/guest/init.c prints; the dups messages are the ones in
kernel/module/dups.c (6.12): ``pr_warn("module-autoload: duplicate request for module %s")``
with pr_fmt "module: ", or with tracing ``WARN(1, ...)`` of the same text (no prefix),
followed by ``WARNING: CPU: N PID: P at kernel/module/dups.c:LINE`` and a call trace.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .kconfig import parse_config
from .verdict import EXIT_BAD_INPUT, EXIT_KERNEL_FAILED, EXIT_OK, InputError, Verdict

END_MARKER = "KMATRIX-END"
TAIL_LINES = 8

# (phase name, expected errno of every caller, requests a fallback name after a failed modprobe)
PHASES: tuple[tuple[str, str, bool], ...] = (
    ("concurrent-fs", "ENODEV", False),
    ("repeat-fs", "ENODEV", False),
    ("concurrent-char", "ENXIO", True),
)

_PREFIX = re.compile(r"^(<\d+>)?(\[\s*\d+\.\d+\]\s?)?(\[\s*[TC]\d+\]\s?)?")
_KV = re.compile(r"(\w+)=(\S*)")
_DUP = re.compile(r"(?P<prefix>module: )?module-autoload: duplicate request for module (?P<name>\S+)")
_DUPS_WARNING = re.compile(
    r"WARNING: CPU: \d+ PID: \d+ at ((?:\S*/)?kernel/module/dups\.c:\d+|kmod_dup_request_exists_wait)")
_INIT_RAN = re.compile(r"Run (\S+) as init process")
_END_TRACE = re.compile(r"---\[ end trace [0-9a-f]+ \]---")

# What must never appear, in the words. First match of each kind is quoted.
BAD_LINES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((label, re.compile(rx)) for label, rx in (
    ("panic", r"Kernel panic - not syncing"),
    ("KASAN report", r"BUG: KASAN:|KASAN: "),
    ("UBSAN report", r"UBSAN: "),
    ("Oops", r"\bOops\b|kernel BUG at|Unable to handle kernel|BUG: unable to handle"),
    ("BUG", r"\bBUG: "),
    ("general protection fault", r"general protection fault"),
    ("lockdep report", (r"possible (circular|recursive) locking|inconsistent lock state|"
                        r"bad unlock balance|suspicious RCU usage|lock held when returning|"
                        r"possible irq lock inversion")),
    ("RCU stall", r"rcu: INFO: .*detected stall|detected stalls on CPUs|self-detected stall"),
    ("soft lockup", r"soft lockup - CPU#"),
    ("hard lockup", r"hard LOCKUP"),
    ("hung task", r"INFO: task .* blocked for more than \d+ seconds"),
    ("refcount corruption", r"refcount_t: "),
    ("list corruption", r"list_(add|del) corruption|list_del corruption"),
    ("kmod concurrency limit", r"kmod busy with \d+ threads"),
    ("guest harness error", r"KMATRIX-ERROR"),
))


@dataclass
class PhaseCounts:
    """One guest phase as seen on the console."""

    name: str
    request: str = ""
    n: int = 0
    finished: bool = False
    calls: int = 0
    returned: int = 0
    errno: dict[str, int] = field(default_factory=dict)
    modprobe: dict[str, int] = field(default_factory=dict)  # counted by init from the helper log
    modprobe_console: dict[str, int] = field(default_factory=dict)  # KMATRIX-MODPROBE lines
    duplicates: dict[str, int] = field(default_factory=dict)  # dups.c reports, by module name
    dups_warnings: int = 0  # WARNING splats at kernel/module/dups.c
    ms: int = 0

    def to_json(self) -> dict[str, object]:
        return {"request": self.request, "n": self.n, "finished": self.finished,
                "calls": self.calls, "returned": self.returned, "errno": self.errno,
                "modprobe": self.modprobe, "duplicates": self.duplicates,
                "dups_warnings": self.dups_warnings, "ms": self.ms}


@dataclass
class Judgement:
    verdict: Verdict
    reasons: list[str]
    phases: dict[str, PhaseCounts]
    dups: bool
    trace: bool

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict.value, "reasons": self.reasons,
                "dups": self.dups, "trace": self.trace,
                "phases": {name: p.to_json() for name, p in self.phases.items()}}


@dataclass
class _Scan:
    """Everything one pass over the console collects."""

    lines: list[str]
    phases: dict[str, PhaseCounts] = field(default_factory=dict)
    bad: list[tuple[str, int, str]] = field(default_factory=list)  # (label, line no, text)
    # (line number, module name, prefixed, inside a splat)
    dup_reports: list[tuple[int, str, bool, bool]] = field(default_factory=list)
    dups_warnings: list[int] = field(default_factory=list)
    dups_warnings_with_trace: int = 0
    began: bool = False
    end: dict[str, str] | None = None
    last_phase: str = ""
    init_ran: str = ""  # the init the kernel started ("Run /init as init process")


def clean_lines(text: str) -> list[str]:
    """Console lines without carriage returns, syslog levels, timestamps or caller ids."""
    return [_PREFIX.sub("", line.rstrip("\r")) for line in text.replace("\r\n", "\n").split("\n")]


def _counts(value: str) -> dict[str, int]:
    out: dict[str, int] = {}
    if value in ("", "none"):
        return out
    for item in value.split(","):
        name, _, count = item.rpartition(":")
        out[name] = out.get(name, 0) + int(count)
    return out


def _quote(no: int, line: str) -> str:
    return f"line {no}: `{line.strip()[:200]}`"


def _scan(text: str) -> _Scan:
    scan = _Scan(clean_lines(text))
    current: PhaseCounts | None = None
    splat: str | None = None  # "dups" inside an allowed-kind dups.c warning, "other" otherwise
    splat_has_trace = False
    for no, line in enumerate(scan.lines, start=1):
        if "------------[ cut here ]------------" in line:
            splat, splat_has_trace = "pending", False
            continue
        if "WARNING:" in line:
            if _DUPS_WARNING.search(line):
                splat, splat_has_trace = "dups", False
                scan.dups_warnings.append(no)
                if current is not None:
                    current.dups_warnings += 1
            else:
                splat = "other"
                scan.bad.append(("unexpected WARNING", no, line))
            continue
        if "Call Trace:" in line:
            if splat == "dups":
                splat_has_trace = True
            elif splat != "other":
                scan.bad.append(("unexpected call trace", no, line))
            continue
        if _END_TRACE.search(line):
            if splat == "dups" and splat_has_trace:
                scan.dups_warnings_with_trace += 1
            splat = None
            continue
        dup = _DUP.search(line)
        if dup:
            in_splat = splat == "pending"
            scan.dup_reports.append((no, dup["name"], bool(dup["prefix"]), in_splat))
            if current is not None:
                current.duplicates[dup["name"]] = current.duplicates.get(dup["name"], 0) + 1
            continue
        started = _INIT_RAN.search(line)
        if started:
            scan.init_ran = started[1]
        for label, pattern in BAD_LINES:
            if pattern.search(line):
                scan.bad.append((label, no, line))
                break
        if "KMATRIX-" not in line:
            continue
        fields = dict(_KV.findall(line))
        if "KMATRIX-BEGIN" in line:
            scan.began = True
        elif "KMATRIX-PHASE begin" in line:
            current = PhaseCounts(fields.get("phase", "?"), fields.get("name", ""),
                                  int(fields.get("n", "0") or 0))
            scan.phases[current.name] = current
            scan.last_phase = current.name
        elif "KMATRIX-MODPROBE" in line and current is not None:
            name = fields.get("name", "")
            current.modprobe_console[name] = current.modprobe_console.get(name, 0) + 1
        elif "KMATRIX-RESULT" in line:
            phase = scan.phases.setdefault(fields.get("phase", "?"),
                                           PhaseCounts(fields.get("phase", "?")))
            phase.finished = True
            phase.calls = int(fields.get("calls", "0") or 0)
            phase.returned = int(fields.get("returned", "0") or 0)
            phase.errno = _counts(fields.get("errno", ""))
            phase.modprobe = _counts(fields.get("modprobe", ""))
            phase.ms = int(fields.get("ms", "0") or 0)
            current = None
        elif END_MARKER in line:
            scan.end = fields
    return scan


def _option(config: dict[str, str], name: str) -> str:
    return config.get("CONFIG_" + name, config.get(name, "n")).strip('"')


def trace_on_cmdline(cmdline: str) -> bool:
    """module.enable_dups_trace as the kernel's kstrtobool reads it (a bare flag means on)."""
    for word in cmdline.split():
        key, eq, value = word.partition("=")
        if key.replace("-", "_") == "module.enable_dups_trace":
            return not eq or value[:1] in ("1", "y", "Y", "t", "T") or value.lower() == "on"
    return False


def tail_reason(text: str, count: int = TAIL_LINES) -> str:
    lines = [line for line in clean_lines(text) if line.strip()][-count:]
    return "last console lines: " + " | ".join(line.strip()[:160] for line in lines)


def judge(console_text: str, resolved_config: dict[str, str], cmdline: str, *,
          known_guest: bool = False) -> Judgement:
    """The verdict on one boot. Raises InputError when the text is not a kernel console log,
    or (unless known_guest: the caller booted the kmatrix initramfs itself) when the kernel ran
    an init that printed no KMATRIX marker, i.e. the log is not from the kmatrix guest."""
    modules = _option(resolved_config, "MODULES") == "y"
    dups = modules and _option(resolved_config, "MODULE_DEBUG_AUTOLOAD_DUPS") == "y"
    trace = dups and (trace_on_cmdline(cmdline)
                      or _option(resolved_config, "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE") == "y")
    warn_prints = _option(resolved_config, "BUG") == "y"  # BUG=n compiles WARN() to nothing
    scan = _scan(console_text)
    if not scan.began and not any("Linux version" in line for line in scan.lines):
        raise InputError("cannot judge: no kernel banner ('Linux version') and no KMATRIX "
                         "markers; is this a kmatrix console log?")

    def result(verdict: Verdict, reasons: list[str]) -> Judgement:
        return Judgement(verdict, reasons, scan.phases, dups, trace)

    # 1. Kernel problems, in console order, first line of each kind quoted.
    reasons, seen = [], set()
    for label, no, line in scan.bad:
        if label not in seen:
            seen.add(label)
            reasons.append(f"{label} at {_quote(no, line)}")
    if scan.dups_warnings and not trace:
        no = scan.dups_warnings[0]
        reasons.append(f"dups trace warning while tracing is off at {_quote(no, scan.lines[no - 1])}")
    if reasons:
        return result(Verdict.BOOT_FAIL, reasons)
    if not known_guest and scan.init_ran and not any("KMATRIX-" in line for line in scan.lines):
        raise InputError(f"cannot judge dups behaviour: the kernel ran {scan.init_ran} but no "
                         "KMATRIX marker follows, so this log is not from the kmatrix guest "
                         "(it shows no kernel problem either)")

    # 2. The end marker: without it the boot never finished.
    if scan.end is None:
        where = "before /init ran" if not scan.began else (
            f"during phase {scan.last_phase}" if scan.last_phase and
            not scan.phases[scan.last_phase].finished else "after the last phase")
        return result(Verdict.BOOT_TIMEOUT, [f"no end marker ({END_MARKER}): stopped {where}",
                                             tail_reason(console_text)])

    # 3. The harness's own markers, then dups behaviour per phase.
    reasons = _marker_problems(scan)
    reasons += _taint_problems(scan, trace)
    if not reasons:
        reasons = _dups_problems(scan, modules, dups, trace, warn_prints, cmdline)
    return result(Verdict.BOOT_FAIL if reasons else Verdict.PASS, reasons)


def _marker_problems(scan: _Scan) -> list[str]:
    problems = []
    if not scan.began:
        problems.append("harness marker KMATRIX-BEGIN missing")
    for name, errno_name, _ in PHASES:
        phase = scan.phases.get(name)
        if phase is None or not phase.finished:
            problems.append(f"phase {name}: " + ("missing" if phase is None else "no result line"))
            continue
        if phase.returned != phase.calls:
            problems.append(f"phase {name}: {phase.calls - phase.returned} of {phase.calls} "
                            "callers never returned")
        if phase.errno != {errno_name: phase.calls}:
            got = ",".join(f"{k}:{v}" for k, v in phase.errno.items()) or "none"
            problems.append(f"phase {name}: callers got {got}, expected every one {errno_name}")
    if scan.end is not None and scan.end.get("phases") not in (None, str(len(PHASES))):
        problems.append(f"end marker says phases={scan.end.get('phases')}, expected {len(PHASES)}")
    return problems


def _taint_problems(scan: _Scan, trace: bool) -> list[str]:
    tainted = (scan.end or {}).get("tainted", "?")
    if not tainted.isdigit():
        return []
    value, warn_bit = int(tainted), 1 << 9  # TAINT_WARN
    if value & ~warn_bit:
        return [f"kernel tainted {value} (flags other than W)"]
    if value & warn_bit and not scan.dups_warnings:
        return ["kernel tainted W but no warning shown on the console"]
    return []


def _dups_problems(scan: _Scan, modules: bool, dups: bool, trace: bool, warn_prints: bool,
                   cmdline: str) -> list[str]:
    problems: list[str] = []
    if not dups:
        for no, _name, _, _ in scan.dup_reports[:1]:
            problems.append(f"duplicate request reported although dups is off, at "
                            f"{_quote(no, scan.lines[no - 1])}")
    reports_shown = dups and (not trace or warn_prints)
    mentioned: set[str] = set()
    for name, _, has_fallback in PHASES:
        phase = scan.phases[name]
        requests = [phase.request]
        if has_fallback and modules:
            requests.append(phase.request.rpartition("-")[0])  # char-major-M after char-major-M-m
        for request in requests:
            fresh = request not in mentioned
            mentioned.add(request)
            runs = phase.modprobe.get(request, 0)
            reported = phase.duplicates.get(request, 0)
            want_runs = (1 if fresh else 0) if dups else (phase.n if modules else 0)
            want_reports = phase.n - want_runs if reports_shown else 0
            if runs != want_runs:
                problems.append(f"phase {name}: modprobe ran {runs} time(s) for {request}, "
                                f"expected {want_runs} ({'dups on' if dups else 'dups off'}, "
                                f"{phase.n} request(s))")
            if reported != want_reports:
                problems.append(f"phase {name}: {reported} duplicate report(s) for {request}, "
                                f"expected {want_reports}")
        if "printk.devkmsg=on" in cmdline and phase.modprobe_console != phase.modprobe:
            problems.append(f"phase {name}: init counted modprobe runs {phase.modprobe}, "
                            f"the console shows {phase.modprobe_console}")
        unexpected = set(phase.modprobe) - set(requests)
        if unexpected:
            problems.append(f"phase {name}: modprobe ran for unexpected name(s) "
                            f"{', '.join(sorted(unexpected))}")
    if trace and warn_prints:
        plain = [(no, name) for no, name, prefixed, in_splat in scan.dup_reports if not in_splat]
        if plain:
            no = plain[0][0]
            problems.append(f"tracing is on but a duplicate was reported without a warning, "
                            f"at {_quote(no, scan.lines[no - 1])}")
        if len(scan.dups_warnings) != len(scan.dup_reports):
            problems.append(f"{len(scan.dup_reports)} duplicate reports but "
                            f"{len(scan.dups_warnings)} warnings at kernel/module/dups.c")
        if scan.dups_warnings_with_trace != len(scan.dups_warnings):
            problems.append(f"{len(scan.dups_warnings) - scan.dups_warnings_with_trace} dups.c "
                            "warning(s) without a call trace")
    elif dups:
        splatted = [no for no, _, _, in_splat in scan.dup_reports if in_splat]
        if splatted:
            problems.append("tracing is off but a duplicate was reported as a warning, at "
                            + _quote(splatted[0], scan.lines[splatted[0] - 1]))
    return problems


# -- `kmatrix verdict` ---------------------------------------------------------------------

def cmdline_from_console(text: str) -> str:
    for line in clean_lines(text):
        match = re.match(r"(Kernel )?[Cc]ommand line: (.*)", line)
        if match:
            return match[2].strip()
    return ""


def verdict_json(console_path: Path, dotconfig_path: Path,
                 cmdline: str | None = None) -> tuple[dict[str, object], int]:
    """Re-judge a saved console log: (JSON-ready dict, exit status 0 pass / 1 kernel / 2 input).
    Without `cmdline`, the kernel's own "Command line:" line in the log is used."""
    try:
        try:
            console = Path(console_path).read_text(errors="replace")
            config_text = Path(dotconfig_path).read_text(errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        config = parse_config(config_text)
        if not config:
            raise InputError(f"{dotconfig_path} has no CONFIG_ lines: is it a kernel .config?")
        used = cmdline if cmdline is not None else cmdline_from_console(console)
        judgement = judge(console, config, used)
    except InputError as exc:
        return {"verdict": "cannot-judge", "reasons": [exc.message], "phases": {}}, EXIT_BAD_INPUT
    record = judgement.to_json()
    record["cmdline"] = used
    record["console_log"] = str(console_path)
    return record, EXIT_OK if judgement.verdict is Verdict.PASS else EXIT_KERNEL_FAILED


def main_print(console_path: Path, dotconfig_path: Path, cmdline: str | None = None) -> int:
    """What `kmatrix verdict` does: print the JSON, return the exit status."""
    record, status = verdict_json(console_path, dotconfig_path, cmdline)
    print(json.dumps(record, indent=2, sort_keys=True))
    return status
