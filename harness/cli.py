"""kmatrix's command line: `kmatrix SUBCOMMAND ...` (also `python -m harness`).

Exit statuses: 0 all passed, 1 the kernel failed (a combination's verdict), 2 bad input
(matrix, arguments, a log that cannot be judged), 3 infrastructure (Docker, disk, timeouts),
130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, cli_runs, runstate
from .verdict import (
    EXIT_BAD_INPUT,
    EXIT_INFRA,
    EXIT_INTERRUPTED,
    EXIT_KERNEL_FAILED,
    EXIT_OK,
    InfraError,
    InputError,
    KmatrixError,
    Verdict,
    exit_status_for,
)

if TYPE_CHECKING:
    from .matrix import Matrix
    from .pytest_plugin import RunTracker
    from .results import Record
    from .settings import RunSettings

DEFAULT_MATRIX = Path("matrix.yaml")
DEFAULT_RESULTS = Path("results")
BISECT_BUDGET_S = 1800.0  # --bisect-new-failures alone


def _matrix_arg(p: argparse.ArgumentParser, kernel: bool = True) -> None:
    p.add_argument("matrix", nargs="?", type=Path, default=DEFAULT_MATRIX,
                   help="the matrix file (default: ./matrix.yaml)")
    if kernel:
        p.add_argument("--kernel", help="kernel source to use instead of the matrix's "
                       "kernel.source: a tree (e.g. a git checkout), a tarball, or `debian`")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    from .randconfig import randconfig_arguments
    from .runtime import runtime_argument

    parser = argparse.ArgumentParser(
        prog="kmatrix", description="Kernel-config build matrix: prove requested CONFIG_ values "
        "survive Kconfig, the kernel builds, the expected kernel/module/ objects link, and the "
        "dups code boots and behaves.",
        epilog="exit status: 0 pass, 1 kernel failure, 2 bad input, 3 infrastructure problem, "
        "130 interrupted")
    parser.add_argument("--version", action="version", version=f"kmatrix {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the matrix: config, build, link check (and boots)")
    _matrix_arg(run)
    run.add_argument("--only", action="append", default=[], metavar="ID",
                     help="run only this combination (repeatable)")
    run.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                     help="results directory (default: ./results)")
    run.add_argument("--workers", type=int, help="combinations built in parallel")
    run.add_argument("--jobs", type=int, help="make -j for each combination")
    run.add_argument("--oversubscribe", action="store_true",
                     help="allow workers x jobs to exceed the cores")
    run.add_argument("--pristine", action="store_true",
                     help="build every combination from scratch (no warm trees, no ccache)")
    run.add_argument("--trees", choices=("nearest", "lanes", "own"), default=None,
                     help="which output tree builds what: nearest (the default: each combination "
                     "follows the tree whose last config is nearest, or starts from the seed), "
                     "lanes (one shared tree per worker: least disk) or own (one tree per "
                     "combination); overrides build.trees")
    run.add_argument("--no-ccache", dest="ccache", action="store_false",
                     help="do not use the shared compiler cache")
    run.add_argument("--no-boot", dest="boot", action="store_false",
                     help="skip the QEMU boots of combinations that ask for one")
    run.add_argument("--bisect-new-failures", nargs="?", const=BISECT_BUDGET_S, type=_seconds,
                     default=None, metavar="SECONDS",
                     help="after the run, bisect each combination that passed in the previous "
                     f"run and fails now, within SECONDS in all (alone: {BISECT_BUDGET_S:g}; "
                     "--bisect-new-failures=600 or --bisect-new-failures 600; a word after it "
                     "that is not a number is not taken as SECONDS)")
    run.add_argument("--shard", metavar="K/N",
                     help="run the K-th of N parts of the matrix (whole output trees, balanced "
                     "by expected cost); `kmatrix merge` joins the N run directories")
    run.add_argument("--resume", nargs="?", const="", default=None, metavar="RUN_DIR",
                     help="finish an interrupted run (default: the newest in --results): only "
                     "the combinations without a finished record run, with the run's settings")
    randconfig_arguments(run)
    runtime_argument(run)
    run.add_argument("pytest_args", nargs="*", default=[],
                     help="after --: extra pytest arguments (e.g. -- -k dups, or -- --lf: the "
                     "combinations that failed last time; pytest's cache is in RESULTS/.pytest_cache)")

    val = sub.add_parser("validate", help="check the matrix against the kernel tree, build nothing")
    _matrix_arg(val)
    lst = sub.add_parser("list", help="list the matrix's combinations and their values")
    _matrix_arg(lst, kernel=False)  # the matrix alone: no kernel tree is read

    exp = sub.add_parser("expect-map", help="print an `expect:` map generated from a tree's "
                         "Kbuild Makefile")
    exp.add_argument("--kernel", default="debian", help="kernel tree, tarball or `debian`")
    exp.add_argument("--dir", default="kernel/module/", help="directory (default kernel/module/)")

    img = sub.add_parser("image", help="build the builder image (once; reused afterwards)")
    img.add_argument("--mirror", metavar="URL",
                     help="Debian mirror for the offline (debootstrap) build, when the image "
                     "must be built; default: $KMATRIX_DEBIAN_MIRROR, else the first Debian "
                     "archive in the host's apt sources, else http://deb.debian.org/debian")
    runtime_argument(img, matrix=False)

    ver = sub.add_parser("verdict", help="re-judge a saved console log (JSON; exit 0 pass, "
                         "1 kernel failure, 2 cannot judge)")
    ver.add_argument("console_log", type=Path,
                     help="a saved serial console log (RESULTS/<run>/<combination>/console.log)")
    ver.add_argument("--config", type=Path, required=True, help="the booted kernel's .config")
    ver.add_argument("--cmdline", default=None,
                     help="the kernel command line (default: read from the log)")

    expl = sub.add_parser("explain", help="why a CONFIG_ value does not hold, what selects it, "
                          "and the smallest repair")
    expl.add_argument("symbol", help="CONFIG_X or CONFIG_X=VALUE (default value y)")
    _matrix_arg(expl)
    which = expl.add_mutually_exclusive_group()
    which.add_argument("--config", type=Path, help="a .config or fragment to explain against")
    which.add_argument("--combo", help="a combination id: its input config from results/latest")
    expl.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                      help="results directory that --combo reads (default: ./results)")

    bis = sub.add_parser("bisect", help="find the first commit that breaks a combination "
                         "(git bisect in a throwaway worktree of --kernel)")
    _matrix_arg(bis)
    bis.add_argument("--good", required=True, metavar="REV", help="a commit where it passes")
    bis.add_argument("--bad", required=True, metavar="REV", help="a commit where it fails")
    bis.add_argument("--combo", required=True, metavar="ID",
                     help="the combination (`kmatrix list`)")
    bis.add_argument("--stage", choices=["config", "build", "link", "boot"],
                     help="the failure to bisect (default: the stage that failed for this "
                     "combination in RESULTS/latest, else build)")
    bis.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                     help="results directory (default: ./results)")
    bis.add_argument("--jobs", type=int, help="make -j (default: 2 at most)")

    bcf = sub.add_parser("bisect-config", help="find the smallest set of options that turns a "
                         "passing config into a failing one (delta debugging)")
    _matrix_arg(bcf)
    bcf.add_argument("--good", required=True, metavar="ID|FILE",
                     help="a passing combination id, .config or fragment")
    bcf.add_argument("--bad", required=True, metavar="ID|FILE",
                     help="a failing combination id, .config or fragment")
    bcf.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                     help="results directory (default: ./results)")
    bcf.add_argument("--jobs", type=int, help="make -j (default: 2 at most)")

    cch = sub.add_parser("cache", help="what kmatrix's cache holds; --prune DAYS removes "
                         "output trees and seeds unused for that long")
    cch.add_argument("--prune", type=float, metavar="DAYS",
                     help="remove output trees and seeds not used for DAYS days (never one a run "
                     "is using); kmatrix remakes them when needed")

    cli_runs.add_parsers(sub, DEFAULT_MATRIX, DEFAULT_RESULTS)

    summ = sub.add_parser("summary", help="print the summary table of a run (and rewrite its "
                          "reports from the records)")
    summ.add_argument("run_dir", nargs="?", type=Path, default=DEFAULT_RESULTS / "latest",
                      help="a run directory, results/<run-id> (default: results/latest)")

    rep = sub.add_parser("report", help="(re)write every report of a run directory from its "
                         "records: summary.md, junit.xml, report.html, metadata.json")
    rep.add_argument("run_dir", nargs="?", type=Path, default=DEFAULT_RESULTS / "latest",
                     help="a run directory, results/<run-id> (default: results/latest)")

    xpt = sub.add_parser("export", help="export a run for other kernel CI systems")
    xpt.add_argument("--kcidb", action="store_true", required=True,
                     help="KCIDB JSON (checkouts, builds, tests), validated with kcidb-io")
    xpt.add_argument("run_dir", nargs="?", type=Path, default=DEFAULT_RESULTS / "latest",
                     help="a run directory, results/<run-id> (default: results/latest)")
    xpt.add_argument("-o", "--output", type=Path, default=None,
                     help="where to write it (default: RUN_DIR/kcidb.json; - for stdout)")
    xpt.add_argument("--url-base", default=None, metavar="URL",
                     help="where the run directory is published, for the log URLs (default: "
                     "its file:// address)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv, pytest_args = _split_pytest_args(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
    if pytest_args:  # run: pytest's arguments; nightly: every shard's `kmatrix run` options
        field = "run_options" if args.command == "nightly" else "pytest_args"
        setattr(args, field, [*getattr(args, field), *pytest_args])
    if not args.command:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return COMMANDS[args.command](args)
    except KmatrixError as exc:
        print(f"kmatrix: error: {exc.message}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("kmatrix: interrupted: finished records are kept; rerun to complete", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `kmatrix verdict ... | head`: the reader left; no traceback,
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # and the status of a tool SIGPIPE stopped


def _split_pytest_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """`kmatrix run [OPTIONS] -- PYTEST_ARGS`: what follows `--` goes to pytest as it stands
    (argparse would hand `-k` to the optional matrix positional); `kmatrix nightly [OPTIONS] --
    RUN_OPTIONS` likewise to every shard's `kmatrix run`. And `--bisect-new-failures`
    with no number after it gets the default budget: argparse would take the next word (the
    matrix) as its SECONDS."""
    cut = argv.index("--") if "--" in argv else len(argv)
    argv = [f"{a}={BISECT_BUDGET_S:g}" if i < cut and a == "--bisect-new-failures" and
            (i + 1 == cut or not _is_number(argv[i + 1])) else a for i, a in enumerate(argv)]
    if cut == len(argv):
        return argv, []
    words = [a for a in argv[:cut] if not a.startswith("-")]
    if words[:1] not in (["run"], ["nightly"]):
        return argv, []
    return argv[:cut], argv[cut + 1:]


def cmd_run(args: argparse.Namespace) -> int:
    from . import randconfig, session
    from .coverage import print_coverage
    from .shard import ShardSpec

    if args.resume is not None and (args.shard or args.only or args.runtime):
        raise InputError("--resume keeps the run's own selection and runtime: drop --shard, "
                         "--only and --runtime")
    random = randconfig.spec_from_args(args)
    with runstate.terminate_as_interrupt():  # SIGTERM from CI or `kill`: the Ctrl-C path
        if args.resume is not None:
            from . import resume

            settings, matrix, _ = resume.prepare(args.results, Path(args.resume) if args.resume
                                                 else None)
        else:
            opts = session.Options(matrix=args.matrix, results=args.results, kernel=args.kernel,
                                   only=tuple(args.only), workers=args.workers, jobs=args.jobs,
                                   pristine=args.pristine, ccache=args.ccache, boot=args.boot,
                                   oversubscribe=args.oversubscribe, trees=args.trees,
                                   shard=ShardSpec.parse(args.shard) if args.shard else None,
                                   random=random, runtime=args.runtime)
            settings, matrix = session.prepare_run(opts)
        if settings.shard.get("index") and not settings.only:  # more shards than output trees
            print(f"kmatrix: shard {settings.shard['index']}/{settings.shard['count']} has no "
                  "combinations (the matrix has fewer output trees than shards)")
            session.finish_run(settings, [])
            return EXIT_OK
        code, tracker, records = run_items(settings, matrix, args.pytest_args,
                                           resume=args.resume is not None)
    from .results import summary_text

    print()
    print(summary_text(records))
    print_coverage(Path(settings.run_dir))  # a sampled run's (harness/coverage.py)
    print(f"\nresults: {settings.run_dir} (report.html, summary.md, junit.xml; record.json and "
          "metadata.json per combination)")
    if tracker.interrupted or any(r.status != "done" for r in records):
        print(f"kmatrix: run {settings.run_id} did not finish: finish it with "
              f"`kmatrix run --resume {settings.run_dir}`")
    if tracker.interrupted:
        return EXIT_INTERRUPTED
    if random is not None:
        randconfig.report_reductions(Path(settings.run_dir), args.matrix, args.results,
                                     args.kernel, settings.jobs)
    if args.bisect_new_failures is not None:
        _bisect_new_failures(args, settings, matrix)
    return run_exit_status(code, tracker, [r.final for r in records])


def run_items(settings: RunSettings, matrix: Matrix, extra: list[str], resume: bool = False
              ) -> tuple[int, RunTracker, list[Record]]:
    """pytest over the prepared run (one item per combination; with `resume`, only those
    without a finished record), then the reports: every combination pytest selected has a row,
    with or without a record."""
    import pytest

    from . import session
    from .pytest_plugin import RunTracker

    cache_dir = (Path(settings.run_dir).parent / ".pytest_cache").resolve()  # for --lf
    pytest_argv = [str(matrix.path), "-p", "harness.pytest_plugin", "-o", f"cache_dir={cache_dir}",
                   "-p", "no:benchmark",
                   "--kmatrix-run-dir", settings.run_dir, "-q", "-rN",
                   "--rootdir", str(matrix.path.parent), "-c", os.devnull]
    if resume:
        pytest_argv.append("--kmatrix-resume")
    if settings.workers > 1:
        pytest_argv += ["-n", str(settings.workers), "--dist", "loadgroup", "--no-loadscope-reorder"]
    tracker = RunTracker(Path(settings.run_dir))
    try:
        code = pytest.main(pytest_argv + list(extra), plugins=[tracker])
    except KeyboardInterrupt:  # a signal outside pytest's own handling (its start or end)
        code, tracker.interrupted = pytest.ExitCode.INTERRUPTED, True
    with runstate.signals_deferred():  # the reports are written whatever arrives now
        return int(code), tracker, session.finish_run(settings, tracker.selected,
                                                      tracker.interrupted)


def run_exit_status(code: int, tracker: RunTracker, verdicts: list[Verdict]) -> int:
    """The exit status of `kmatrix run`, from what pytest ran and the records together: no
    selected combination is bad input; selected combinations with no verdict at all, a pytest
    failure the records do not show, or pytest's own trouble are infrastructure."""
    if tracker.interrupted:
        return EXIT_INTERRUPTED
    if not tracker.selected:
        if code == 5:  # pytest: no tests collected (-k / --only chose nothing)
            raise InputError("no combination ran: check --only and the -k expression")
        raise InfraError(f"pytest collected no combination (pytest exit status {code}): "
                         "see the output above")
    status = exit_status_for(verdicts) if verdicts else EXIT_INFRA
    failed_in_pytest = any(o == "failed" for o in tracker.outcomes.values())
    if status == EXIT_OK and (failed_in_pytest or code not in (0, 1)):
        return EXIT_INFRA
    return status


