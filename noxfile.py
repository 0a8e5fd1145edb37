"""Everyday entry points.

    nox -s matrix              run the default matrix (matrix.yaml) end to end
    nox -s matrix -- --only dups-y.trace-n   (any `kmatrix run` arguments after --)
    nox -s tests               unit tests + integration tests on the real kernel in real containers
    nox -s unit                the fast unit tests only (seconds, no Docker)
    nox -s faults              the whole fault-injection suite (docs/reliability.md)
    nox -s lint                ruff on harness/, tests/ and benchmarks/
    nox -s typecheck           mypy on harness/ (settings in pyproject.toml)
    nox -s sampling            the long sampling tests (not in `tests`: about 15 minutes)
    nox -s bench-sampling      pairwise vs random vs one-at-a-time: builds to 100 % coverage
    nox -s report_browser      the last run's report.html (results/latest) checked in headless chromium
    nox -s bench_report        render time and size of report.html for 1,000 combinations
    nox -s nightly             the nightly CI flow on this machine (shards, merge, compare)
    nox -s bench_shards        how sharding scales (benchmarks/bench_shards.py)
    nox -s bench_speed         the run's shape: CPU busy over time, before/after the core budget, scaling
    nox -s bench               kmatrix against the naive way and TuxMake (benchmarks/README.md)
    nox -s judge_corpus        the judge on real crashes (every LKDTM type) and benign boots
"""

import datetime
import os
import shlex

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "venv"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[test]")


@nox.session
def matrix(session: nox.Session) -> None:
    """Run matrix.yaml: config truth, builds, link checks and boots; prints the summary."""
    _install(session)
    session.run("kmatrix", "run", *session.posargs, external=False)


@nox.session
def tests(session: nox.Session) -> None:
    """All tests: unit, then integration (Docker, the builder image, Debian's 6.12 tree)."""
    _install(session)
    workers = os.environ.get("KMATRIX_TEST_WORKERS", "2")
    # the LKDTM real-boot subset (13 crash types, one per kind family) boots here on its own
    # kernel, built once per machine in its own xdist group beside the other tests; every type
    # is `nox -s judge_corpus`
    session.run("pytest", "tests", "-n", workers, "--dist", "loadgroup",
                "-m", "not slow_fault and not sampling_full",
                "--junitxml", "results/tests-junit.xml", *session.posargs,
                env={"KMATRIX_LKDTM": "ci", "KMATRIX_LKDTM_KERNELS": "lkdtm"})


@nox.session
def sampling(session: nox.Session) -> None:
    """The long sampling tests on the real tree (docs/sampling.md): the two-option break missed
    one at a time and reduced by bisect-config, randconfig by seed with a failure reduced."""
    _install(session)
    session.run("pytest", "tests/integration/test_sampling_real.py", "-n", "0",
                "-m", "sampling_full", "--junitxml", "results/sampling-junit.xml",
                *session.posargs)


@nox.session
def faults(session: nox.Session) -> None:
    """The whole fault-injection suite (docs/reliability.md): real faults against real runs, on
    a Docker engine of the suite's own (needs root; `nox -s tests` runs the fast cases)."""
    _install(session)
    session.run("pytest", "tests/faults", "tests/integration/test_stop_real.py",
                "tests/integration/test_container_real.py", "-n", "0", "-v",
                "--junitxml", "results/faults-junit.xml", *session.posargs)


