"""Architecture and toolchain as matrix values: `kernel: {arch, toolchain}` fixed, `axes:`
entries (`arch: [...]`, `toolchain: [gcc-12, clang-16]`), `exclude:` rules and
`include:` entries, written in lower case beside the CONFIG_ symbols.

A combination carries its own architecture and toolchain (empty: the matrix's fixed ones);
`variant` names the pair, and everything built is keyed by it: the compiler cache, the seed
tree, the output trees and the remembered resolutions (harness/settings.py, pipeline.py,
resolve.py), so nothing one toolchain or architecture built is reused by another.
"""

from __future__ import annotations

from . import arch as archmod
from . import toolchains

KEYS = ("arch", "toolchain")
DEFAULT = f"{archmod.DEFAULT}-{toolchains.DEFAULT}"  # keeps the caches it had before axes


def check(key: str, value: object) -> str:
    """A known architecture or toolchain name, or InputError listing the known ones."""
    name = str(value)
    if key == "arch":
        archmod.get(name)
    else:
        toolchains.get(name)
    return name


def split(row: tuple[tuple[str, str], ...]) -> tuple[tuple[tuple[str, str], ...], str, str]:
    """A row of axis values as (the CONFIG_ values, arch, toolchain)."""
    given = dict(row)
    return (tuple((s, v) for s, v in row if s not in KEYS), given.get("arch", ""),
            given.get("toolchain", ""))


def name(arch: str, toolchain: str) -> str:
    """The variant's name: `<arch>-<toolchain>`."""
    return f"{arch}-{toolchain}"


def not_sampled(has_keys: bool, sampled: bool) -> str:
    """Why arch/toolchain axes cannot be used here ("" when they can): a sample is measured on
    resolved configs, where neither appears as a value."""
    if has_keys and sampled:
        return ("arch and toolchain axes work with `sample: all` and without `axes: from` "
                "for now: list the architectures or toolchains as include entries instead")
    return ""

