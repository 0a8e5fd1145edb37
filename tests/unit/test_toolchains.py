"""Toolchains as data and the arch/toolchain matrix values: the records' make variables, the
image's package list, axis expansion and ids, exclude and include entries, the per-combination
view, and the keys that keep one toolchain's builds from another's (ccache, seeds, trees)."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from test_pipeline import SEED_RULES, SYMBOLS, FakeMake, settings_for
from testhelpers import MINI_TREE

from harness import arch, image, makefile, pipeline, toolchains, variants
from harness.kbuild import Kbuild
from harness.matrix import Combination, load_matrix
from harness.pipeline import run_combination
from harness.settings import Job
from harness.verdict import InputError

REPO = Path(__file__).resolve().parents[2]
HOST = arch.default()
CROSS = replace(HOST, name="crossarch", cross_compile="aarch64-linux-gnu-")


def test_every_toolchain_has_a_record_with_tuxmakes_name() -> None:
    assert set(toolchains.TOOLCHAINS) == {"gcc-12", "gcc-11", "clang-16"}
    assert toolchains.default().name == "gcc-12"
    for name, record in toolchains.TOOLCHAINS.items():
        assert name == f"{record.family}-{record.version}"


def test_unknown_toolchain_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(InputError) as info:
        toolchains.get("icc-1")
    assert info.value.message == ("toolchain 'icc-1' is not supported: use one of clang-16, "
                                  "gcc-11, gcc-12")


@pytest.mark.parametrize(("name", "ccache", "expected"), [
    ("gcc-12", False, ()),  # the default gcc: make lines as before toolchains were data
    ("gcc-12", True, ("CC=ccache gcc",)),
    ("gcc-11", False, ("CC=gcc-11", "HOSTCC=gcc-11")),
    ("gcc-11", True, ("CC=ccache gcc-11", "HOSTCC=gcc-11")),
    ("clang-16", False, ("LLVM=-16",)),
    ("clang-16", True, ("LLVM=-16", "CC=ccache clang-16")),
])
def test_make_variables_on_the_host_architecture(name: str, ccache: bool,
                                                 expected: tuple[str, ...]) -> None:
    assert toolchains.get(name).make_vars(HOST, ccache) == expected


def test_gcc_cross_compiles_with_the_architectures_prefix_and_clang_without() -> None:
    assert toolchains.get("gcc-12").make_vars(CROSS, True) == (
        "CROSS_COMPILE=aarch64-linux-gnu-", "CC=ccache aarch64-linux-gnu-gcc")
    assert toolchains.get("gcc-11").make_vars(CROSS, False) == (
        "CROSS_COMPILE=aarch64-linux-gnu-", "CC=aarch64-linux-gnu-gcc-11", "HOSTCC=gcc-11")
    # scripts/Makefile.clang derives --target from SRCARCH: no CROSS_COMPILE
    assert toolchains.get("clang-16").make_vars(CROSS, False) == ("LLVM=-16",)


def test_kbuild_puts_the_toolchain_on_makes_command_line(tmp_path: Path) -> None:
    kb = Kbuild(MINI_TREE, HOST, 2, ccache_dir=tmp_path / "cc", fixed_out=True,
                toolchain=toolchains.get("clang-16"))
    argv = kb.make_argv(tmp_path / "out", "kernel/module/")
    assert argv[-3:] == ("LLVM=-16", "CC=ccache clang-16", "kernel/module/")
    assert Kbuild(MINI_TREE, HOST).make_argv(tmp_path, "olddefconfig")[-1] == "olddefconfig"


def test_ccache_runs_in_depend_mode_and_only_with_ccache(tmp_path: Path) -> None:
    """Depend mode: ccache reads kbuild's -Wp,-MMD file instead of preprocessing each source a
    second time (a cold kernel build's compiler time half again without it)."""
    env = dict(Kbuild(MINI_TREE, HOST, 2, ccache_dir=tmp_path / "cc").env())
    assert env["CCACHE_DEPEND"] == "1" and env["CCACHE_DIR"] == str(tmp_path / "cc")
    assert not any(k.startswith("CCACHE") for k, _ in Kbuild(MINI_TREE, HOST).env())


def test_the_image_lists_every_toolchains_packages_on_top_of_the_base_list() -> None:
    listed = image.read_list(REPO / "containers" / "toolchains.txt")
    assert tuple(sorted(listed)) == toolchains.image_packages()
    spec = image.read_spec()
    # NAME:ARCH lines are another architecture's packages, unpacked apart (spec.foreign)
    base = tuple(p for p in image.read_list(REPO / "containers" / "packages.txt") if ":" not in p)
    assert spec.packages[:len(base)] == base
    assert set(toolchains.image_packages()) <= set(spec.packages)


MATRIX = """
kernel: {source: %s}
config: {CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}
short_names: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups}
axes:
  toolchain: [gcc-12, clang-16]
  CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
exclude:
  - {toolchain: clang-16, CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: n}
include:
  - config: {CONFIG_MODULE_SIG: y}
    toolchain: gcc-11
  - id: sig-default
    config: {CONFIG_MODULE_SIG: y}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(text).lstrip() +
                    makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    return path


def test_toolchain_axis_expands_with_short_stable_ids(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, MATRIX % MINI_TREE))
    combos = {c.id: c for c in matrix.combinations}
    assert list(combos) == ["gcc-12.dups-y", "gcc-12.dups-n", "clang-16.dups-y",
                            "gcc-11.module_sig-y", "sig-default"]
    assert combos["clang-16.dups-y"].values == (("CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", "y"),)
    assert combos["clang-16.dups-y"].toolchain == "clang-16"
    assert combos["gcc-11.module_sig-y"].toolchain == "gcc-11"
    assert combos["sig-default"].toolchain == "" and combos["sig-default"].arch == ""
    assert combos["clang-16.dups-y"].axis_values == {
        "toolchain": "clang-16", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}


def test_each_combination_builds_in_its_own_view(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, MATRIX % MINI_TREE))
    clang = matrix.built_with(matrix.combination("clang-16.dups-y"))
    assert (clang.toolchain.name, clang.arch, clang.variant) == (
        "clang-16", matrix.arch, f"{matrix.arch.name}-clang-16")
    assert matrix.built_with(matrix.combination("sig-default")) is matrix
    assert [v.variant for v in matrix.views()] == [
        variants.DEFAULT, f"{matrix.arch.name}-clang-16", f"{matrix.arch.name}-gcc-11"]
    assert [v.variant for v in matrix.views(["sig-default"])] == [variants.DEFAULT]
    # a selection of clang combinations prepares no gcc seed
    assert [v.variant for v in matrix.views(["clang-16.dups-y"])] == [
        f"{matrix.arch.name}-clang-16"]
    job = Job(settings_for(tmp_path, matrix), matrix, matrix.combination("clang-16.dups-y"),
              SYMBOLS, FakeMake())
    assert job.matrix.toolchain.name == "clang-16"
    assert "toolchain" not in job.requested()  # never asked of Kconfig


def test_fixed_toolchain_and_arch_under_kernel(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
        kernel: {{source: {MINI_TREE}, arch: {HOST.name}, toolchain: clang-16}}
        include: [{{id: one, config: {{CONFIG_MODULES: y}}}}]
        """)
    matrix = load_matrix(path)
    assert matrix.toolchain.name == "clang-16" and matrix.variant == f"{HOST.name}-clang-16"