def _bisect_new_failures(args: argparse.Namespace, settings: RunSettings, matrix: Matrix) -> None:
    from .bisect.nightly import bisect_since_previous

    lines = bisect_since_previous(Path(settings.run_dir), args.bisect_new_failures, args.kernel,
                                  settings.jobs)
    if lines:
        print("\n" + "\n".join(lines))


def cmd_bisect(args: argparse.Namespace) -> int:
    from .bisect.commits import bisect_on_tree, report_text
    from .bisect.trial import open_env

    if not args.kernel:
        raise InputError("kmatrix bisect needs --kernel pointing at a git checkout of the kernel")
    env = open_env(args.matrix, args.results, args.kernel, args.jobs, "bisect")
    result = bisect_on_tree(env, Path(args.kernel).resolve(), args.good, args.bad, args.combo,
                            args.stage, args.results)
    print("\n" + report_text(result))
    print(f"results: {env.settings.run_dir} (bisect.json, bisect.txt, steps/<n>-<commit>/)")
    return EXIT_OK if result.first_bad is not None and result.confirmed else EXIT_KERNEL_FAILED


def cmd_bisect_config(args: argparse.Namespace) -> int:
    from .bisect.ddmin import report_text
    from .bisect.oracle import config_bisect_on_tree
    from .bisect.trial import open_env

    env = open_env(args.matrix, args.results, args.kernel, args.jobs, "bisect-config")
    result = config_bisect_on_tree(env, args.good, args.bad)
    print("\n" + report_text(result))
    print(f"results: {env.settings.run_dir} (bisect-config.json, bisect-config.txt, configs/)")
    return EXIT_OK if result.culprits and result.complete else EXIT_KERNEL_FAILED


