"""The newc writer: byte layout the kernel's initramfs unpacker expects, no root needed."""

from __future__ import annotations

import io
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness import cpio


def sample() -> list[cpio.Entry]:
    return [cpio.directory("dev"), cpio.char_device("/dev/console", 5, 1),
            cpio.directory("sbin"), cpio.regular_file("sbin/modprobe", b"#!/bin/sh\nexit 1\n", 0o755),
            cpio.regular_file("init", b"\x7fELF" + bytes(range(7)), 0o755)]


def test_round_trip() -> None:
    entries = sample()
    assert cpio.read_newc(cpio.newc_bytes(entries)) == entries


def test_layout_is_aligned_and_deterministic() -> None:
    blob = cpio.newc_bytes(sample())
    assert blob == cpio.newc_bytes(sample())
    assert len(blob) % 4 == 0
    assert blob.startswith(b"070701")
    assert blob.rstrip(b"\0").endswith(b"TRAILER!!!")
    first = blob[:110]
    assert first[6:14] == b"00000001"  # ino
    assert int(first[14:22], 16) == stat.S_IFDIR | 0o755
    assert first[94:102] == b"00000004"  # namesize of "dev\0"


def test_device_node_fields() -> None:
    console = cpio.read_newc(cpio.newc_bytes(sample()))[1]
    assert console.path == "dev/console"
    assert stat.S_ISCHR(console.mode) and console.rdev == (5, 1) and console.data == b""


def test_write_to_stream() -> None:
    out = io.BytesIO()
    cpio.write_newc(sample(), out)
    assert out.getvalue() == cpio.newc_bytes(sample())


@pytest.mark.parametrize("bad", ["", "/", "a/../b"])
def test_rejects_bad_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        cpio.directory(bad)


def test_parent_must_come_first_and_no_duplicates() -> None:
    with pytest.raises(ValueError, match="must come first"):
        cpio.newc_bytes([cpio.regular_file("sbin/modprobe", b"")])
    with pytest.raises(ValueError, match="listed twice"):
        cpio.newc_bytes([cpio.directory("dev"), cpio.directory("dev")])


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_gnu_cpio_lists_it(tmp_path: Path) -> None:
    archive = tmp_path / "a.cpio"
    archive.write_bytes(cpio.newc_bytes(sample()))
    listing = subprocess.run(["cpio", "-itv", "-F", str(archive)], capture_output=True,
                             text=True, check=True).stdout
    assert "dev/console" in listing and listing.lstrip().startswith("drwxr-xr-x")
