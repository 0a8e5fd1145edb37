"""What every kmatrix guest prints, whatever it drives: KMATRIX-* markers on /dev/kmsg.

A scenario (the dups phases, an LKDTM crash) reads the same single pass over the console as the
report scanner, says which reports it expects (``allowed``), and what its markers prove once
the end marker is there (``problems``). Marker fields are checked, never trusted: a missing or
non-numeric field is a problem named with its line, not a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .reports import LineInfo, Report, describe_taint, taint_from_mask

END_MARKER = "KMATRIX-END"
_KV = re.compile(r"(\w+)=(\S*)")


@dataclass
class Marker:
    line_no: int
    text: str
    fields: dict[str, str]


def marker_fields(line: str) -> dict[str, str]:
    return dict(_KV.findall(line))


@dataclass
class MarkerScan:
    """The markers every guest prints, and problems with their fields."""

    begin: Marker | None = None
    end: Marker | None = None
    malformed: list[str] = field(default_factory=list)
    count: int = 0

    def number(self, marker: Marker | tuple[int, str, dict[str, str]], key: str,
               default: int | None = 0) -> int | None:
        """A numeric field; a missing one is `default`, a malformed one is recorded (-> None)."""
        no, text, fields = (marker.line_no, marker.text, marker.fields) \
            if isinstance(marker, Marker) else marker
        value = fields.get(key)
        if value is None or value == "":
            return default
        if not value.isdigit():
            self.malformed.append(f"malformed marker at line {no}: {key}={value} is not a "
                                  f"number: `{text.strip()[:160]}`")
            return None
        return int(value)

    def feed(self, no: int, line: str) -> Marker | None:
        if "KMATRIX-" not in line:
            return None
        self.count += 1
        marker = Marker(no, line, marker_fields(line))
        if "KMATRIX-BEGIN" in line and self.begin is None:
            self.begin = marker
        elif END_MARKER in line:
            self.end = marker
        return marker

    def end_problems(self, expected_phases: int) -> list[str]:
        """The end marker must carry phases= (as expected) and a numeric tainted=."""
        if self.end is None:
            return []
        problems: list[str] = []
        phases = self.number(self.end, "phases", None)
        if "phases" not in self.end.fields:
            problems.append(f"end marker without phases= at line {self.end.line_no}: "
                            f"`{self.end.text.strip()[:160]}`")
        elif phases is not None and phases != expected_phases:
            problems.append(f"end marker says phases={phases}, expected {expected_phases}")
        if "tainted" not in self.end.fields:
            problems.append(f"end marker without tainted= at line {self.end.line_no}: "
                            f"`{self.end.text.strip()[:160]}`")
        else:
            self.number(self.end, "tainted", None)
        return problems

    def taint(self) -> list[str] | None:
        """The end marker's /proc/sys/kernel/tainted as letters (None when not numeric)."""
        if self.end is None or not self.end.fields.get("tainted", "").isdigit():
            return None
        return taint_from_mask(int(self.end.fields["tainted"]))


def taint_problems(letters: list[str] | None, allowed: set[str], warned: bool) -> list[str]:
    """Taint flags other than `allowed`; W only with a warning the scenario expected."""
    if letters is None:
        return []
    bad = [c for c in letters if c not in allowed]
    if bad:
        return [f"kernel tainted {describe_taint(letters)}: flags other than "
                f"{', '.join(sorted(allowed)) or 'none'}"]
    if "W" in letters and not warned:
        return ["kernel tainted W (WARN) but no expected warning shown on the console"]
    return []


class Scenario:
    """Base: no markers expected beyond BEGIN/END, no report allowed."""

    name = "generic"
    expected_phases = 0

    def __init__(self) -> None:
        self.markers = MarkerScan()

    def feed(self, no: int, line: str, info: LineInfo) -> None:
        self.markers.feed(no, line)

    def allowed(self, report: Report) -> bool:
        return False

    def trouble(self) -> list[str]:
        """Problems known before the end marker matters (shown even without one)."""
        return []

    def where_stopped(self) -> str:
        return "before /init ran" if self.markers.begin is None else "after KMATRIX-BEGIN"

    def problems(self, reports: list[Report]) -> list[str]:
        """After the end marker: what the markers prove."""
        return []

    def to_json(self) -> dict[str, object]:
        return {}
