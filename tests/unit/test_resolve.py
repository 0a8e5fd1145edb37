"""The resolve step's bookkeeping: remembered resolutions are keyed by the tree's Kconfig files,
and duplicates point at the first combination with the same resolved config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from testhelpers import MINI_TREE

from harness import resolve
from harness.kconfig import parse_config, render_config


def test_fingerprint_changes_when_a_kconfig_file_changes(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(MINI_TREE, tree)
    before = resolve.kconfig_fingerprint(tree)
    assert resolve.kconfig_fingerprint(tree) == before  # stable
    kconfig = next(tree.rglob("Kconfig*"))
    kconfig.write_text(kconfig.read_text() + "\n# edited\n")
    os.utime(kconfig, ns=(1, 1))
    assert resolve.kconfig_fingerprint(tree) != before


def test_saved_resolutions_round_trip_with_duplicates(tmp_path: Path) -> None:
    found = {"a": resolve.Resolution("a", "h1"),
             "b": resolve.Resolution("b", "h1", duplicate_of="a"),
             "c": resolve.Resolution("c", "h2", holds=False, unsatisfiable="needs MIPS")}
    resolve.save(tmp_path, found)
    loaded = resolve.load(tmp_path)
    assert loaded == found
    assert loaded["b"].tree_group == "a" and loaded["a"].tree_group == "a"
    lines = resolve.report_lines(loaded)
    assert "b: resolves to the same .config as a: built once, in one tree" in lines
    assert "c: unsatisfiable, not built: needs MIPS" in lines


def test_an_unsatisfiable_combination_is_never_the_one_a_duplicate_follows() -> None:
    from harness.resolve import Resolution, mark_duplicates

    never = Resolution("cover-14", "h1", holds=False, unsatisfiable="X=n needs ...")
    same = Resolution("cover-15", "h1")
    again = Resolution("cover-16", "h1")
    mark_duplicates([never, same, again])
    assert (never.duplicate_of, same.duplicate_of, again.duplicate_of) == ("", "", "cover-15")


MATRIX_YAML = """\
kernel: {source: debian, arch: x86_64}
base: tinyconfig
axes:
  CONFIG_A: [y, n]
include:
  - id: needs-b
    config: {CONFIG_C: y}
  - id: lost
    config: {CONFIG_D: y}
