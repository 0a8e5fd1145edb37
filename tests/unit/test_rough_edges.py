"""Issue 9's rough edges, one test (or a few) each: each failed before its fix."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


# --- setup.sh installs what the tests use --------------------------------------------------------

def test_setup_installs_gnu_cpio() -> None:
    """tests/unit/test_cpio.py checks the initramfs with GNU cpio: a skip for a missing tool is
    a missing install step, so setup.sh installs it."""
    text = (REPO / "setup.sh").read_text()
    found = re.search(r"^debs=\((.*?)\)", text, re.M | re.S)
    assert found, "setup.sh has no debs=(...) list"
    assert "cpio" in found.group(1).split()