@nox.session
def unit(session: nox.Session) -> None:
    """Unit tests only: no Docker, no kernel tree."""
    _install(session)
    session.run("pytest", "tests/unit", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on harness/, tests/, benchmarks/ and this file (rules in pyproject.toml)."""
    _install(session)
    session.run("ruff", "check", "harness", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on harness/ (every function annotated; settings in pyproject.toml)."""
    _install(session)
    session.run("mypy")


@nox.session(name="bench-sampling")
def bench_sampling(session: nox.Session) -> None:
    """Builds to 100 % pairwise coverage of the kernel/module/ options: pairwise vs random vs
    one at a time, Kconfig only (about 15 minutes on 2 cores); `-- --build` also builds every
    arm for real (`kmatrix run`, a cold cache each) for their build wall times."""
    _install(session)
    session.run("python", "benchmarks/bench_sampling.py", "--out", "results/bench-sampling.json",
                *session.posargs)


@nox.session
def report_browser(session: nox.Session) -> None:
    """Check the report of a real run (default: results/latest, left by `nox -s matrix`) in
    headless chromium against its records, and its KCIDB export; screenshot in
    results/test-artifacts/report-default-matrix.png."""
    _install(session)
    run_dir = session.posargs[0] if session.posargs else "results/latest"
    session.run("pytest", "tests/integration/test_report_browser.py", "-k", "real", "-n", "0",
                "-q", env={"KMATRIX_REPORT_RUN_DIR": run_dir})


@nox.session
def bench_report(session: nox.Session) -> None:
    """The reports of a synthetic 1,000-combination run directory: render time, size, and
    chromium's load time (docs/report.md). Arguments after -- go to
    benchmarks/bench_report_html.py."""
    _install(session)
    session.run("python", "benchmarks/bench_report_html.py", *session.posargs)


@nox.session
def nightly(session: nox.Session) -> None:
    """The nightly CI flow on this machine: N shards in turn, merge, compare with the previous
    nightly, bisect new failures, history (`kmatrix nightly`, what
    .github/workflows/nightly.yml runs on N runners). Default: matrix.yaml as 2 shards;
    e.g. `nox -s nightly -- my.yaml --shards 4 -- --no-boot`."""
    _install(session)
    args = session.posargs or ["matrix.yaml", "--shards", "2"]
    session.run("kmatrix", "nightly", *args, external=False)


@nox.session
def bench_speed(session: nox.Session) -> None:
    """The whole run's shape (benchmarks/bench_speed.py): wall, CPU, CPU busy %, compiler runs,
    resolve time and disk of the default matrix before and after the core budget, cold (and
    warm with --warm), bigger synthetic matrices with --sizes 18,60,200, and the CPU-over-time
    plot (docs/bench/cpu-timeline.png)."""
    _install(session)
    session.install("matplotlib")
    session.run("python", "benchmarks/bench_speed.py", *session.posargs)


@nox.session
def bench_shards(session: nox.Session) -> None:
    """How sharding scales: N shards in turn, each with a cold cache, the slowest shard as the
    wall time N runners take; merge/compare/report cost on a synthetic 1,000-combination run
    (benchmarks/bench_shards.py; `-- --help` for the options)."""
    _install(session)
    session.run("python", "benchmarks/bench_shards.py", *session.posargs)
# `nox -s bench` without arguments: every required row (kmatrix cold and warm, naive, TuxMake
# `-M kernel/module/`, TuxMake bzImage) on a size that takes about 10 minutes on 2 quiet cores
# (33 minutes under a load of 15, 2026-11-29).
# `nox -s bench -- --full` runs the whole default matrix (about 75 minutes); any other
# bench_matrix.py options after `--` are added after these (the last --combos etc. wins).
BENCH_QUICK = ["--combos", "6", "--tuxmake-combos", "2", "--policies", "nearest", "--skip-boot"]


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark kmatrix against the naive way and TuxMake (benchmarks/README.md)."""
    # TuxMake builds on the host (--runtime null): setup.sh installs its build dependencies
    # (idempotent); TuxMake itself (pinned in pyproject.toml's test extra) goes into this venv
    session.run("./setup.sh", external=True)
    _install(session)
    args = list(session.posargs)
    full = "--full" in args
    args = [a for a in args if a != "--full"] if full else [*BENCH_QUICK, *args]
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"bench-{stamp}.json"
    out = f"results/{name}"
    command = "nox -s bench" + (" -- " + shlex.join(session.posargs) if session.posargs else "")
    session.run("python", "benchmarks/bench_matrix.py", "--out", out, *args,
                env={"KMATRIX_BENCH_COMMAND": command})
    session.log(f"figures in {out}; to publish them: cp {out} docs/bench/ && python3 "
                f"benchmarks/bench_matrix.py --report docs/bench/{name} --write-docs")
@nox.session
def judge_corpus(session: nox.Session) -> None:
    """The judge on real boots (docs/judge.md): the LKDTM kernel booted once per crash type of
    the kernel's tools/testing/selftests/lkdtm/tests.txt and under several -cpu models, and the
    default matrix's boot kernels under several -cpu models; every crash named with its kind,
    every benign boot a pass. `nox -s tests` runs a subset of the same tests.
    KMATRIX_LKDTM=all|ci|TYPE,TYPE and KMATRIX_LKDTM_KERNELS=lkdtm[,lkdtm-kasan] choose."""
    _install(session)
    env = {"KMATRIX_LKDTM": os.environ.get("KMATRIX_LKDTM", "all"),
           "KMATRIX_LKDTM_KERNELS": os.environ.get("KMATRIX_LKDTM_KERNELS", "lkdtm"),
           "KMATRIX_BENIGN": "all"}
    session.run("pytest", "tests/integration/test_lkdtm_real.py",
                "tests/integration/test_boot_real.py", "-k", "lkdtm or benign or cpu_models",
                "-n", "0", "-s", "--junitxml", "results/judge-corpus-junit.xml",
                *session.posargs, env=env)
