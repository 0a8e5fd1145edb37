"""Judge one boot's console log: one streaming pass, the generic reports, then the scenario.

``judge(console, resolved_config, cmdline)`` is pure (no processes, no clock) and takes the
console as a text or as any iterable of lines (a file object: never read whole). Order:

1. cannot judge (``InputError``): no kernel banner (`Linux version`): KMATRIX markers alone
   are not a boot; or (unless ``known_guest``) the kernel ran an init that printed no marker.
2. boot-fail for every kernel report the scenario does not expect (first of each kind quoted,
   console order: the first is the ``kind`` of the judgement), and the scenario's own trouble.
   A report wins over a missing end marker.
3. boot-timeout without ``KMATRIX-END``: where it stopped and the last console lines.
4. boot-fail for what the markers prove wrong (missing or malformed fields, taint, behaviour).
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..arch import Arch
from ..kconfig import parse_config
from ..verdict import EXIT_BAD_INPUT, EXIT_KERNEL_FAILED, EXIT_OK, InputError, Verdict
from .console import BANNER, TAIL_LINES, clean_line, cmdline_from_console, open_console, raw_lines
from .dups import DupsScenario, PhaseCounts
from .lkdtm import LkdtmScenario, type_on_cmdline
from .reports import Report, ReportScanner, describe_taint, table
from .scenario import END_MARKER, Scenario

_INIT_RAN = re.compile(r"Run (\S+) as init process")


@dataclass
class Judgement:
    verdict: Verdict
    reasons: list[str]
    phases: dict[str, PhaseCounts]
    dups: bool
    trace: bool
    reports: list[Report] = field(default_factory=list)  # every report, expected ones too
    unexpected: list[Report] = field(default_factory=list)  # the ones that fail the boot
    taint: list[str] = field(default_factory=list)  # letters, from the end marker or console
    scenario: str = "dups"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        """The kind of the first unexpected report (what crashed), or None."""
        return self.unexpected[0].kind if self.unexpected else None

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict.value, "reasons": self.reasons, "kind": self.kind,
                "reports": [r.to_json() for r in self.reports], "taint": self.taint,
                "scenario": self.scenario, "dups": self.dups, "trace": self.trace,
                "phases": {name: p.to_json() for name, p in self.phases.items()}, **self.extra}


def scenario_for(resolved_config: dict[str, str], cmdline: str) -> Scenario:
    crash_type = type_on_cmdline(cmdline)
    if crash_type is not None:
        return LkdtmScenario(crash_type)
    return DupsScenario(resolved_config, cmdline)


def judge(console: str | Iterable[str], resolved_config: dict[str, str], cmdline: str, *,
          known_guest: bool = False, arch: Arch | None = None) -> Judgement:
    """The verdict on one boot. Raises InputError when the text is not a kernel console log,
    or (unless known_guest: the caller booted the kmatrix initramfs itself) when the kernel ran
    an init that printed no KMATRIX marker, i.e. the log is not from the kmatrix guest.
    `arch` (default: kmatrix's default architecture) adds its own report forms to the table."""
    scenario = scenario_for(resolved_config, cmdline)
    scanner = ReportScanner(table(arch))
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    banner, init_ran = False, ""
    for no, raw in enumerate(raw_lines(console), start=1):
        line = clean_line(raw)
        if line.strip():
            tail.append(line.strip()[:160])
        if not banner and BANNER.search(line):
            banner = True
        started = _INIT_RAN.search(line)
        if started:
            init_ran = started[1]
        scenario.feed(no, line, scanner.feed(no, line))
    reports = scanner.finish()
    if not banner:
        what = (f"{scenario.markers.count} KMATRIX marker line(s) but " if scenario.markers.count
                else "")
        raise InputError(f"cannot judge: {what}no kernel banner ('Linux version'): a boot's "
                         "console log starts with it; is this a whole kmatrix console log?")
    dups_on = trace_on = False
    phases: dict[str, PhaseCounts] = {}
    if isinstance(scenario, DupsScenario):
        dups_on, trace_on, phases = scenario.dups, scenario.trace, scenario.phases
    taint = scenario.markers.taint()

    def result(verdict: Verdict, reasons: list[str]) -> Judgement:
        return Judgement(verdict, reasons, phases, dups_on, trace_on, reports, unexpected,
                         taint if taint is not None else scanner.taint, scenario.name,
                         scenario.to_json())

    # 1. Kernel reports, in console order, first of each kind quoted.
    unexpected = [r for r in reports if not scenario.allowed(r)]
    reasons: list[str] = []
    seen: set[str] = set()
    for report in unexpected:
        if report.kind not in seen:
            seen.add(report.kind)
            reasons.append(report.reason())
    if unexpected and scanner.taint:
        reasons.append(f"kernel tainted {describe_taint(scanner.taint)} (last `Tainted:` line)")
    reasons += scenario.trouble()
    if reasons:
        return result(Verdict.BOOT_FAIL, reasons)
    if not known_guest and init_ran and not scenario.markers.count:
        raise InputError(f"cannot judge dups behaviour: the kernel ran {init_ran} but no "
                         "KMATRIX marker follows, so this log is not from the kmatrix guest "
                         "(it shows no kernel problem either)")

    # 2. The end marker: without it the boot never finished.
    if scenario.markers.end is None:
        return result(Verdict.BOOT_TIMEOUT, [
            f"no end marker ({END_MARKER}): stopped {scenario.where_stopped()}",
            "last console lines: " + " | ".join(tail)])

    # 3. The scenario's markers, taint and behaviour.
    reasons = scenario.problems(reports)
    return result(Verdict.BOOT_FAIL if reasons else Verdict.PASS, reasons)


def judge_file(console_path: Path, resolved_config: dict[str, str], cmdline: str | None = None,
               *, known_guest: bool = False) -> tuple[Judgement, str]:
    """Judge a saved log, streamed and size-capped; (judgement, the command line used).
    Without `cmdline`, the kernel's own `Command line:` line in the log is used."""
    used = cmdline if cmdline is not None else cmdline_from_console(open_console(console_path))
    return judge(open_console(console_path), resolved_config, used,
                 known_guest=known_guest), used


# -- `kmatrix verdict` ---------------------------------------------------------------------

def verdict_json(console_path: Path, dotconfig_path: Path,
                 cmdline: str | None = None) -> tuple[dict[str, object], int]:
    """Re-judge a saved console log: (JSON-ready dict, exit status 0 pass / 1 kernel / 2 input).
    Without `cmdline`, the kernel's own "Command line:" line in the log is used."""
    try:
        try:
            config_text = Path(dotconfig_path).read_text(errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        config = parse_config(config_text)
        if not config:
            raise InputError(f"{dotconfig_path} has no CONFIG_ lines: is it a kernel .config?")
        judgement, used = judge_file(Path(console_path), config, cmdline)
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
