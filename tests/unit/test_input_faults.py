"""Bad input is one line and exit 2, never a traceback, an exhausted machine or a silent pass
(issue 10, items 6 and 7): link checks that would check nothing, hostile YAML, hostile expect
conditions, hostile ids, values and directories."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from harness import results
from harness.matrix import load_matrix
from harness.pipeline import link_stage
from harness.verdict import EXIT_BAD_INPUT, InputError, Verdict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "matrix.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_matrix(path)
    assert info.value.exit_status == EXIT_BAD_INPUT
    assert "\n" not in info.value.message
    return info.value.message


ONE = """
    config: {CONFIG_MODULES: y}
    include:
      - id: one
        config: {CONFIG_MODULE_UNLOAD: y}
    """


# --- a link check that checks nothing ---------------------------------------------------------

def test_an_expect_directory_no_target_builds_is_bad_input(tmp_path: Path) -> None:
    message = error(tmp_path, ONE + """
    build: {targets: [kernel/module/]}
    expect:
      lib/:
        string.o: y
    """)
    assert "expect lib/: no build target builds it" in message
    assert message.endswith("add lib/ to build.targets") and "matrix.yaml:8:" in message


@pytest.mark.parametrize("targets", ["[kernel/]", "[kernel/module/]", "[vmlinux]", "[bzImage]"])
def test_a_target_that_builds_the_directory_covers_it(tmp_path: Path, targets: str) -> None:
    m = load_matrix(write(tmp_path, ONE + f"""
    build: {{targets: {targets}}}
    expect:
      kernel/module/:
        main.o: y
    """))
    assert list(m.expect) == ["kernel/module/"]


def test_a_link_check_with_nothing_to_check_is_never_a_pass(tmp_path: Path) -> None:
    m = load_matrix(write(tmp_path, ONE))
    m.expect = {"lib/": {"string.o": "y"}}  # as if the loader had let it through
    m.build = dataclasses.replace(m.build, targets=("kernel/module/",))
    record = results.Record("one", "r", "m", {}, {})
    outcome = link_stage(m, tmp_path / "out", {}, record)
    assert outcome.verdict is Verdict.INFRA_ERROR
    assert "checked nothing" in outcome.reasons[0]
