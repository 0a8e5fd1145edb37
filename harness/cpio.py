"""A pure-Python writer (and reader, for tests) of the newc cpio format the kernel unpacks as
an initramfs. Device nodes are plain header fields, so building one needs no root; output is
deterministic (mtime 0, inode numbers in order, uid/gid 0)."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
           "rdevmajor", "rdevminor", "namesize", "check")
_HEADER_LEN = 6 + 8 * len(_FIELDS)


@dataclass(frozen=True)
class Entry:
    """One archive member: a path without a leading slash, a full st_mode, contents, a device."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(_norm(path), stat.S_IFDIR | perm)


def regular_file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(_norm(path), stat.S_IFREG | perm, data)


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(_norm(path), stat.S_IFCHR | perm, rdev=(major, minor))


def _norm(path: str) -> str:
    name = path.strip("/")
    if not name or ".." in name.split("/"):
        raise ValueError(f"bad archive path {path!r}")
    return name


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _member(ino: int, name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> bytes:
    encoded = name.encode() + b"\0"
    values = (ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data), 0, 0,
              rdev[0], rdev[1], len(encoded), 0)
    header = MAGIC + b"".join(b"%08X" % v for v in values)
    return header + encoded + _pad(len(header) + len(encoded)) + data + _pad(len(data))


def newc_bytes(entries: Iterable[Entry]) -> bytes:
    """The archive: parents must come before children (the kernel creates them in order)."""
    parts, seen = [], set()
    for ino, entry in enumerate(entries, start=1):
        parent = entry.path.rpartition("/")[0]
        if parent and parent not in seen:
            raise ValueError(f"{entry.path}: directory {parent} must come first")
        if entry.path in seen:
            raise ValueError(f"{entry.path}: listed twice")
        seen.add(entry.path)
        parts.append(_member(ino, entry.path, entry.mode, entry.data, entry.rdev))
    parts.append(_member(0, TRAILER, 0, b"", (0, 0)))
    return b"".join(parts)


def write_newc(entries: Iterable[Entry], out: BinaryIO) -> None:
    out.write(newc_bytes(entries))


def read_newc(blob: bytes) -> list[Entry]:
    """Parse an archive written by newc_bytes (or by `cpio -H newc`); stops at the trailer."""
    entries: list[Entry] = []
    pos = 0
    while True:
        if blob[pos:pos + 6] != MAGIC:
            raise ValueError(f"not a newc header at offset {pos}")
        fields = dict(zip(_FIELDS, (int(blob[pos + 6 + 8 * i:pos + 14 + 8 * i], 16)
                                    for i in range(len(_FIELDS)))))
        name_end = pos + _HEADER_LEN + fields["namesize"] - 1
        name = blob[pos + _HEADER_LEN:name_end].decode()
        data_at = name_end + 1 + (-(_HEADER_LEN + fields["namesize"]) % 4)
        data = blob[data_at:data_at + fields["filesize"]]
        pos = data_at + fields["filesize"] + (-fields["filesize"] % 4)
        if name == TRAILER:
            return entries
        entries.append(Entry(name, fields["mode"], data, (fields["rdevmajor"], fields["rdevminor"])))
