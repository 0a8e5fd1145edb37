"""Issue 10 (corrupted trees): a damaged output tree is an infrastructure problem, and the tree
is emptied for a clean build. Before the fix a built-in.a cut short read as an archive with
fewer members, so the combination got link-mismatch, a kernel verdict, from a damaged disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pipeline import thin_archive

from harness import kbuild, linkcheck, pipeline, treeguard
from harness.results import Record
from harness.verdict import Verdict

MEMBERS = ["kernel/module/main.o", "kernel/module/kmod.o", "kernel/module/dups.o"]


def test_a_whole_archive_lists_every_member(tmp_path: Path) -> None:
    thin_archive(tmp_path / "built-in.a", MEMBERS)
    assert linkcheck.archive_members(tmp_path / "built-in.a") == MEMBERS


@pytest.mark.parametrize("cut", [10, 70, -30])
def test_an_archive_cut_short_is_damage_not_a_shorter_list(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "built-in.a"
    thin_archive(path, MEMBERS)
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ValueError, match="damaged"):
        linkcheck.archive_members(path)


def test_a_damaged_archive_is_infra_error_and_condemns_the_tree(tmp_path: Path) -> None:
    import textwrap

    from test_pipeline import MATRIX, MINI_TREE, SEED_RULES

    from harness import makefile
    from harness.matrix import load_matrix

    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(MATRIX % MINI_TREE).lstrip() +
                    makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    matrix = load_matrix(path)
    out = tmp_path / "tree"
    thin_archive(out / "kernel/module/built-in.a", ["main.o"])
    (out / "kernel/module/built-in.a").write_bytes(
        (out / "kernel/module/built-in.a").read_bytes()[:-20])
    record = Record("c", "r", "m", {}, {})
    outcome = pipeline.link_stage(matrix, out, {"CONFIG_MODULES": "y"}, record)
    assert outcome.verdict is Verdict.INFRA_ERROR and "damaged" in outcome.reasons[0]
    assert treeguard.dirty_since(out) == 0  # the next claim empties it
    assert treeguard.repair(out, lambda _: None) >= 1
    assert not (out / "kernel/module/built-in.a").exists()


@pytest.mark.parametrize("line", [
    "ld: kernel/module/main.o: file truncated",
    "ar: kernel/built-in.a: malformed archive",
    "ld: kernel/module/kmod.o: file format not recognized; treating as linker script"])
def test_a_build_failing_on_a_damaged_object_is_damage(line: str) -> None:
    assert "damaged" in (kbuild.damaged_tree(["  LD      vmlinux.o", line]) or "")


def test_a_compile_error_is_not_damage() -> None:
    assert kbuild.damaged_tree(["kernel/module/dups.c:3: error: unknown type name 'foo'"]) is None


def test_a_condemned_tree_is_made_again_from_the_seed(tmp_path: Path) -> None:
    from test_treeguard import settings_for

    seed = tmp_path / "cache" / "seeds" / "abc"
    seed.mkdir(parents=True)
    (seed / ".kmatrix-seed-done").write_text("x")
    (seed / "prepared.o").write_text("from the seed")
    settings = settings_for(tmp_path, str(seed))
    tree = settings.work_dir() / "lane0"
    tree.mkdir(parents=True)
    (tree / "kernel.o").write_text("cut sh")
    treeguard.condemn(tree)
    said: list[str] = []
    assert pipeline.output_dir(settings, "lane0", said.append) == tree
    assert sorted(p.name for p in tree.iterdir()) == ["prepared.o"]
    assert "found damaged" in said[0]


@pytest.mark.parametrize("exit_code", [143, 137, 130])
def test_a_build_that_died_of_a_signal_is_infra_not_build_error(tmp_path: Path,
                                                                 exit_code: int) -> None:
    """Found by the fault suite (engine restarted during a build): the log stream died with
    the engine before make's `Terminated` line arrived, and the combination was build-error.
    make dying of a signal (exit 128 + N) is never the kernel's doing."""
    import textwrap

    from test_pipeline import MATRIX, MINI_TREE, SEED_RULES, FakeMake, run

    from harness import makefile
    from harness.container import Step, StepResult
    from harness.matrix import load_matrix

    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(MATRIX % MINI_TREE).lstrip() +
                    makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    matrix = load_matrix(path)

    class Stopped(FakeMake):
        def act(self, step: Step, log) -> StepResult:  # type: ignore[no-untyped-def]
            if step.name == "build":
                log.write("  CC      kernel/module/main.o\n")
                return StepResult(step.name, step.argv, exit_code, 3.0, False, ["CC"], "make")
            return super().act(step, log)

    record = run(tmp_path, matrix, "dups-y", Stopped())
    assert record.verdict is Verdict.INFRA_ERROR, record.reasons
    assert f"exit {exit_code}" in record.reasons[0] and "stopped from outside" in record.reasons[0]