def cmd_validate(args: argparse.Namespace) -> int:
    from . import session

    matrix, tree, _ = session.load_checked(session.Options(matrix=args.matrix,
                                                           results=DEFAULT_RESULTS,
                                                           kernel=args.kernel))
    print(f"{matrix.path}: valid: {len(matrix.combinations)} combinations against Linux "
          f"{tree.version} ({tree.origin})")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from . import matrix as matrixmod

    matrix = matrixmod.load_matrix(args.matrix)
    ruled_out: list[str] = []
    if matrix.deferred:  # the sample needs the tree (axes.from) and Kconfig (its constraints)
        from . import session

        matrix, ruled_out = session.sampled_matrix(session.Options(
            matrix=args.matrix, results=DEFAULT_RESULTS),
            lambda line: print(line, file=sys.stderr))
        print(f"# sample: {matrix.sample.describe()}: {len(matrix.axes)} options, "
              f"{len(matrix.combinations)} combinations (a run adds cover-NN combinations for "
              "tuples Kconfig's resolution leaves uncovered)")
        for line in ruled_out:
            print(f"# ruled out by Kconfig: {line}")
    for combo in matrix.combinations:
        values = " ".join(f"{s}={v}" for s, v in combo.axis_values.items())
        boot = f"  [boot{': ' + combo.boot.cmdline if combo.boot and combo.boot.cmdline else ''}]" \
            if combo.boot else ""
        print(f"{combo.id}  {values}{boot}")
    return EXIT_OK