"""


def test_one_session_resolves_what_holds_and_the_rest_is_explained_one_by_one(
        tmp_path: Path, monkeypatch) -> None:
    """Every request of a Kconfig group goes to one session (one call); those that hold are
    resolved from it, those that do not (C=y is dropped: it needs B) or that the session could
    not resolve (None) go to resolve_one, as before; each is remembered, and a rerun asks
    Kconfig nothing."""
    from harness import matrix as matrixmod
    from harness.kconfig import SymbolTable
    from harness.settings import RunSettings

    (tmp_path / "m.yaml").write_text(MATRIX_YAML)
    matrix = matrixmod.load_matrix(tmp_path / "m.yaml")
    symbols = SymbolTable({f"CONFIG_{s}": "bool" for s in "ABCD"})
    tree = tmp_path / "tree"
    shutil.copytree(MINI_TREE, tree)
    settings = RunSettings(run_id="r", matrix_path=str(tmp_path / "m.yaml"), run_dir=str(tmp_path),
                           cache=str(tmp_path / "cache"), tree=str(tree), kernel={}, image="img")
    sessions: list[list[dict[str, str]]] = []
    one_by_one: list[str] = []

    def each(settings, matrix, runner, group, base, configs, fingerprint, scratch, log):
        sessions.append(configs)
        return [None if c.get("CONFIG_D") == "y" else
                render_config({**base, **c, "CONFIG_C": "n"}) for c in configs]

    def resolve_one(session, base, requested, combo):
        one_by_one.append(combo.id)
        return resolve.Resolution(combo.id, f"h-{combo.id}", holds=False, why=["why: C needs B"])

    monkeypatch.setattr(resolve, "each_in_group", each)
    monkeypatch.setattr(resolve, "resolve_one", resolve_one)
    with open(tmp_path / "log", "w") as log:
        found = resolve.resolve_all(settings, matrix, symbols, object(), {"CONFIG_X": "y"},
                                    tmp_path / "scratch", log)
        assert len(sessions) == 1 and len(sessions[0]) == 4
        assert sorted(one_by_one) == ["lost", "needs-b"]
        assert found["a-y"].holds and found["a-y"].delta == {"CONFIG_A": "y"}
        assert found["a-n"].config_hash != found["a-y"].config_hash
        assert not found["needs-b"].holds and found["needs-b"].why == ["why: C needs B"]
        # what holds keeps make olddefconfig's own .config text for its build tree
        kept = resolve.resolved_config_text(tmp_path, found["a-y"])
        assert kept is not None and parse_config(kept)["CONFIG_A"] == "y"
        assert resolve.resolved_config_text(tmp_path, found["needs-b"]) is None
        assert sorted(p.name for p in (tmp_path / resolve.CONFIGS_DIR).iterdir()) == \
            ["a-n.config", "a-y.config"]
        (tmp_path / resolve.CONFIGS_DIR / "a-y.config").write_text(render_config({"CONFIG_A": "n"}))
        assert resolve.resolved_config_text(tmp_path, found["a-y"]) is None  # not its answer
        sessions.clear(), one_by_one.clear()
        again = resolve.resolve_all(settings, matrix, symbols, object(), {"CONFIG_X": "y"},
                                    tmp_path / "scratch", log)
    assert sessions == [] and one_by_one == []
    # a rerun that asks Kconfig nothing still has every text (remembered beside the answer)
    assert resolve.resolved_config_text(tmp_path, again["a-y"]) is not None
    assert {k: (v.config_hash, v.holds) for k, v in again.items()} == \
        {k: (v.config_hash, v.holds) for k, v in found.items()}


def test_a_seed_not_made_yet_is_resolved_in_its_groups_parse_and_remembered(
        tmp_path: Path, monkeypatch) -> None:
    """A run makes other seeds only up to their base config (seeds.ensure_base); the trees
    are still planned from what the seed will hold: its base + common config goes into its
    group's one Kconfig parse, as one more config, and is remembered like a combination's."""
    from harness import matrix as matrixmod
    from harness import variants
    from harness.kconfig import SymbolTable
    from harness.settings import RunSettings

    (tmp_path / "m.yaml").write_text(MATRIX_YAML.replace("base: tinyconfig",
                                                          "base: tinyconfig\nconfig: {CONFIG_X: y}"))
    matrix = matrixmod.load_matrix(tmp_path / "m.yaml")
    symbols = SymbolTable({f"CONFIG_{s}": "bool" for s in "ABCDX"})
    tree = tmp_path / "tree"
    shutil.copytree(MINI_TREE, tree)
    seed = tmp_path / "cache" / "seeds" / "s1"
    seed.mkdir(parents=True)  # its base config only: no done marker
    settings = RunSettings(run_id="r", matrix_path=str(tmp_path / "m.yaml"), run_dir=str(tmp_path),
                           cache=str(tmp_path / "cache"), tree=str(tree), kernel={}, image="img",
                           seeds={variants.DEFAULT: str(seed)}, seed=str(seed))
    batches: list[list[dict[str, str]]] = []
    planned: list[dict[str, str]] = []

    def each(settings, matrix, runner, group, base, configs, fingerprint, scratch, log):
        batches.append(configs)
        return [render_config({**base, **c, "CONFIG_Y": "y"}) for c in configs]

    real_place = resolve.place_in_trees

    def place(settings, ordered, boots, seed, prefix=""):
        planned.append(seed)
        real_place(settings, ordered, boots, seed, prefix)

    monkeypatch.setattr(resolve, "each_in_group", each)
    monkeypatch.setattr(resolve, "resolve_one", lambda *a: resolve.Resolution("x", holds=False))
    monkeypatch.setattr(resolve, "place_in_trees", place)
    with open(tmp_path / "log", "w") as log:
        resolve.resolve_all(settings, matrix, symbols, object(), {"CONFIG_B": "n"},
                            tmp_path / "scratch", log)
        assert len(batches) == 1 and batches[0][-1] == {"CONFIG_X": "y"}
        assert len(batches[0]) == len(matrix.combinations) + 1
        assert planned == [{"CONFIG_X": "y", "CONFIG_Y": "y"}]
        # remembered: a rerun plans the same trees and asks Kconfig nothing
        batches.clear(), planned.clear()
        resolve.resolve_all(settings, matrix, symbols, object(), {"CONFIG_B": "n"},
                            tmp_path / "scratch", log)
        assert batches == [] and planned == [{"CONFIG_X": "y", "CONFIG_Y": "y"}]
        # a made seed plans from its own .config, and is not asked
        (seed / ".kmatrix-seed-done").write_text("now\n")
        (seed / ".config").write_text(render_config({"CONFIG_B": "n", "CONFIG_X": "y"}))
        planned.clear()
        resolve.resolve_all(settings, matrix, symbols, object(), {"CONFIG_B": "n"},
                            tmp_path / "scratch", log)
        assert batches == [] and planned == [{"CONFIG_X": "y"}]


def test_a_session_prepared_beside_the_seeds_is_the_one_the_resolve_step_uses(
        tmp_path: Path) -> None:
    """prepare_session (run side by side with the seeds) prepares the very session directory
    and lock each_in_group takes for that group, with no base config; when it fails it only
    says so (the resolve step prepares it then, or resolves one make at a time)."""
    from testhelpers import RecordingRunner

    from harness import matrix as matrixmod
    from harness.container import StepResult
    from harness.settings import RunSettings

    class Failing(RecordingRunner):
        def act(self, step, log):
            return StepResult(step.name, step.argv, 2, 0.1, False, ["no compiler"], "")

    (tmp_path / "m.yaml").write_text(MATRIX_YAML)
    matrix = matrixmod.load_matrix(tmp_path / "m.yaml")
    settings = RunSettings(run_id="r", matrix_path=str(tmp_path / "m.yaml"), run_dir=str(tmp_path),
                           cache=str(tmp_path / "cache"), tree=str(MINI_TREE), kernel={},
                           image="img")
    runner = Failing()
    with open(tmp_path / "log", "w") as log:
        resolve.prepare_session(settings, matrix, runner, "fp", None, log)
        session, lock = resolve.group_session(settings, matrix, runner, matrix.variant, "fp", log)
    assert [s.name for s in runner.steps] == ["kconfig:olddefconfig"]
    assert runner.steps[0].workdir == str(session.out) and lock.name == f"{session.out.name}.lock"
    assert render_config({}) == (session.out / ".config").read_text()  # no base config needed
    text = (tmp_path / "log").read_text()
    assert f"the Kconfig session {session.out} could not be prepared ahead" in text
