"""The console judge: is this boot's console log clean, and did the guest's scenario hold?

- ``reports``: the kernel's report formats as one table (kind, pattern, end, severity, arches,
  source) and a streaming scanner; taint flags decoded. Knows nothing of kmatrix.
- ``scenario``: the KMATRIX-* markers every guest prints; ``dups`` and ``lkdtm``: the two
  guests' own rules on top of the reports.
- ``console``: cleaned lines, streamed reading with a size cap.
- ``core``: ``judge()`` (pure), ``verdict_json()`` / ``main_print()`` for ``kmatrix verdict``.

See docs/judge.md.
"""

from .console import (
                      MAX_CONSOLE_BYTES,
                      TAIL_LINES,
                      clean_lines,
                      cmdline_from_console,
                      open_console,
                      tail_reason,
)
from .core import Judgement, judge, judge_file, main_print, scenario_for, verdict_json
from .dups import PHASES, PhaseCounts, trace_on_cmdline
from .reports import REPORT_KINDS, Report, ReportKind, Severity, scan_reports
from .scenario import END_MARKER

__all__ = [
    "END_MARKER", "MAX_CONSOLE_BYTES", "PHASES", "REPORT_KINDS", "TAIL_LINES", "Judgement",
    "PhaseCounts", "Report", "ReportKind", "Severity", "clean_lines", "cmdline_from_console",
    "judge", "judge_file", "main_print", "open_console", "scan_reports", "scenario_for",
    "tail_reason",
    "trace_on_cmdline", "verdict_json",
]