def test_an_arch_axis_takes_any_known_architecture(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, f"""
        kernel: {{source: {MINI_TREE}}}
        axes: {{arch: [{HOST.name}], CONFIG_MODULES: [y]}}
        """))
    assert [(c.id, c.arch) for c in matrix.combinations] == [
        (f"{HOST.name}.modules-y", HOST.name)]


@pytest.mark.parametrize(("text", "message"), [
    ("kernel: {toolchain: gcc-9}\ninclude: [{id: a}]\n",
     "M:1: toolchain 'gcc-9' is not supported: use one of clang-16, gcc-11, gcc-12"),
    ("axes: {toolchain: [gcc-12, icc]}\n",
     "M:1: toolchain 'icc' is not supported: use one of clang-16, gcc-11, gcc-12"),
    ("axes: {arch: [vax]}\n", "M:1: arch 'vax' is not supported yet: use one of "
     + ", ".join(sorted(arch.ARCHES))),
    ("axes: {toolchain: []}\n", "M:1: axis toolchain needs a non-empty list of names"),
    ("include:\n  - {id: a, toolchain: tcc}\n",
     "M:2: toolchain 'tcc' is not supported: use one of clang-16, gcc-11, gcc-12"),
    ("axes: {CONFIG_MODULES: [y, n]}\nexclude:\n  - {toolchain: gcc-11}\n",
     "M:3: 'toolchain' is not a CONFIG_ symbol: write it like "
     "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS (upper case, digits, _)"),
    ("sample: pairwise\naxes: {toolchain: [gcc-12, clang-16], CONFIG_MODULES: [y, n]}\n",
     "M:2: arch and toolchain axes work with `sample: all` and without `axes: from` for "
     "now: list the architectures or toolchains as include entries instead"),
])
def test_bad_arch_and_toolchain_values_are_one_line_errors(tmp_path: Path, text: str,
                                                           message: str) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_matrix(path)
    assert info.value.message.replace(str(path.resolve()), "M") == message