def cmd_expect_map(args: argparse.Namespace) -> int:
    from . import makefile, source

    tree = source.resolve(args.kernel)
    directory = args.dir if args.dir.endswith("/") else args.dir + "/"
    mk = tree.path / directory / "Makefile"
    if not mk.is_file():
        raise InputError(f"{mk} does not exist: pass --dir with a directory that has a Makefile")
    rules = makefile.parse_object_rules(mk.read_text())
    print(f"# generated by `kmatrix expect-map` from {mk} (Linux {tree.version})")
    print(makefile.render_expect_yaml(directory, makefile.expect_map(rules)), end="")
    return EXIT_OK


def cmd_image(args: argparse.Namespace) -> int:
    from . import image, runtime, source

    tag = image.ensure_image(runtime.connect(runtime.runtime(args.runtime)), image.read_spec(),
                             source.cache_root(), mirror=args.mirror)
    print(tag)
    return EXIT_OK


def cmd_verdict(args: argparse.Namespace) -> int:
    from . import judge

    return judge.main_print(args.console_log, args.config, args.cmdline)


def cmd_explain(args: argparse.Namespace) -> int:
    import hashlib

    from . import arch, session, source
    from . import matrix as matrixmod
    from .kconfig.command import explain_main

    config = args.config
    if args.combo:
        config = args.results / "latest" / args.combo / "input.config"
        if not config.is_file():
            raise InputError(f"{config} does not exist: run `kmatrix run --only {args.combo}` "
                             "first, or pass --config FILE")
    matrix = matrixmod.load_matrix(args.matrix) if args.matrix.exists() else None
    tree = source.resolve(args.kernel or (matrix.source if matrix else "debian"))
    _, _, runner = session.open_engine(source.cache_root(),
                                       runtime=matrix.build.runtime if matrix else None)
    target = matrix.arch if matrix else arch.default()  # Kconfig resolves for the matrix's arch
    key = hashlib.sha256(f"{tree.path}|{target.name}".encode()).hexdigest()[:12]
    out = source.cache_root() / "explain" / key
    out.mkdir(parents=True, exist_ok=True)
    text, status = explain_main(args.symbol, config, tree.path, out, runner, arch=target)
    print(text)
    return status


from .cli_cache import cmd_cache  # noqa: E402
from .cli_reports import cmd_export, cmd_report, cmd_summary  # noqa: E402

COMMANDS = {"run": cmd_run, "validate": cmd_validate, "list": cmd_list,
            "expect-map": cmd_expect_map, "image": cmd_image, "summary": cmd_summary,
            "report": cmd_report, "export": cmd_export,
            "verdict": cmd_verdict, "explain": cmd_explain,
            "bisect": cmd_bisect, "bisect-config": cmd_bisect_config, "cache": cmd_cache,
            **cli_runs.COMMANDS}
