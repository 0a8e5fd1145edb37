"""`kmatrix summary`, `kmatrix report` and `kmatrix export`: a run directory's reports, made
again from its records alone (never re-derived), and what a stopped run's summary says."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import runstate
from .verdict import EXIT_INFRA, EXIT_OK, InfraError, InputError, exit_status_for

if TYPE_CHECKING:
    from .results import Record


def _records_of(run_dir: Path) -> list[Record]:
    from . import results

    records = results.read_records(run_dir)
    if not records:
        raise InputError(f"{run_dir} holds no records: give a results/<run-id> directory")
    return records


def _rewrite_reports(run_dir: Path) -> bool:
    """Every report of `run_dir` from its records; False (said on stderr) where it is not
    writable."""
    from . import reports

    try:
        reports.write_all(run_dir)
    except PermissionError as exc:
        print(f"kmatrix: could not rewrite the reports in {run_dir} ({exc.strerror}): "
              "copy the directory somewhere writable", file=sys.stderr)
        return False
    return True


def cmd_summary(args: argparse.Namespace) -> int:
    from . import results

    state = runstate.load(args.run_dir)
    unfinished = runstate.incomplete_reason(args.run_dir)
    records = results.read_records(args.run_dir)
    if state is not None and unfinished:
        # the rows of a run that was stopped or killed: what it finished, and every combination
        # it had selected without a record as infra-error (written only by the run itself)
        have = {r.combination for r in records}
        records += [results.missing_record(c, args.run_dir.name, "the run stopped before it "
                                           "finished this combination") for c in state.expected
                    if c not in have]
        records = [r if r.verdict is not None or r.status != "running" else
                   dataclasses.replace(r, status="interrupted") for r in records]
        records.sort(key=lambda r: r.combination)
    if not records and not unfinished:
        raise InputError(f"{args.run_dir} holds no records: give a results/<run-id> directory")
    if records and (state is None or state.effective != runstate.RUNNING):
        _rewrite_reports(args.run_dir)  # an old, copied or killed run's reports, anew
    if records:
        print(results.summary_text(records))
    if unfinished:
        print(f"kmatrix: {unfinished}", file=sys.stderr)
        return EXIT_INFRA
    return exit_status_for([r.final for r in records])


def cmd_report(args: argparse.Namespace) -> int:
    records = _records_of(args.run_dir)
    if not _rewrite_reports(args.run_dir):
        return EXIT_INFRA
    print(f"{args.run_dir}: report.html, summary.md, junit.xml and {len(records)} metadata.json "
          "written from the records")
    return exit_status_for([r.final for r in records])


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from . import kcidb, runinfo
    from .results import atomic_write

    records = _records_of(args.run_dir)
    data = kcidb.export(records, runinfo.load(args.run_dir), args.run_dir, args.url_base)
    try:
        kcidb.validate(data)
    except Exception as exc:  # jsonschema's error, from kcidb-io
        raise InfraError(f"the KCIDB export of {args.run_dir} does not validate "
                         f"({str(exc).splitlines()[0]}): report this as a kmatrix bug") from exc
    text = json.dumps(data, indent=2) + "\n"
    if str(args.output) == "-":
        sys.stdout.write(text)
        return EXIT_OK
    out = args.output or args.run_dir / "kcidb.json"
    atomic_write(out, text)
    print(f"{out}: {len(data['builds'])} builds and {len(data['tests'])} tests "
          f"(KCIDB schema {kcidb.SCHEMA_MAJOR}.{kcidb.SCHEMA_MINOR})")
    return EXIT_OK
