"""The toolchains kmatrix builds with, all from Debian bookworm packages.

gcc-12 is bookworm's default gcc (the `gcc` package in containers/packages.txt): no suffix, so
its make command lines stay as they were before toolchains were an axis. clang-16 needs lld and
the llvm binutils too (LLVM=-16 uses ld.lld-16, llvm-ar-16, llvm-nm-16, llvm-objcopy-16 ...).
clang-14 and clang-15 are in bookworm as well; they are left out because each adds about
400 MB to the builder image (see docs/toolchains.md).
"""

from __future__ import annotations

from . import Toolchain

GCC_12 = Toolchain(name="gcc-12", family="gcc", version="12", packages=(),
                   version_package="gcc-12")
GCC_11 = Toolchain(name="gcc-11", family="gcc", version="11", packages=("gcc-11",),
                   version_package="gcc-11", suffix="-11", cross=False)  # no gcc-11 cross
CLANG_16 = Toolchain(name="clang-16", family="clang", version="16",
                     packages=("clang-16", "lld-16", "llvm-16"), version_package="clang-16",
                     suffix="-16")

RECORDS = (GCC_12, GCC_11, CLANG_16)
