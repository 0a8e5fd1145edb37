"""The kernel source: a directory (e.g. a git checkout), a tarball, or Debian's linux-source.

Tarballs (Debian's included) are unpacked once into the cache and reused read-only.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from .verdict import InfraError, InputError

DEBIAN_PACKAGE = "linux-source-6.12"


@dataclass(frozen=True)
class KernelTree:
    path: Path  # the top of the tree (holds Makefile and Kconfig)
    version: str  # e.g. 6.12.117
    origin: str  # what the user named: debian:linux-source-6.12, a tarball, a directory
    commit: str | None = None  # for git checkouts


def cache_root() -> Path:
    env = os.environ.get("KMATRIX_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kmatrix"


def kernel_version(tree: Path) -> str:
    text = (tree / "Makefile").read_text(errors="replace")[:2000]
    fields = {k: v.strip() for k, v in re.findall(
        r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*([^\n]*)$", text, re.M)}
    version = ".".join(fields.get(k, "0") for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"))
    return version + fields.get("EXTRAVERSION", "")


def git_commit(tree: Path) -> str | None:
    if not (tree / ".git").exists():
        return None
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def check_tree(tree: Path, origin: str) -> KernelTree:
    if not (tree / "Makefile").is_file() or not (tree / "Kconfig").is_file():
        raise InputError(f"{tree} is not a kernel tree (no Makefile and Kconfig at its top): "
                         "point kernel.source or --kernel at the top of a Linux source tree")
    if (tree / ".config").exists() or (tree / "include" / "config").exists():
        raise InputError(f"{tree} has build output in the source tree: kmatrix builds with "
                         "O=<dir>, which needs a clean tree: run `make mrproper` in it")
    return KernelTree(tree, kernel_version(tree), origin, git_commit(tree))


def debian_tarball() -> Path:
    found = sorted(glob.glob(f"/usr/src/{DEBIAN_PACKAGE}.tar.*"))
    if not found:
        raise InputError(f"Debian's {DEBIAN_PACKAGE} is not installed: run `apt-get install "
                         f"{DEBIAN_PACKAGE}` as root (or set kernel.source to your own tree)")
    return Path(found[0])


def unpack(tarball: Path, cache: Path) -> Path:
    """Unpack a tarball once into the cache (atomically: a half-unpacked tree is never used)."""
    st = tarball.stat()
    key = f"{tarball.name.split('.tar')[0]}-{st.st_size}-{int(st.st_mtime)}"
    trees = cache / "trees"
    trees.mkdir(parents=True, exist_ok=True)
    final = trees / key
    with FileLock(str(trees / f"{key}.lock")):
        if not final.is_dir():
            free = shutil.disk_usage(trees).free
            if free < 3 << 30:
                raise InfraError(f"only {free >> 20} MiB free in {trees}: unpacking the kernel "
                                 "needs about 1.5 GiB; free some space and rerun")
            with tempfile.TemporaryDirectory(dir=trees, prefix=f".{key}-") as tmp:
                done = subprocess.run(["tar", "-xf", str(tarball), "-C", tmp],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise InfraError(f"could not unpack {tarball}: {done.stderr.strip()[:200]}")
                os.rename(tmp, final)
                os.mkdir(tmp)  # let TemporaryDirectory clean up its (now empty) name
    tops = [p for p in final.iterdir() if (p / "Makefile").is_file()]
    if len(tops) == 1:
        return tops[0]
    if (final / "Makefile").is_file():
        return final
    raise InputError(f"{tarball} does not hold one kernel tree at its top: unpack it yourself "
                     "and point kernel.source at the tree")


def resolve(source: str, cache: Path | None = None) -> KernelTree:
    """Turn the matrix's kernel.source (or --kernel) into a usable, clean tree."""
    cache = cache or cache_root()
    if source in ("debian", f"debian:{DEBIAN_PACKAGE}"):
        return check_tree(unpack(debian_tarball(), cache), f"debian:{DEBIAN_PACKAGE}")
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(f"kernel source {source} does not exist: give a kernel tree, a tarball, "
                         "or `debian`")
    if path.is_file():
        return check_tree(unpack(path, cache), str(path))
    return check_tree(path.resolve(), str(path))
