"""Everyday entry points.

    nox -s matrix              run the default matrix (matrix.yaml) end to end
    nox -s matrix -- --only dups-y.trace-n   (any `kmatrix run` arguments after --)
    nox -s tests               unit tests + integration tests on the real kernel in real containers
    nox -s unit                the fast unit tests only (seconds, no Docker)
    nox -s lint                ruff on harness/, tests/ and benchmarks/
    nox -s typecheck           mypy on harness/ (settings in pyproject.toml)
    nox -s judge_corpus        the judge on real crashes (every LKDTM type) and benign boots
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
    # the LKDTM real-boot tests need their own kernel build (16 min fresh at load 9): they run
    # in `nox -s judge_corpus` (KMATRIX_LKDTM=ci for the 13-type subset); here the golden logs
    # of that corpus are judged again by the unit tests
    session.run("pytest", "tests", "-n", workers, "--dist", "loadgroup",
                "--ignore", "tests/integration/test_lkdtm_real.py",
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
