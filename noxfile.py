"""Everyday entry points.

    nox -s matrix              run the default matrix (matrix.yaml) end to end
    nox -s matrix -- --only dups-y.trace-n   (any `kmatrix run` arguments after --)
    nox -s tests               unit tests + integration tests on the real kernel in real containers
    nox -s unit                the fast unit tests only (seconds, no Docker)
    nox -s lint                ruff on harness/, tests/ and benchmarks/
    nox -s typecheck           mypy on harness/ (settings in pyproject.toml)
    nox -s bench               kmatrix against the naive way and TuxMake (benchmarks/README.md)
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
    session.run("pytest", "tests", "-n", workers, "--dist", "loadgroup",
                "--junitxml", "results/tests-junit.xml", *session.posargs)


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
