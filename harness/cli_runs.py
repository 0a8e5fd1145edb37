"""The `kmatrix` subcommands over finished run directories, for nightly CI: `merge` (N shards
into one run), `compare` (two runs), `history` (the runs kept) and `nightly` (the shipped
workflow's steps on one machine). harness/cli.py adds their parsers and dispatches to them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from .verdict import EXIT_KERNEL_FAILED, EXIT_OK, InputError, exit_status_for

NIGHTLY_BISECT_S = 1800.0  # the nightly's time budget for bisecting new failures


def _budget(text: str) -> float:
    """Seconds for bisecting new failures; 0 bisects nothing."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def add_parsers(sub: Any, default_matrix: Path, default_results: Path) -> None:
    """The parsers of merge, compare, history and nightly (`sub`: cli.py's subparsers)."""
    mrg = sub.add_parser("merge", help="one run directory from the N shard run directories of "
                         "one run (`kmatrix run --shard K/N`); exit status of the whole run")
    mrg.add_argument("out", type=Path, help="the merged run directory to make, e.g. "
                     "results/<UTC time>-nightly (its name sorts it among the runs)")
    mrg.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR",
                     help="the shards' run directories (results/<run-id> of each shard)")
    mrg.add_argument("--allow-missing", action="store_true",
                     help="report combinations no shard holds as not run (infrastructure) "
                     "instead of refusing")
    mrg.add_argument("--bisect-new-failures", type=_budget, default=None, metavar="SECONDS",
                     help="then bisect the new failures since the previous comparable run in "
                     f"OUT's directory, within SECONDS (alone: {NIGHTLY_BISECT_S:g}; 0: list them, "
                     "bisect none)")
    mrg.add_argument("--kernel", help="the kernel checkout for --bisect-new-failures")

    cmp = sub.add_parser("compare", help="two runs side by side: new failures, fixed, still "
                         "failing, new and removed (exit 1 when something newly fails)")
    cmp.add_argument("base", type=Path, help="the earlier run directory")
    cmp.add_argument("new", type=Path, help="the later run directory")
    cmp.add_argument("--json", metavar="FILE", help="also write the comparison as JSON "
                     "(- for standard output, instead of the Markdown)")
    cmp.add_argument("--markdown", metavar="FILE", help="also write the Markdown to FILE")

    hist = sub.add_parser("history", help="each combination's verdicts over the runs kept; "
                          "verdicts that flip with nothing changed are flagged flaky")
    hist.add_argument("--results", type=Path, default=default_results,
                      help=f"the results directory (default: ./{default_results})")
    hist.add_argument("--last", type=int, default=10, help="how many runs (default 10)")
    hist.add_argument("--matrix", help="the matrix file name (default: the newest run's)")
    hist.add_argument("--json", action="store_true", help="JSON instead of the table")

    ngt = sub.add_parser("nightly", help="the nightly CI flow on this machine: N shards in "
                         "turn, merge, compare with the previous nightly, history "
                         "(what .github/workflows/nightly.yml runs on N runners)")
    ngt.add_argument("matrix", nargs="?", type=Path, default=default_matrix,
                     help=f"the matrix file (default: ./{default_matrix})")
    ngt.add_argument("--shards", type=int, default=2, help="N (default 2)")
    ngt.add_argument("--results", type=Path, default=default_results,
                     help=f"the results directory (default: ./{default_results})")
    ngt.add_argument("--bisect-new-failures", type=_budget, default=NIGHTLY_BISECT_S,
                     metavar="SECONDS", help="time budget for bisecting new failures "
                     f"(default {NIGHTLY_BISECT_S:g}; 0: list them, bisect none)")
    ngt.add_argument("--keys", action="store_true", help="print the workflow's cache keys "
                     "(name=value lines for $GITHUB_OUTPUT) and stop")
    ngt.add_argument("run_options", nargs="*", default=[],
                     help="after --: options for every shard's `kmatrix run`")


def cmd_merge(args: argparse.Namespace) -> int:
    from . import merge, results, runstate, session

    settings = merge.merge(args.out, args.shards, args.allow_missing)
    records = results.finish_run(Path(settings.run_dir), session.run_title(settings))
    # how the merged run ended: complete only when every shard finished every combination
    runstate.set_expected(Path(settings.run_dir), [r.combination for r in records])
    runstate.end(Path(settings.run_dir), runstate.COMPLETE
                 if all(r.status == "done" for r in records) else runstate.FAILED)
    print(results.summary_text(records))
    print(f"\nmerged {len(args.shards)} shard(s) into {settings.run_dir}")
    if args.bisect_new_failures is not None:  # 0: the new failures listed, none bisected
        from .bisect.nightly import bisect_since_previous

        lines = bisect_since_previous(Path(settings.run_dir), args.bisect_new_failures,
                                      args.kernel, settings.jobs)
        if lines:
            print("\n" + "\n".join(lines))
    return exit_status_for([r.final for r in records])


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs
    from .results import atomic_write

    comparison = compare_runs(args.base, args.new)
    text = json.dumps(comparison.to_dict(), indent=2)
    if args.json and args.json != "-":
        atomic_write(Path(args.json), text + "\n")
    if args.markdown:
        atomic_write(Path(args.markdown), comparison.markdown())
    print(text if args.json == "-" else comparison.markdown(), end="\n" if args.json == "-" else "")
    return EXIT_KERNEL_FAILED if comparison.regressed else EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from .history import history

    if args.last < 2:
        raise InputError("--last takes 2 runs or more")
    found = history(args.results, args.last, args.matrix)
    print(json.dumps(found.to_dict(), indent=2) if args.json else found.text())
    return EXIT_OK


def cmd_nightly(args: argparse.Namespace) -> int:
    from . import ci

    if args.keys:
        print("\n".join(f"{k}={v}" for k, v in ci.cache_keys().items()))
        return EXIT_OK
    if args.shards < 1:
        raise InputError("--shards takes 1 or more")
    return ci.local_nightly(args.matrix, args.results, args.shards, args.bisect_new_failures,
                            args.run_options)


COMMANDS = {"merge": cmd_merge, "compare": cmd_compare, "history": cmd_history,
            "nightly": cmd_nightly}
