"""kmatrix's cache on disk: what it holds, and pruning the output trees and seeds nobody used
for a while (`kmatrix cache [--prune DAYS]`). Plain file operations, no Docker.

Last use: every combination rewrites its tree's `.config` (an atomic rename), so the mtime of
`.config` (or of the tree itself, before its first olddefconfig) is when a tree was last used;
a seed's `.kmatrix-seed-done` marker is touched each time a run starts from it. A tree or seed
whose lock is held (a run is using it) is never removed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock, Timeout

PARTS = {  # what each top-level directory holds, and whether kmatrix remakes it on demand
    "trees": "unpacked kernel sources (remade from the Debian package or tarball)",
    "work": "warm output trees, one per tree name (remade from the seed)",
    "seeds": "prepared seed trees: base + common config, make prepare (remade)",
    "ccache": "the shared compiler cache (refilled by the next builds)",
    "resolved": "remembered Kconfig resolutions (resolved again)",
    "kconfig-session": "the resolve step's Kconfig sessions, per tree, image and group (remade)",
    "pristine": "--pristine trees of runs that were interrupted (safe to delete)",
    "resolve": "the resolve step's scratch trees of interrupted runs (safe to delete)",
    "bisect-test-git": "the test suite's git history (remade by the tests)",
    "symbols": "the trees' symbol scans, by Kconfig fingerprint (scanned again)",
    "image-packages": "the builder images' package lists, by image id (listed again)",
    "guest": "the boot guest's /init and busybox, by image and init.c (built again)",
}
SEED_MARKER = ".kmatrix-seed-done"


@dataclass(frozen=True)
class Part:
    name: str
    path: Path
    bytes: int
    what: str


@dataclass(frozen=True)
class Stale:
    """An output tree or seed not used for a while, with the lock that guards it."""

    path: Path
    lock: Path
    last_used: float
    bytes: int


def disk_bytes(path: Path) -> int:
    """Bytes on disk under path (allocated blocks, hard links once)."""
    total, seen = 0, set()
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def usage(root: Path) -> list[Part]:
    return [Part(name, root / name, disk_bytes(root / name), what)
            for name, what in PARTS.items() if (root / name).is_dir()]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def candidates(root: Path) -> Iterator[Stale]:
    """Every output tree (work/<tree+image key>/<name>), seed (seeds/<key>) and Kconfig session
    of the resolve step (kconfig-session/<key>)."""
    for key_dir in sorted((root / "work").glob("*")):
        if not key_dir.is_dir():
            continue
        for tree in sorted(p for p in key_dir.iterdir() if p.is_dir() and
                           not p.name.startswith(".")):
            used = max(_mtime(tree / ".config"), _mtime(tree))
            # each directory of a tree (tree, tree~hash: harness/schedule.py) has its own lock:
            # a run building in it holds it, and so does one copying it to start another
            yield Stale(tree, key_dir / f"{tree.name}.lock", used, 0)
    for seed in sorted(p for p in (root / "seeds").glob("*") if p.is_dir()):
        used = max(_mtime(seed / SEED_MARKER), _mtime(seed / ".config"))
        yield Stale(seed, seed.parent / f"{seed.name}.lock", used, 0)
    for session in sorted(p for p in (root / "kconfig-session").glob("*") if p.is_dir()):
        # the resolve step touches a session's directory each time it uses it
        yield Stale(session, session.parent / f"{session.name}.lock", _mtime(session), 0)


LEFTOVER_AGE_S = 3600.0  # a leftover younger than this may still be in the making


def _newest(path: Path) -> float:
    """The newest mtime of a directory and its immediate children (a run writing into one of
    them keeps the whole directory fresh)."""
    try:
        return max([_mtime(path), *(_mtime(p) for p in path.iterdir())])
    except OSError:
        return 0.0


def leftover_candidates(root: Path) -> Iterator[Stale]:
    """What stopped or killed steps leave behind, with the lock its maker held (or, where none
    guards it, a lock nobody takes: then only its age protects it): half copies of a seed,
    seeds that never finished, --pristine and resolve scratch trees of dead runs, the root
    filesystem of an interrupted image build, a half-unpacked kernel source."""
    for key_dir in sorted(p for p in (root / "work").glob("*") if p.is_dir()):
        for half in sorted(key_dir.glob(".*.copy")):  # made under the lock of its directory
            yield Stale(half, key_dir / f"{half.name[1:-len('.copy')]}.lock", _mtime(half), 0)
    for seed in sorted(p for p in (root / "seeds").glob("*") if p.is_dir()):
        if not (seed / SEED_MARKER).exists():
            yield Stale(seed, seed.parent / f"{seed.name}.lock", _newest(seed), 0)
    for part in ("pristine", "resolve"):
        for run in sorted(p for p in (root / part).glob("*") if p.is_dir()):
            yield Stale(run, root / part / f".{run.name}.prune.lock", _newest(run), 0)
    for rootfs in sorted(root.glob("rootfs-*")):
        yield Stale(rootfs, root / "image.lock", _mtime(rootfs), 0)
    for half in sorted((root / "trees").glob(".*")):
        key = half.name[1:].rsplit("-", 1)[0]  # tempfile's ".<key>-<random>"
        if half.is_dir():
            yield Stale(half, root / "trees" / f"{key}.lock", _mtime(half), 0)


def leftovers(root: Path, now: float | None = None) -> list[Stale]:
    cutoff = (time.time() if now is None else now) - LEFTOVER_AGE_S
    return [replace(s, bytes=disk_bytes(s.path)) for s in leftover_candidates(root)
            if s.last_used < cutoff]


def stale(root: Path, older_than_s: float, now: float | None = None) -> list[Stale]:
    cutoff = (time.time() if now is None else now) - older_than_s
    return [replace(s, bytes=disk_bytes(s.path)) for s in candidates(root) if s.last_used < cutoff]


def prune(items: list[Stale]) -> tuple[list[Stale], list[Stale]]:
    """Remove each item unless its lock is held; (removed, in use)."""
    removed, busy = [], []
    for item in {i.path: i for i in items}.values():  # an old unfinished seed is both kinds
        try:
            with FileLock(str(item.lock), timeout=0):
                remove_tree(item.path)
            removed.append(item)
        except Timeout:
            busy.append(item)
    return removed, busy


SIZE_SUFFIX = ".size"  # beside a tree's lock: its bytes on disk when it was last used


def note_size(tree: Path) -> int:
    """Measure one output tree that a combination just used, and remember its size (a budget
    check then reads small files instead of walking every tree)."""
    size = disk_bytes(tree)
    with contextlib.suppress(OSError):
        (tree.parent / f"{tree.name}{SIZE_SUFFIX}").write_text(str(size))
    return size


def known_size(tree: Path) -> int:
    try:
        return int((tree.parent / f"{tree.name}{SIZE_SUFFIX}").read_text())
    except (OSError, ValueError):
        return note_size(tree)


def over_budget(trees: list[Stale], budget: int) -> list[Stale]:
    """The least recently used trees to remove so that the rest fit in `budget` bytes (the
    most recently used tree is always kept)."""
    total = sum(t.bytes for t in trees)
    drop = []
    for tree in sorted(trees, key=lambda t: (t.last_used, str(t.path)))[:-1]:
        if total <= budget:
            break
        drop.append(tree)
        total -= tree.bytes
    return drop


def keep_under(work_dir: Path, budget: int, just_used: Path | None = None) -> list[Stale]:
    """Finished output trees of `work_dir` pruned, least recently used first, until the trees
    fit in `budget` bytes; a tree in use (its lock held) stays. Returns what was removed."""
    if just_used is not None and just_used.is_dir():
        note_size(just_used)
    trees = [replace(s, bytes=known_size(s.path)) for s in candidates(work_dir.parent.parent)
             if s.path.parent == work_dir]
    removed, _busy = prune(over_budget(trees, budget))
    for item in removed:
        (item.path.parent / f"{item.path.name}{SIZE_SUFFIX}").unlink(missing_ok=True)
    return removed


def touch_seed(seed: Path) -> None:
    """A run starts from this seed: it is in use (see `stale`)."""
    marker = seed / SEED_MARKER
    if marker.exists():
        os.utime(marker)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def mounts_below(path: Path, mounts: str | None = None) -> list[str]:
    """What is mounted at or below `path` (from /proc/mounts), the deepest first."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return []
    base = os.path.realpath(path)
    points = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) > 1:
            point = fields[1].replace("\\040", " ")
            if point == base or point.startswith(base.rstrip("/") + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def remove_tree(path: Path) -> None:
    """Remove a directory kmatrix made, never what is mounted inside it: a debootstrap killed
    before its exit trap leaves /proc and /sys mounted in its root filesystem, and removing
    through them would reach the host's. Those mounts are detached first, and the removal never
    crosses to another filesystem; OSError when something could not be removed."""
    if not path.exists() and not path.is_symlink():
        return
    for point in mounts_below(path):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    done = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"could not remove {path}: {done.stderr.strip()[:200]}")