def test_caches_seeds_and_trees_are_keyed_by_architecture_and_toolchain(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, MATRIX % MINI_TREE))
    settings = settings_for(tmp_path, matrix, pristine=False)
    clang = f"{HOST.name}-clang-16"
    assert settings.ccache_dir(variants.DEFAULT) == tmp_path / "cache" / "ccache" / variants.DEFAULT
    assert settings.ccache_dir(clang) == tmp_path / "cache" / "ccache" / clang
    assert settings.work_dir(variants.DEFAULT) != settings.work_dir(clang)
    settings.ccache_domain = "bisect"
    assert settings.ccache_dir(clang) == tmp_path / "cache" / "ccache-bisect" / clang
    settings.seeds = {variants.DEFAULT: "/s/gcc", clang: "/s/clang"}
    assert settings.seed_for(clang) == "/s/clang"
    assert settings.seed_for(f"{HOST.name}-gcc-11") == ""  # none: builds start empty
    settings.seeds, settings.seed = {}, "/s/old"  # a run.json from before seeds
    assert settings.seed_for(variants.DEFAULT) == "/s/old"
    kb = settings.kbuild(matrix.built_with(matrix.combination("clang-16.dups-y")))
    assert kb.ccache_dir == settings.ccache_dir(clang) and kb.toolchain.name == "clang-16"


def test_a_clang_combination_runs_every_step_with_clang(tmp_path: Path) -> None:
    matrix = load_matrix(write(tmp_path, MATRIX % MINI_TREE))
    runner = FakeMake()
    settings = settings_for(tmp_path, matrix, pristine=False)
    record = run_combination(Job(settings, matrix, matrix.combination("clang-16.dups-y"),
                                 SYMBOLS, runner))
    assert record.verdict == "pass", record.reasons
    assert (record.arch, record.toolchain) == (HOST.name, "clang-16")
    assert record.values["toolchain"] == "clang-16"
    for step in runner.steps:
        assert "LLVM=-16" in step.argv, step.name
    assert Path(record.output_dir).parent == settings.work_dir(f"{HOST.name}-clang-16")


def test_the_combination_field_defaults_keep_old_records_readable() -> None:
    combo = Combination("a", (("CONFIG_X", "y"),), 1)
    assert (combo.arch, combo.toolchain, combo.axis_values) == ("", "", {"CONFIG_X": "y"})


