"""The dups scenario's own rules, on top of the generic reports: the kmatrix guest's phases
(harness/guest/init.c) and kernel/module/dups.c's behaviour as seen on the console.

dups.c (6.12) reports a duplicate auto-load request with ``pr_warn("module-autoload: duplicate
request for module %s")`` (pr_fmt "module: "), or with tracing ``WARN(1, ...)`` of the same text
(no prefix), i.e. a ``warning`` report ``WARNING: CPU: N PID: P at kernel/module/dups.c:LINE``
with a call trace. Those warnings are the only reports this scenario accepts, and only with
tracing on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .reports import LineInfo, Report
from .scenario import Marker, Scenario, taint_problems

# (phase name, expected errno of every caller, requests a fallback name after a failed modprobe)
PHASES: tuple[tuple[str, str, bool], ...] = (
    ("concurrent-fs", "ENODEV", False),
    ("repeat-fs", "ENODEV", False),
    ("concurrent-char", "ENXIO", True),
)

_DUP = re.compile(r"(?P<prefix>module: )?module-autoload: duplicate request for module (?P<name>\S+)")
_DUPS_WHERE = re.compile(r"(?:\S*/)?kernel/module/dups\.c:\d+|kmod_dup_request_exists_wait")


def is_dups_warning(report: Report) -> bool:
    return report.kind == "warning" and bool(_DUPS_WHERE.search(report.where or report.text))


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
class DupReport:
    line_no: int
    text: str
    name: str
    prefixed: bool
    in_splat: bool  # printed as a WARN() message (after `cut here`)


def _quote(no: int, line: str) -> str:
    return f"line {no}: `{line.strip()[:200]}`"


def _option(config: dict[str, str], name: str) -> str:
    return config.get("CONFIG_" + name, config.get(name, "n")).strip('"')


def trace_on_cmdline(cmdline: str) -> bool:
    """module.enable_dups_trace as the kernel's kstrtobool reads it (a bare flag means on)."""
    for word in cmdline.split():
        key, eq, value = word.partition("=")
        if key.replace("-", "_") == "module.enable_dups_trace":
            return not eq or value[:1] in ("1", "y", "Y", "t", "T") or value.lower() == "on"
    return False


