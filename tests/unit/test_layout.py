"""The layout stays what the README says: every module in the README's table, no module over
about 500 lines without the reason at its top, no architecture named outside harness/arch/."""

from __future__ import annotations

import re

from testhelpers import REPO

HARNESS = REPO / "harness"
LONG = 500


def modules() -> list[str]:
    found = [p.relative_to(REPO).as_posix() for p in HARNESS.rglob("*.py")
             if p.name not in ("__init__.py", "__main__.py") or p.parent.name == "arch"]
    found += [p.relative_to(REPO).as_posix() for p in HARNESS.rglob("*.c")
              if p.parent.name != "guest"]
    return sorted(found)


def test_the_readme_layout_table_lists_every_module() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Layout"):]
    table = table[:table.index("\n## ", 1)]
    listed = set(re.findall(r"^\| `(harness/[^`]+)` \|", table, re.MULTILINE))
    missing = [m for m in modules() if m not in listed]
    assert not missing, f"add these modules to the README's layout table: {missing}"
    gone = sorted(m for m in listed if not (REPO / m).exists())
    assert not gone, f"the README's layout table lists modules that do not exist: {gone}"


def test_no_long_module_without_its_reason() -> None:
    long = []
    for path in HARNESS.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > LONG and "Why this module is long:" not in text[:3000]:
            long.append(f"{path.relative_to(REPO)} ({text.count(chr(10))} lines)")
    assert not long, f"split these, or say at the top why they are long: {long}"


def test_no_architecture_named_outside_the_architecture_data() -> None:
    named = []
    for path in HARNESS.rglob("*.py"):
        # LKDTM's crash point table quotes the kernel's notes on which architectures a crash
        # point needs (tools/testing/selftests/lkdtm/tests.txt)
        if path.parent.name == "arch" or path.name == "lkdtm.py":
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b(x86(_64)?|arm64|aarch64)\b", line) and \
                    not line.lstrip().startswith("#"):
                named.append(f"{path.relative_to(REPO)}:{no}: {line.strip()}")
    assert not named, "architecture-specific values belong in harness/arch/: " + "; ".join(named)
