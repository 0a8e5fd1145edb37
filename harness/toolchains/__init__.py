"""Toolchains as data: how one compiler suite builds a kernel, in one frozen record per
toolchain (like TuxMake's toolchain classes, with TuxMake's names: gcc-12, clang-16).

A record says which Debian packages the builder image needs for it, the make variables that
select it for an architecture (gcc: ``CC``/``HOSTCC`` with the architecture's cross prefix;
clang: ``LLVM=-N``, whose scripts/Makefile.clang derives ``--target`` from SRCARCH, so no
CROSS_COMPILE), how ccache wraps it, and which package's version the run records. Adding a
toolchain is adding a record here and listing it in ``TOOLCHAINS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..arch import Arch
from ..verdict import InputError


@dataclass(frozen=True)
class Toolchain:
    name: str  # TuxMake's name, as matrix.yaml writes it (kernel.toolchain, axes: toolchain)
    family: str  # gcc | clang
    version: str  # the major version: 12, 16
    packages: tuple[str, ...]  # Debian packages beyond containers/packages.txt
    version_package: str  # the package whose version the run records
    # the suffix Debian gives this version's binaries (gcc-11, clang-16): "" for the default gcc
    suffix: str = ""
    # the image has its cross compilers (gcc: <prefix>gcc<suffix>; clang: every target built in)
    cross: bool = True

    @property
    def cc_name(self) -> str:
        return f"{self.family}{self.suffix}"

    def cannot_build(self, arch: Arch) -> str:
        """Why this toolchain cannot build `arch` in the builder image ("" when it can)."""
        if arch.cross_compile and not self.cross:
            return (f"{self.name} cannot build {arch.name} here: the builder image has no "
                    f"{arch.cross_compile}{self.cc_name}; use another toolchain for {arch.name}")
        return ""

    def make_vars(self, arch: Arch, ccache: bool) -> tuple[str, ...]:
        """make's variables for `arch`: the compiler, host compiler and cross prefix; with
        ccache, CC runs through it (make passes `CC=ccache clang-16` as one variable)."""
        if self.family == "clang":
            # LLVM=-16 makes every tool clang-16, ld.lld-16, llvm-ar-16 ... and HOSTCC clang-16;
            # clang cross-compiles with --target from SRCARCH (scripts/Makefile.clang).
            out = [f"LLVM={self.suffix or '1'}"]
            if ccache:
                out.append(f"CC=ccache {self.cc_name}")
            return tuple(out)
        out = [f"CROSS_COMPILE={arch.cross_compile}"] if arch.cross_compile else []
        cc = f"{arch.cross_compile}{self.cc_name}"
        if ccache:
            out.append(f"CC=ccache {cc}")
        elif self.suffix:
            out.append(f"CC={cc}")
        if self.suffix:
            out.append(f"HOSTCC={self.cc_name}")
        return tuple(out)


def _toolchains() -> dict[str, Toolchain]:
    from .records import RECORDS

    return {t.name: t for t in RECORDS}


TOOLCHAINS: dict[str, Toolchain] = _toolchains()
DEFAULT = "gcc-12"


def get(name: str) -> Toolchain:
    """The record of `name`, or one line listing the toolchains kmatrix knows."""
    try:
        return TOOLCHAINS[name]
    except KeyError:
        raise InputError(f"toolchain {name!r} is not supported: use one of "
                         f"{', '.join(sorted(TOOLCHAINS))}") from None


def default() -> Toolchain:
    return TOOLCHAINS[DEFAULT]


def image_packages() -> tuple[str, ...]:
    """Every record's packages: what the builder image adds to containers/packages.txt."""
    return tuple(sorted({p for t in TOOLCHAINS.values() for p in t.packages}))
