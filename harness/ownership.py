"""Which user a build or boot step runs as, and handing its writable directories to that user.

A step runs as the invoking user. When kmatrix itself runs as root (CI machines, containers),
a step never does: it runs as one fixed unprivileged uid, ``BUILD_UID``, so a hostile tree's
Makefile that escapes the read-only root filesystem still cannot write as root into a mount.
The directories a step may write (its output tree, the compiler cache, a boot's work directory)
are made kmatrix's before the step starts, handed over to that uid entry by entry: kmatrix
itself (root) writes files into them between steps (``.config``, marks), and a tree made by an
older kmatrix that built as root is handed over the first time it is used. Symbolic links are
never followed (``lchown``), and nothing outside the step's writable mounts is touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BUILD_UID = 65532  # unprivileged, no name on a Debian host; the distroless "nonroot" id


@dataclass(frozen=True)
class Ids:
    uid: int
    gid: int

    @property
    def spec(self) -> str:
        """As `docker run --user` takes it."""
        return f"{self.uid}:{self.gid}"


def step_ids(uid: int | None = None, gid: int | None = None) -> Ids:
    """The uid:gid steps run as: the caller's own, or BUILD_UID when the caller is root."""
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    if uid == 0:
        return Ids(BUILD_UID, BUILD_UID)
    return Ids(uid, gid)


def hand_over(path: Path, ids: Ids,
              chown: Callable[[str, int, int], None] = os.lchown) -> int:
    """Make every entry under `path` (itself included) owned by `ids`, without following a
    symbolic link; return how many entries changed. Nothing happens unless we are root and the
    step runs as someone else."""
    if os.getuid() != 0 or ids.uid == 0:
        return 0
    if path.resolve() == Path(path.anchor) or not path.is_dir():
        return 0  # never the root directory; a file mount is the step's to read
    changed = 0
    stack = [str(path)]
    top = True
    while stack:
        here = stack.pop()
        if top:
            st = os.lstat(here)
            if st.st_uid != ids.uid or st.st_gid != ids.gid:
                chown(here, ids.uid, ids.gid)
                changed += 1
            top = False
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue  # gone under us, or not a directory any more: nothing to hand over
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid != ids.uid or st.st_gid != ids.gid:
                chown(entry.path, ids.uid, ids.gid)
                changed += 1
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return changed
