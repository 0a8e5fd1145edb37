"""Issue 10, item 5: a tree (or seed) a stopped step left half-written is never reused as it is.
Before the fix, objects written halfway by a step killed at its timeout had fresh timestamps
and Kbuild took them as up to date in the next build of the tree and in every seed copy."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

import pytest

from harness import pipeline, seeds, treeguard
from harness.container import Step, StepResult
from harness.settings import RunSettings

OLD_NS = time.time_ns() - 3600 * 10**9


class Writes:
    """A runner whose step writes `files` into `tree`, then ends as `exit_code`/`timed_out`
    (or raises `error`)."""

    def __init__(self, tree: Path, files: list[str], exit_code: int | None = 0,
                 timed_out: bool = False, error: BaseException | None = None) -> None:
        self.tree, self.files, self.exit_code, self.timed_out = tree, files, exit_code, timed_out
        self.error = error

    def run(self, step: Step, log: IO[str]) -> StepResult:
        for name in self.files:
            (self.tree / name).parent.mkdir(parents=True, exist_ok=True)
            (self.tree / name).write_text("half an object")
        if self.error is not None:
            raise self.error
        return StepResult(step.name, step.argv, self.exit_code, 1.0, self.timed_out)

    def reproducer(self, step: Step) -> str:
        return "make"

    def image_id(self) -> str:
        return "sha256:fake"


def old_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for name in ("kernel/module/main.o", "kernel/module/.main.o.cmd", ".config"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("from the last good build")
        os.utime(tree / name, ns=(OLD_NS, OLD_NS))
    return tree


STEP = Step("build", ("make", "kernel/module/"), ())


@pytest.mark.parametrize(("exit_code", "timed_out", "dirty"), [
    (0, False, False), (2, False, False),  # make ended on its own: Kbuild cleaned up itself
    (None, True, True), (137, False, True), (143, False, True)])  # killed: half objects
def test_only_a_step_that_ended_on_its_own_leaves_the_tree_clean(
        tmp_path: Path, exit_code: int | None, timed_out: bool, dirty: bool) -> None:
    tree = old_tree(tmp_path)
    treeguard.run_guarded(Writes(tree, ["kernel/module/dups.o"], exit_code, timed_out), STEP,
                          open(os.devnull, "w"), tree)
    assert (treeguard.dirty_since(tree) is not None) == dirty


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("engine lost")])
def test_a_step_that_raised_leaves_the_tree_dirty(tmp_path: Path, error: BaseException) -> None:
    tree = old_tree(tmp_path)
    with pytest.raises(type(error)):
        treeguard.run_guarded(Writes(tree, ["x.o"], error=error), STEP, open(os.devnull, "w"),
                              tree)
    assert treeguard.dirty_since(tree) is not None


def test_repair_removes_exactly_what_the_stopped_step_wrote(tmp_path: Path) -> None:
    tree = old_tree(tmp_path)
    outside = tmp_path / "source"
    outside.mkdir()
    (outside / "fresh.c").write_text("never touched by a repair")
    (tree / "source").symlink_to(outside)  # Kbuild's O= tree links to the source tree
    os.utime(tree / "source", ns=(OLD_NS, OLD_NS), follow_symlinks=False)
    treeguard.run_guarded(Writes(tree, ["kernel/module/dups.o", "kernel/module/.dups.o.cmd"],
                                 None, True), STEP, open(os.devnull, "w"), tree)
    said: list[str] = []
    assert treeguard.repair(tree, said.append) == 2
    assert not (tree / "kernel/module/dups.o").exists()
    assert (tree / "kernel/module/main.o").read_text() == "from the last good build"
    assert (tree / ".config").exists() and (tree / "source").is_symlink()
    assert (outside / "fresh.c").exists()
    assert treeguard.dirty_since(tree) is None and "removed the 2 file(s)" in said[0]
    assert treeguard.repair(tree, said.append) == 0 and len(said) == 1  # clean: untouched


def settings_for(tmp_path: Path, seed: str = "") -> RunSettings:
    return RunSettings(run_id="r", matrix_path="m", run_dir=str(tmp_path / "run"),
                       cache=str(tmp_path / "cache"), tree="/src", kernel={}, image="img",
                       seed=seed)


def test_a_dirty_tree_is_repaired_when_a_combination_claims_it(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    tree = settings.work_dir() / "lane0"
    tree.mkdir(parents=True)
    (tree / "dups.o").write_text("half")
    (tree / treeguard.MARK).write_text(f"{OLD_NS}\n")
    said: list[str] = []
    assert pipeline.output_dir(settings, "lane0", said.append) == tree
    assert not (tree / "dups.o").exists() and said


def test_a_seed_pruned_before_its_copy_gives_an_empty_tree_not_a_half_copy(
        tmp_path: Path) -> None:
    seed = tmp_path / "cache" / "seeds" / "abc"
    seed.mkdir(parents=True)  # no done marker: pruned (or never finished)
    settings = settings_for(tmp_path, str(seed))
    said: list[str] = []
    out = pipeline.output_dir(settings, "lane0", said.append)
    assert out.is_dir() and list(out.iterdir()) == []
    assert "is gone" in said[0]


def test_a_seed_copy_holds_the_seed_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    seed = tmp_path / "cache" / "seeds" / "abc"
    seed.mkdir(parents=True)
    (seed / ".kmatrix-seed-done").write_text("x")
    (seed / "prepared.o").write_text("o")
    held: list[str] = []
    real = pipeline.locks.held

    def spy(lock: Path, what: str, say: object, **kw: object):
        held.append(lock.name)
        return real(lock, what, say, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline.locks, "held", spy)
    out = pipeline.output_dir(settings_for(tmp_path, str(seed)), "lane0", lambda _: None)
    assert held == ["abc.lock"]
    assert (out / "prepared.o").exists() and not (out / ".kmatrix-seed-done").exists()


def test_a_seed_whose_warm_up_was_killed_is_repaired_before_it_is_marked_done(
        tmp_path: Path) -> None:
    """Before the fix the seed was marked done with the killed warm-up's half objects in it,
    and every tree copied from it inherited them."""
    import textwrap

    from test_pipeline import MATRIX, MINI_TREE, SEED_RULES, SYMBOLS, FakeMake
    from test_pipeline import settings_for as pipeline_settings

    from harness import makefile
    from harness.matrix import load_matrix

    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(MATRIX % MINI_TREE).lstrip() +
                    makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    matrix = load_matrix(path)
    settings = pipeline_settings(tmp_path, matrix, pristine=False)

    def half_object(step: Step) -> None:
        if step.name == "prepare":
            time.sleep(0.2)  # a container start, at least, lies between two steps
        if step.name == "warm-targets":
            from harness.container import host_workdir
            (Path(host_workdir(step)) / "kernel" / "module").mkdir(parents=True, exist_ok=True)
            (Path(host_workdir(step)) / "kernel" / "module" / "main.o").write_text("half")

    with open(tmp_path / "seed.log", "w") as log:
        seed = seeds.ensure_seed(settings, matrix, SYMBOLS,
                                    FakeMake(timeout="warm-targets", on_step=half_object), log, 2)
    assert seed is not None and (seed / ".kmatrix-seed-done").exists()
    assert not (seed / "kernel" / "module" / "main.o").exists()
    assert treeguard.dirty_since(seed) is None
    assert "removed the 1 file(s)" in (tmp_path / "seed.log").read_text()


def elf(path: Path, size: int, shoff: int = 512, shnum: int = 8, cls64: bool = True) -> Path:
    """A little-endian ELF file of `size` bytes whose section headers sit at `shoff`."""
    head = bytearray(64)
    head[:4] = b"\x7fELF"
    head[4], head[5] = (2 if cls64 else 1), 1
    if cls64:
        head[0x28:0x30] = shoff.to_bytes(8, "little")
        head[0x3A:0x3C] = (64).to_bytes(2, "little")
        head[0x3C:0x3E] = shnum.to_bytes(2, "little")
    else:
        head[0x20:0x24] = shoff.to_bytes(4, "little")
        head[0x2E:0x30] = (40).to_bytes(2, "little")
        head[0x30:0x32] = shnum.to_bytes(2, "little")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(head) + bytes(max(0, size - 64)))
    return path


def test_whole_objects_archives_and_tools_are_not_damage(tmp_path: Path) -> None:
    elf(tmp_path / "kernel/module/main.o", 512 + 8 * 64)
    elf(tmp_path / "arch/x86/boot/setup.o", 400 + 5 * 40, shoff=400, shnum=5, cls64=False)
    elf(tmp_path / "scripts/basic/fixdep", 512 + 8 * 64).chmod(0o755)
    (tmp_path / "kernel/module/built-in.a").write_bytes(b"!<thin>\n")
    (tmp_path / "kernel/module/main.c").write_text("not a product")
    (tmp_path / "scripts/setlocalversion").write_text("#!/bin/sh\n")
    (tmp_path / "scripts/setlocalversion").chmod(0o755)
    assert treeguard.damage(tmp_path) is None


@pytest.mark.parametrize(("name", "make", "what"), [
    ("kernel/module/main.o", lambda p: elf(p, 700), "cut short at byte 700"),
    ("kernel/module/main.o", lambda p: p.write_bytes(b""), "empty"),
    ("kernel/module/main.o", lambda p: p.write_text("half an object"), "not an ELF object"),
    ("kernel/module/main.o", lambda p: p.write_bytes(b"\x7fELF\x02\x01"), "ELF header"),
    ("scripts/basic/fixdep", lambda p: elf(p, 100).chmod(0o755), "cut short at byte 100"),
    ("kernel/module/built-in.a", lambda p: p.write_bytes(b"!<arch>\nmain.o/  0  "),
     "not a whole ar archive")])
def test_a_cut_short_product_is_named(tmp_path: Path, name: str, make, what: str) -> None:
    elf(tmp_path / "init/main.o", 1024)
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    make(tmp_path / name)
    found = treeguard.damage(tmp_path)
    assert found is not None and found.startswith(name + ": ") and what in found, found


def test_a_damaged_seed_is_made_again_never_copied(tmp_path: Path) -> None:
    """A seed marked done whose object was cut short afterwards (a full disk, a crash, a hand):
    before the fix every new tree was copied from it and failed on the same damaged file."""
    import textwrap

    from test_pipeline import MATRIX, MINI_TREE, SEED_RULES, SYMBOLS, FakeMake
    from test_pipeline import settings_for as pipeline_settings

    from harness import makefile
    from harness.matrix import load_matrix

    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(MATRIX % MINI_TREE).lstrip() +
                    makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    matrix = load_matrix(path)
    settings = pipeline_settings(tmp_path, matrix, pristine=False)
    with open(tmp_path / "seed.log", "w") as log:
        seed = seeds.ensure_seed(settings, matrix, SYMBOLS, FakeMake(), log, 2)
        assert seed is not None
        elf(seed / "kernel/module/main.o", 1024)
        made = (seed / ".kmatrix-seed-done").read_text()
        assert seeds.ensure_seed(settings, matrix, SYMBOLS, FakeMake(), log, 2) == seed
        assert (seed / ".kmatrix-seed-done").read_text() == made  # whole: taken as it is
        elf(seed / "kernel/module/main.o", 600)  # cut short
        time.sleep(0.01)
        assert seeds.ensure_seed(settings, matrix, SYMBOLS, FakeMake(), log, 2) == seed
    assert not (seed / "kernel/module/main.o").exists()  # the seed was made again from empty
    assert "is damaged (kernel/module/main.o: cut short at byte 600" in \
        (tmp_path / "seed.log").read_text()
