"""Everyday entry points.

    nox -s matrix              run the default matrix (matrix.yaml) end to end
    nox -s matrix -- --only dups-y.trace-n   (any `kmatrix run` arguments after --)
    nox -s tests               unit tests + integration tests on the real kernel in real containers
    nox -s unit                the fast unit tests only (seconds, no Docker)
    nox -s lint                ruff on harness/, tests/ and benchmarks/
    nox -s typecheck           mypy on harness/ (settings in pyproject.toml)
    nox -s sampling            the long sampling tests (not in `tests`: about 15 minutes)
    nox -s bench-sampling      pairwise vs random vs one-at-a-time: builds to 100 % coverage
"""

import os

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
    session.run("pytest", "tests", "-n", workers, "--dist", "loadgroup", "-m", "not sampling_full",
                "--junitxml", "results/tests-junit.xml", *session.posargs)


@nox.session
def sampling(session: nox.Session) -> None:
    """The long sampling tests on the real tree (docs/sampling.md): the two-option break missed
    one at a time and reduced by bisect-config, randconfig by seed with a failure reduced."""
    _install(session)
    session.run("pytest", "tests/integration/test_sampling_real.py", "-n", "0",
                "-m", "sampling_full", "--junitxml", "results/sampling-junit.xml",
                *session.posargs)


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
    one at a time, Kconfig only (about 15 minutes on 2 cores); pass `-- --run-dir RUN` (a
    finished `kmatrix run matrix-pairwise.yaml`) for the build wall times."""
    _install(session)
    session.run("python", "benchmarks/bench_sampling.py", "--out", "results/bench-sampling.json",
                *session.posargs)
