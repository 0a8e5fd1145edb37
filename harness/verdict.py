"""Verdicts and exit statuses: the vocabulary every stage reports in."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Stage(enum.StrEnum):
    """The checks of a combination, in order; a bisect can stop after any of them."""

    CONFIG = "config"  # olddefconfig and config truth
    BUILD = "build"
    LINK = "link"  # the link check of the expected objects
    BOOT = "boot"


class Verdict(enum.StrEnum):
    """The outcome of one combination (or one stage of it)."""

    PASS = "pass"
    CONFIG_DROPPED = "config-dropped"  # Kconfig dropped or changed a requested value
    UNSATISFIABLE = "unsatisfiable"  # the request can never hold (found before building)
    BUILD_ERROR = "build-error"  # make failed
    LINK_MISMATCH = "link-mismatch"  # kernel/module/built-in.a members differ from expectation
    BOOT_FAIL = "boot-fail"  # the console log shows a kernel problem or wrong dups behaviour
    BOOT_TIMEOUT = "boot-timeout"  # no end marker before the wall-clock limit
    INFRA_ERROR = "infra-error"  # Docker, disk, timeout, tooling: not the kernel's fault

    @property
    def is_kernel_failure(self) -> bool:
        return self not in (Verdict.PASS, Verdict.INFRA_ERROR)

    @property
    def stage(self) -> Stage | None:
        """The check this verdict is the failure of (None for pass and infra-error)."""
        return _STAGE_OF.get(self)


_STAGE_OF = {Verdict.CONFIG_DROPPED: Stage.CONFIG, Verdict.UNSATISFIABLE: Stage.CONFIG,
             Verdict.BUILD_ERROR: Stage.BUILD, Verdict.LINK_MISMATCH: Stage.LINK,
             Verdict.BOOT_FAIL: Stage.BOOT, Verdict.BOOT_TIMEOUT: Stage.BOOT}


# Exit statuses shared by every kmatrix command.
EXIT_OK = 0
EXIT_KERNEL_FAILED = 1  # at least one combination failed because of the kernel
EXIT_BAD_INPUT = 2  # the user's input (matrix, arguments, log) cannot be used
EXIT_INFRA = 3  # the machine or the tooling failed (Docker, disk, timeouts)
EXIT_INTERRUPTED = 130  # Ctrl-C


class KmatrixError(Exception):
    """An error with a one-line message that says what to do. Carries its exit status."""

    exit_status = EXIT_INFRA

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(KmatrixError):
    """The user's input is wrong (matrix file, arguments, missing kernel tree)."""

    exit_status = EXIT_BAD_INPUT


class InfraError(KmatrixError):
    """The machine or the tooling failed: Docker missing, disk full, step timed out."""

    exit_status = EXIT_INFRA


@dataclass
class Outcome:
    """A verdict with the reasons that prove it (first bad lines quoted)."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def ok(cls) -> Outcome:
        return cls(Verdict.PASS, [])


def exit_status_for(verdicts: list[Verdict]) -> int:
    """Infrastructure problems win over kernel failures: a run with both cannot be trusted."""
    if any(v is Verdict.INFRA_ERROR for v in verdicts):
        return EXIT_INFRA
    if any(v.is_kernel_failure for v in verdicts):
        return EXIT_KERNEL_FAILED
    return EXIT_OK