def test_config_bisect_trials_build_with_the_failing_combinations_toolchain(
        tmp_path: Path) -> None:
    from harness.bisect.oracle import CombinationOracle
    from harness.bisect.trial import Env
    from harness.verdict import Stage

    matrix = load_matrix(write(tmp_path, MATRIX % MINI_TREE))
    runner = FakeMake()
    env = Env(settings_for(tmp_path, matrix, pristine=False), matrix, SYMBOLS, runner,
              say=lambda _: None)
    good = tmp_path / "good.config"
    good.write_text("CONFIG_MODULES=y\nCONFIG_DEBUG_FS=y\nCONFIG_MODULE_DEBUG=y\n")
    (tmp_path / "bisect").mkdir()
    oracle = CombinationOracle(env, good, tmp_path / "bisect", Stage.LINK,
                               built_with=matrix.combination("clang-16.dups-y"))
    assert oracle.matrix.toolchain.name == "clang-16"
    obs = oracle.check(1, {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"})
    assert obs.passed, obs.reasons
    assert runner.steps and all("LLVM=-16" in s.argv for s in runner.steps)


def test_reports_carry_each_records_architecture_and_toolchain() -> None:
    from harness import kcidb, metadata, results
    from harness.runinfo import RunInfo
    from harness.verdict import Verdict

    def record(cid: str, chain: str, compiler: str) -> results.Record:
        return results.Record(cid, "r1", "/m.yaml", {"toolchain": chain}, {}, status="done",
                              verdict=Verdict.PASS, arch=HOST.name, toolchain=chain,
                              compiler=compiler)

    clang = record("clang-16.a", "clang-16", "Debian clang version 16.0.6 (15~deb12u1)")
    gcc = record("gcc-12.a", "gcc-12", "")
    info = RunInfo("r1", "/m.yaml", image_packages={"clang-16": "1:16.0.6-15~deb12u1",
                                                    "gcc": "4:12.2.0-3", "gcc-12": "12.2.0-14"},
                   matrix_info={"arch": HOST.name, "toolchain": "gcc-12"})
    meta = metadata.metadata(clang, info)
    assert (meta["build"]["toolchain"], meta["build"]["target_arch"]) == ("clang-16", HOST.name)
    assert meta["compiler"] == {"name": "clang", "version": "16.0.6",
                                "version_full": "Debian clang version 16.0.6 (15~deb12u1)"}
    assert metadata.metadata(gcc, info)["compiler"] == {"name": "gcc", "version": "12.2.0"}
    text = results.summary_markdown([clang, gcc], "t")
    assert f"Built with: {HOST.name} clang-16 (1), {HOST.name} gcc-12 (1)" in text
    builds = kcidb.export([clang, gcc], info, Path("/nonexistent"))["builds"]
    assert [b["compiler"] for b in builds] == [clang.compiler, "gcc 12.2.0"]
    assert {b["architecture"] for b in builds} == {HOST.name}


def test_the_wider_toolchain_example_loads_with_every_toolchain() -> None:
    matrix = load_matrix(REPO / "examples" / "toolchains.yaml")
    assert len(matrix.combinations) == 27
    assert {v.toolchain.name for v in matrix.views()} == set(toolchains.TOOLCHAINS)


def test_every_toolchain_gets_its_own_seed_tree_made_with_it(tmp_path: Path) -> None:
    from harness import seeds

    matrix = load_matrix(write(tmp_path, MATRIX % MINI_TREE))
    settings = settings_for(tmp_path, matrix, pristine=False)
    runner = FakeMake()
    with open(tmp_path / "seed.log", "w") as log:
        seeds.ensure_seeds(settings, matrix, SYMBOLS, runner, log, 2, whole=True)
    clang, gcc11 = f"{HOST.name}-clang-16", f"{HOST.name}-gcc-11"
    assert set(settings.seeds) == {variants.DEFAULT, clang, gcc11}
    assert len(set(settings.seeds.values())) == 3 and settings.seed == settings.seeds[
        variants.DEFAULT]
    prepares = [s.argv for s in runner.steps if s.name == "prepare"]
    # made side by side: in any order
    assert sorted(a[-2] for a in prepares) == ["CC=ccache clang-16", "CC=ccache gcc",
                                                "HOSTCC=gcc-11"]

    # a run makes its own seed whole and of the others only the base config, beside what it
    # is given (the resolve step's Kconfig sessions); a combination makes the rest later
    settings = settings_for(tmp_path / "lazy", matrix, pristine=False)
    runner, sessions = FakeMake(), []
    with open(tmp_path / "seed.log", "w") as log:
        seeds.ensure_seeds(settings, matrix, SYMBOLS, runner, log, 2,
                           sessions=lambda view, own: sessions.append(
                               (view.variant, (seeds.seed_dir(settings, view, SYMBOLS)
                                               / pipeline.BASE_CONFIG).is_file())))
    # a session per variant, each once its seed's base config is there (it takes its conf)
    assert sorted(v for v, _ in sessions) == sorted(settings.seeds)
    assert all(ready for _, ready in sessions), sessions
    assert [s.argv[-2] for s in runner.steps if s.name == "prepare"] == ["CC=ccache gcc"]
    assert sorted(s.name for s in runner.steps).count("base-config") == 3
    clang_seed = Path(settings.seeds[clang])
    assert (clang_seed / seeds.BASE_MARKER).exists() and not seeds.is_made(clang_seed)
    later = FakeMake()
    with open(tmp_path / "combo.log", "w") as log:
        made = seeds.ensure_seed(settings, matrix.built_with(next(
            c for c in matrix.combinations if c.toolchain == "clang-16")), SYMBOLS, later, log, 2)
    assert made == clang_seed and seeds.is_made(clang_seed)
    assert not (clang_seed / seeds.BASE_MARKER).exists()
    assert [s.name for s in later.steps] == ["olddefconfig", "prepare", "warm-targets"]
    assert "made now, from its base config" in (tmp_path / "combo.log").read_text()
    settings.only = ["sig-default"]  # a selection builds only the seeds it needs
    settings.seeds = {}
    with open(tmp_path / "seed.log", "w") as log:
        seeds.ensure_seeds(settings, matrix, SYMBOLS, FakeMake(), log, 2)
    assert list(settings.seeds) == [variants.DEFAULT]


def test_a_toolchain_without_cross_compilers_refuses_a_cross_architecture() -> None:
    assert toolchains.get("gcc-11").cannot_build(CROSS) == (
        "gcc-11 cannot build crossarch here: the builder image has no "
        "aarch64-linux-gnu-gcc-11; use another toolchain for crossarch")
    assert toolchains.get("gcc-11").cannot_build(HOST) == ""
    assert toolchains.get("clang-16").cannot_build(CROSS) == ""
    assert toolchains.get("gcc-12").cannot_build(CROSS) == ""


def test_the_matrix_refuses_a_combination_its_toolchain_cannot_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(arch.ARCHES, CROSS.name, CROSS)
    text = f"""
        kernel: {{source: {MINI_TREE}}}
        axes: {{arch: [{HOST.name}, crossarch], toolchain: [gcc-12, gcc-11]}}
        """
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    with pytest.raises(InputError) as info:
        load_matrix(path)
    assert info.value.message.endswith(
        ":2: crossarch.gcc-11: gcc-11 cannot build crossarch here: the builder image has no "
        "aarch64-linux-gnu-gcc-11; use another toolchain for crossarch (exclude it)")
    path.write_text(textwrap.dedent(text).lstrip() +
                    "exclude:\n  - {arch: crossarch, toolchain: gcc-11}\n")
    assert [c.id for c in load_matrix(path).combinations] == [
        f"{HOST.name}.gcc-12", f"{HOST.name}.gcc-11", "crossarch.gcc-12"]
