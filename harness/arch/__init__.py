"""Architectures as data: everything architecture-specific about building and booting a kernel
in one frozen record per architecture (like kunit_tool's qemu_configs/ and TuxMake's arch/*.ini).

Adding an architecture is adding a module here with one ``Arch`` record and listing it in
``ARCHES``; nothing else in kmatrix names an architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..verdict import InputError


@dataclass(frozen=True)
class ReportForm:
    """A console report only this architecture prints: one row of the judge's table
    (harness/judge/reports.py: kind, headline regex, where it ends, severity, source file)."""

    kind: str
    pattern: str
    end: str  # harness.judge.reports.End value: line, end-trace, separator, fix, stack, panic
    severity: str  # fatal, error or warning
    source: str  # the kernel file that prints it


@dataclass(frozen=True)
class Arch:
    name: str  # kmatrix's name, as matrix.yaml writes it (kernel.arch)
    make_arch: str  # make's ARCH=
    srcarch: str  # the kernel's arch/<srcarch>/ directory
    cross_compile: str  # CROSS_COMPILE= for gcc ("" when it is the host's)
    clang_target: str  # clang's --target with LLVM=1
    image_target: str  # the make target of a bootable kernel image
    image_path: str  # that image, relative to the output tree
    qemu: str  # the QEMU system binary
    machine: str  # -M
    cpu_tcg: str  # -cpu under TCG
    cpu_kvm: str  # -cpu under KVM
    console: str  # the serial console device, for console=
    host_machine: str  # `uname -m` of a host whose KVM can run this architecture's guests
    boot_config: tuple[str, ...] = ()  # extra boot fragment lines this architecture needs
    # the static busybox for this architecture's boot guest, in the builder image (a foreign
    # package of containers/packages.txt is unpacked under /opt/kmatrix/ARCH/)
    busybox: str = "/bin/busybox"
    # console report forms of this architecture the generic judge must know, checked before
    # the generic table (harness/judge/reports.py)
    report_forms: tuple[ReportForm, ...] = ()

    @property
    def gcc(self) -> str:
        """The gcc that compiles for this architecture (the boot guest's compiler)."""
        return f"{self.cross_compile}gcc"

    @property
    def base_cmdline(self) -> tuple[str, ...]:
        """The kernel command line every boot starts from."""
        return (f"console={self.console}", "panic=-1", "printk.devkmsg=on", "loglevel=7")


def _arches() -> dict[str, Arch]:
    from .arm64 import ARM64
    from .x86_64 import X86_64

    return {a.name: a for a in (X86_64, ARM64)}


ARCHES: dict[str, Arch] = _arches()
DEFAULT = "x86_64"


def get(name: str) -> Arch:
    """The record of `name`, or one line listing the architectures kmatrix knows."""
    try:
        return ARCHES[name]
    except KeyError:
        raise InputError(f"arch {name!r} is not supported yet: use one of "
                         f"{', '.join(sorted(ARCHES))}") from None


def default() -> Arch:
    return ARCHES[DEFAULT]