class DupsScenario(Scenario):
    name = "dups"
    expected_phases = len(PHASES)

    def __init__(self, resolved_config: dict[str, str], cmdline: str) -> None:
        super().__init__()
        self.cmdline = cmdline
        self.modules = _option(resolved_config, "MODULES") == "y"
        self.dups = self.modules and _option(resolved_config, "MODULE_DEBUG_AUTOLOAD_DUPS") == "y"
        self.trace = self.dups and (trace_on_cmdline(cmdline) or _option(
            resolved_config, "MODULE_DEBUG_AUTOLOAD_DUPS_TRACE") == "y")
        self.warn_prints = _option(resolved_config, "BUG") == "y"  # BUG=n: WARN() prints nothing
        self.phases: dict[str, PhaseCounts] = {}
        self.current: PhaseCounts | None = None
        self.last_phase = ""
        self.dup_reports: list[DupReport] = []
        self.dups_warnings: list[Report] = []

    # -- the pass over the console ---------------------------------------------------------

    def feed(self, no: int, line: str, info: LineInfo) -> None:
        started = info.started
        if started is not None and is_dups_warning(started):
            self.dups_warnings.append(started)
            if self.current is not None:
                self.current.dups_warnings += 1
        dup = _DUP.search(line)
        if dup:
            self.dup_reports.append(DupReport(no, line, dup["name"], bool(dup["prefix"]),
                                              info.in_cut_here))
            if self.current is not None:
                name = dup["name"]
                self.current.duplicates[name] = self.current.duplicates.get(name, 0) + 1
            return
        marker = self.markers.feed(no, line)
        if marker is not None:
            self._marker(marker)

    def _int(self, marker: Marker, key: str) -> int:
        value = self.markers.number(marker, key)
        return value if value is not None else -1

    def _counts(self, marker: Marker, key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        value = marker.fields.get(key, "")
        if value in ("", "none"):
            return out
        for item in value.split(","):
            name, _, count = item.rpartition(":")
            number = self.markers.number((marker.line_no, marker.text, {key: count}), key)
            out[name] = out.get(name, 0) + (number if number is not None else 0)
        return out

    def _marker(self, marker: Marker) -> None:
        line, fields = marker.text, marker.fields
        if "KMATRIX-PHASE begin" in line:
            self.current = PhaseCounts(fields.get("phase", "?"), fields.get("name", ""),
                                       self._int(marker, "n"))
            self.phases[self.current.name] = self.current
            self.last_phase = self.current.name
        elif "KMATRIX-MODPROBE" in line and self.current is not None:
            name = fields.get("name", "")
            self.current.modprobe_console[name] = self.current.modprobe_console.get(name, 0) + 1
        elif "KMATRIX-RESULT" in line:
            phase = self.phases.setdefault(fields.get("phase", "?"),
                                           PhaseCounts(fields.get("phase", "?")))
            phase.finished = True
            phase.calls = self._int(marker, "calls")
            phase.returned = self._int(marker, "returned")
            phase.errno = self._counts(marker, "errno")
            phase.modprobe = self._counts(marker, "modprobe")
            phase.ms = self._int(marker, "ms")
            self.current = None

    # -- rules ---------------------------------------------------------------------------

    def allowed(self, report: Report) -> bool:
        return is_dups_warning(report)  # judged below: only with tracing on

    def trouble(self) -> list[str]:
        if self.dups_warnings and not self.trace:
            first = self.dups_warnings[0]
            return [f"dups trace warning while tracing is off at {first.quote()}"]
        return []

    def where_stopped(self) -> str:
        if self.markers.begin is None:
            return "before /init ran"
        if self.last_phase and not self.phases[self.last_phase].finished:
            return f"during phase {self.last_phase}"
        return "after the last phase"

    def problems(self, reports: list[Report]) -> list[str]:
        reasons = self._marker_problems()
        reasons += taint_problems(self.markers.taint(), {"W"}, bool(self.dups_warnings))
        if not reasons:
            reasons = self._dups_problems()
        return reasons

    def _marker_problems(self) -> list[str]:
        end_problems = self.markers.end_problems(self.expected_phases)
        problems = list(self.markers.malformed)
        if self.markers.begin is None:
            problems.append("harness marker KMATRIX-BEGIN missing")
        for name, errno_name, _ in PHASES:
            phase = self.phases.get(name)
            if phase is None or not phase.finished:
                problems.append(f"phase {name}: " + ("missing" if phase is None else "no result line"))
                continue
            if phase.returned != phase.calls:
                problems.append(f"phase {name}: {phase.calls - phase.returned} of {phase.calls} "
                                "callers never returned")
            if phase.errno != {errno_name: phase.calls}:
                got = ",".join(f"{k}:{v}" for k, v in phase.errno.items()) or "none"
                problems.append(f"phase {name}: callers got {got}, expected every one {errno_name}")
        problems += end_problems
        return list(dict.fromkeys(problems))

    def _dups_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.dups:
            for dup in self.dup_reports[:1]:
                problems.append("duplicate request reported although dups is off, at "
                                + _quote(dup.line_no, dup.text))
        reports_shown = self.dups and (not self.trace or self.warn_prints)
        mentioned: set[str] = set()
        for name, _, has_fallback in PHASES:
            phase = self.phases[name]
            requests = [phase.request]
            if has_fallback and self.modules:
                requests.append(phase.request.rpartition("-")[0])  # char-major-M after -M-m
            for request in requests:
                fresh = request not in mentioned
                mentioned.add(request)
                runs = phase.modprobe.get(request, 0)
                reported = phase.duplicates.get(request, 0)
                want_runs = (1 if fresh else 0) if self.dups else (phase.n if self.modules else 0)
                want_reports = phase.n - want_runs if reports_shown else 0
                if runs != want_runs:
                    problems.append(f"phase {name}: modprobe ran {runs} time(s) for {request}, "
                                    f"expected {want_runs} ({'dups on' if self.dups else 'dups off'}, "
                                    f"{phase.n} request(s))")
                if reported != want_reports:
                    problems.append(f"phase {name}: {reported} duplicate report(s) for {request}, "
                                    f"expected {want_reports}")
            if "printk.devkmsg=on" in self.cmdline and phase.modprobe_console != phase.modprobe:
                problems.append(f"phase {name}: init counted modprobe runs {phase.modprobe}, "
                                f"the console shows {phase.modprobe_console}")
            unexpected = set(phase.modprobe) - set(requests)
            if unexpected:
                problems.append(f"phase {name}: modprobe ran for unexpected name(s) "
                                f"{', '.join(sorted(unexpected))}")
        if self.trace and self.warn_prints:
            plain = [d for d in self.dup_reports if not d.in_splat]
            if plain:
                problems.append("tracing is on but a duplicate was reported without a warning, "
                                f"at {_quote(plain[0].line_no, plain[0].text)}")
            if len(self.dups_warnings) != len(self.dup_reports):
                problems.append(f"{len(self.dup_reports)} duplicate reports but "
                                f"{len(self.dups_warnings)} warnings at kernel/module/dups.c")
            without = [w for w in self.dups_warnings if not (w.call_trace and w.ended)]
            if without:
                problems.append(f"{len(without)} dups.c warning(s) without a call trace")
        elif self.dups:
            splatted = [d for d in self.dup_reports if d.in_splat]
            if splatted:
                problems.append("tracing is off but a duplicate was reported as a warning, at "
                                + _quote(splatted[0].line_no, splatted[0].text))
        return problems
