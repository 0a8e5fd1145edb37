"""One combination end to end with a fake Runner that plays the tree's `make` in the output
directory (writes the base and resolved .config, builds kernel/module/built-in.a as a real thin
archive), so every verdict path is exercised in milliseconds with no Docker and no kernel."""

from __future__ import annotations

import json
import shlex
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from testhelpers import MINI_TREE, RecordingRunner

from harness import arch, kconfig, linkcheck, makefile, pipeline, results, seeds, treeguard
from harness.container import Step, StepResult, host_workdir
from harness.matrix import Combination, Matrix, load_matrix
from harness.pipeline import run_combination
from harness.settings import Job, RunSettings
from harness.verdict import InfraError, Outcome, Stage, Verdict

SYMBOLS = kconfig.scan_symbols(MINI_TREE)
SEED_RULES = makefile.expect_map(makefile.parse_object_rules(
    (MINI_TREE / "kernel/module/Makefile").read_text()))

TINYCONFIG = "CONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\n" \
             "# CONFIG_MODULES is not set\n# CONFIG_KALLSYMS is not set\n"

# Enough of Kconfig's `depends on` for the mini tree: a y whose dependency is not y is dropped.
DEPENDS = {
    "CONFIG_MODULE_DEBUG": ["CONFIG_MODULES", "CONFIG_DEBUG_FS"],
    "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": ["CONFIG_MODULE_DEBUG"],
    "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE": ["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"],
    "CONFIG_MODULE_STATS": ["CONFIG_MODULE_DEBUG"],
    "CONFIG_MODULE_SIG": ["CONFIG_MODULES"],
}


def thin_archive(path: Path, members: list[str]) -> None:
    """Kbuild's built-in.a: a GNU thin archive (member names in the // table, no bodies)."""
    table = b"".join(f"{m}/\n".encode() for m in members)

    def header(name: str, size: int) -> bytes:
        return f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{size:<10}`\n".encode()

    data = bytearray(b"!<thin>\n" + header("//", len(table)) + table)
    offset = 0
    for m in members:
        data += header(f"/{offset}", 1000)
        offset += len(m) + 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


class FakeMake(RecordingRunner):
    """A Runner (run, reproducer, image_id) that simulates make in step.workdir."""

    prefix = "fake-docker-run "

    def __init__(self, wiring: dict[str, str] | None = None,
                 fail: dict[str, list[str]] | None = None, timeout: str | None = None,
                 no_archive: bool = False, raise_on: dict[str, BaseException] | None = None,
                 on_step: Callable[[Step], None] | None = None) -> None:
        super().__init__()
        self.wiring = wiring or SEED_RULES  # what the tree's Makefile links, by the config
        self.fail = fail or {}  # step name -> output lines of a failing step
        self.timeout = timeout  # step name that hits its timeout
        self.no_archive = no_archive
        self.raise_on = raise_on or {}
        self.on_step = on_step

    def act(self, step: Step, log: IO[str]) -> StepResult:
        if self.on_step:
            self.on_step(step)
        if step.name in self.raise_on:
            raise self.raise_on[step.name]
        log.write(f"\n$ {self.reproducer(step)}\n")
        out = Path(host_workdir(step))  # the output tree sits at /kmatrix/out inside
        if step.name == self.timeout:
            return StepResult(step.name, step.argv, None, step.timeout_s, True, ["..."],
                              self.reproducer(step))
        if step.name in self.fail:
            log.write("\n".join(self.fail[step.name]) + "\n")
            return StepResult(step.name, step.argv, 2, 0.5, False, self.fail[step.name][-5:],
                              self.reproducer(step))
        if step.name == "base-config":
            (out / ".config").write_text(TINYCONFIG)
        elif step.name == "olddefconfig":
            (out / ".config").write_text(kconfig.render_config(self.resolve(out)))
        elif step.name == "build":
            config = kconfig.parse_config((out / ".config").read_text())
            log.write("  CC      kernel/module/main.o\n  AR      kernel/module/built-in.a\n")
            if not self.no_archive:
                members = [o for o, cond in self.wiring.items() if linkcheck.evaluate(cond, config)]
                thin_archive(out / "kernel/module/built-in.a", members)
        return StepResult(step.name, step.argv, 0, 0.25, False, [], self.reproducer(step))

    @staticmethod
    def resolve(out: Path) -> kconfig.Config:
        config = kconfig.parse_config((out / ".config").read_text())
        changed = True
        while changed:
            changed = False
            for sym, deps in DEPENDS.items():
                if config.get(sym) == "y" and any(config.get(d) != "y" for d in deps):
                    config[sym] = "n"
                    changed = True
        config.setdefault("CONFIG_LOG_BUF_SHIFT", "17")
        return config


MATRIX = """
    kernel: {source: %s}
    base: tinyconfig
    config:
      CONFIG_MODULES: y
      CONFIG_DEBUG_FS: y
      CONFIG_MODULE_DEBUG: y
    short_names:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups
    axes:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
    include:
      - id: dropped
        config: {CONFIG_MODULE_DEBUG: n, CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: y}
      - id: strings
        config: {CONFIG_LOCALVERSION: -kmatrix, CONFIG_LOG_BUF_SHIFT: 17}
    """


@pytest.fixture
def matrix(tmp_path: Path) -> Matrix:
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(MATRIX % MINI_TREE).lstrip() +
                    makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    return load_matrix(path)


def settings_for(tmp_path: Path, matrix: Matrix, **kw: object) -> RunSettings:
    run_dir = tmp_path / "results" / "r1"
    run_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = dict(
        run_id="r1", matrix_path=str(matrix.path), run_dir=str(run_dir),
        cache=str(tmp_path / "cache"), tree=str(MINI_TREE),
        kernel={"version": "6.12.0-mini", "origin": str(MINI_TREE), "commit": None,
                "path": str(MINI_TREE)},
        image="kmatrix-builder:test", image_id="sha256:fake", pristine=True)
    values.update(kw)
    return RunSettings(**values)  # type: ignore[arg-type]


def run(tmp_path: Path, matrix: Matrix, combo_id: str, runner: FakeMake,
        **kw: object) -> results.Record:
    settings = settings_for(tmp_path, matrix, **kw)
    return run_combination(Job(settings, matrix, matrix.combination(combo_id), SYMBOLS, runner))


def stages(record: results.Record) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in record.stages]


def on_disk(tmp_path: Path, combo_id: str) -> dict[str, object]:
    return json.loads((tmp_path / "results/r1" / combo_id / "record.json").read_text())


# --- pass -------------------------------------------------------------------------------------

def test_pass_with_dups_linked(tmp_path: Path, matrix: Matrix) -> None:
    runner = FakeMake()
    rec = run(tmp_path, matrix, "dups-y", runner)
    assert (rec.verdict, rec.reasons, rec.status) == ("pass", [], "done")
    assert stages(rec) == [("base-config", "pass"), ("olddefconfig", "pass"),
                           ("config-truth", "pass"), ("build", "pass"), ("link-check", "pass")]
    assert rec.link["kernel/module/"]["members"] == ["dups.o", "kmod.o", "main.o", "strict_rwx.o"]
    assert rec.link["kernel/module/"]["missing"] == rec.link["kernel/module/"]["unexpected"] == []
    assert [s.name for s in runner.steps] == ["base-config", "olddefconfig", "build"]
    assert runner.steps[2].argv[-1] == "kernel/module/"
    assert rec.values == {"CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}
    assert rec.requested == {"CONFIG_MODULES": "y", "CONFIG_DEBUG_FS": "y",
                             "CONFIG_MODULE_DEBUG": "y", "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS": "y"}


def test_pass_with_dups_absent(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-n", FakeMake())
    assert rec.verdict == "pass"
    assert "dups.o" not in rec.link["kernel/module/"]["members"]
    assert "dups.o" not in rec.link["kernel/module/"]["expected"]


def test_strings_and_numbers_survive_config_truth(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "strings", FakeMake())
    assert rec.verdict == "pass", rec.reasons
    assert rec.requested["CONFIG_LOCALVERSION"] == '"-kmatrix"'


def test_the_record_on_disk_is_complete(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake())
    combo_dir = tmp_path / "results/r1/dups-y"
    data = on_disk(tmp_path, "dups-y")
    assert results.Record.from_dict(data) == rec
    assert set(data) == set(results.Record.__dataclass_fields__)
    assert data["combination"] == "dups-y" and data["run_id"] == "r1"
    assert data["matrix"] == str(matrix.path)
    assert data["image"] == {"tag": "kmatrix-builder:test", "id": "sha256:fake", "runtime": "docker"}
    assert data["kernel"]["version"] == "6.12.0-mini"
    assert data["started"] and data["finished"] and data["duration_s"] >= 0
    assert data["reproducer"] == f"kmatrix run {matrix.path} --only dups-y"
    out = Path(data["output_dir"])
    assert out == tmp_path / "cache/pristine/r1/dups-y"
    resolved = kconfig.parse_config((combo_dir / "config").read_text())
    assert not out.exists()  # a pristine tree is removed once its record is written
    assert data["resolved_config_hash"] == kconfig.config_hash(resolved)
    assert resolved["CONFIG_LOG_BUF_SHIFT"] == "17"  # Kconfig's default, added by olddefconfig
    # input.config = the base config with every requested value on top
    assert kconfig.parse_config((combo_dir / "input.config").read_text()) == {
        "CONFIG_CC_VERSION_TEXT": '"gcc (Debian 12.2.0-14) 12.2.0"', "CONFIG_KALLSYMS": "n",
        **rec.requested}
    log = (combo_dir / "build.log").read_text()
    assert log.startswith(f"# kmatrix: combination dups-y of {matrix.path}\n"
                          f"# reproduce: kmatrix run {matrix.path} --only dups-y\n")
    assert "$ fake-docker-run make -C" in log


def test_reproducer_lists_the_commands_after_the_base_config(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake())
    out = rec.output_dir
    script = tmp_path / "results/r1/dups-y/reproducer.sh"
    assert script.stat().st_mode & 0o777 == 0o755  # ./reproducer.sh runs as it stands
    text = script.read_text()
    make = f"fake-docker-run make -C {MINI_TREE} O=/kmatrix/out ARCH=x86_64 -j1"
    assert text.splitlines() == [
        "#!/bin/sh",
        "# Reproduce combination dups-y (verdict: pass) step by step.",
        "set -e",
        shlex.join(["cp", str(tmp_path / "results/r1/dups-y/input.config"), f"{out}/.config"]),
        "# olddefconfig",
        f"{make} olddefconfig",
        "# build",
        f"{make} kernel/module/",
    ]


def test_steps_mount_the_tree_read_only_and_the_output_read_write(tmp_path: Path,
                                                                   matrix: Matrix) -> None:
    runner = FakeMake()
    rec = run(tmp_path, matrix, "dups-y", runner)
    build = runner.steps[-1]
    assert build.argv == ("make", "-C", str(MINI_TREE), "O=/kmatrix/out", "ARCH=x86_64", "-j1",
                          "kernel/module/")
    assert [(str(m.path), str(m.inside), m.read_only) for m in build.mounts] == [
        (str(MINI_TREE), str(MINI_TREE), True), (rec.output_dir, "/kmatrix/out", False)]
    assert build.workdir == "/kmatrix/out" and host_workdir(build) == rec.output_dir
    assert build.timeout_s == matrix.build.timeout_s
    assert ("KBUILD_BUILD_TIMESTAMP", "1970-01-01") in build.env
    assert "CC=ccache gcc" not in build.argv  # --pristine: no compiler cache


def test_the_record_is_written_before_the_first_step(tmp_path: Path, matrix: Matrix) -> None:
    seen: list[str] = []

    def peek(step: Step) -> None:
        if not seen:
            seen.append(on_disk(tmp_path, "dups-y")["status"])  # type: ignore[arg-type]

    run(tmp_path, matrix, "dups-y", FakeMake(on_step=peek))
    assert seen == ["running"]


# --- kernel failures --------------------------------------------------------------------------

def test_config_dropped_names_symbol_requested_and_actual(tmp_path: Path, matrix: Matrix) -> None:
    runner = FakeMake()
    rec = run(tmp_path, matrix, "dropped", runner)
    assert rec.verdict == Verdict.CONFIG_DROPPED.value
    assert rec.reasons == ["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y dropped by Kconfig "
                           "(resolved: not set)"]
    assert rec.mismatches == [{"symbol": "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS", "requested": "y",
                               "actual": "n"}]
    assert stages(rec)[-1] == ("config-truth", "fail")
    assert [s.name for s in runner.steps] == ["base-config", "olddefconfig"]  # nothing built
    assert on_disk(tmp_path, "dropped")["verdict"] == "config-dropped"


BUILD_LOG = ["  CC      kernel/module/dups.o",
             "kernel/module/dups.c:42:9: error: 'kmod_dup_mutex' undeclared (first use in this "
             "function)",
             "kernel/module/dups.c:42:9: note: each undeclared identifier is reported only once",
             "kernel/module/dups.c:77:3: error: implicit declaration of function 'kmod_dup_free'",
             "make[4]: *** [scripts/Makefile.build:229: kernel/module/dups.o] Error 1",
             "make: *** [Makefile:224: __sub-make] Error 2"]


def test_build_error_quotes_the_first_compiler_errors(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake(fail={"build": BUILD_LOG}))
    assert rec.verdict == "build-error"
    assert rec.reasons == [
        "make failed: kernel/module/dups.c:42:9: error: 'kmod_dup_mutex' undeclared (first use "
        "in this function)",
        "kernel/module/dups.c:77:3: error: implicit declaration of function 'kmod_dup_free'"]
    assert stages(rec) == [("base-config", "pass"), ("olddefconfig", "pass"),
                           ("config-truth", "pass"), ("build", "fail")]  # no link check
    text = (tmp_path / "results/r1/dups-y/reproducer.sh").read_text()
    assert "(verdict: build-error)" in text and text.rstrip().endswith("kernel/module/")


def test_build_error_without_compiler_lines_quotes_make(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y",
              FakeMake(fail={"build": ["make: *** No rule to make target 'kernel/modul/'.  Stop."]}))
    assert rec.verdict == "build-error"
    assert rec.reasons == ["make failed: make: *** No rule to make target 'kernel/modul/'.  Stop."]


def test_olddefconfig_failure_is_a_build_error(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake(fail={"olddefconfig": [
        "scripts/kconfig/conf  --olddefconfig Kconfig", "Kconfig:12: syntax error",
        "make[2]: *** [scripts/kconfig/Makefile:85: olddefconfig] Error 1"]}))
    assert rec.verdict == "build-error"
    assert rec.reasons == ["make olddefconfig failed: scripts/kconfig/conf  --olddefconfig Kconfig"
                           " | Kconfig:12: syntax error | make[2]: *** [scripts/kconfig/Makefile:85:"
                           " olddefconfig] Error 1"]
    assert stages(rec) == [("base-config", "pass"), ("olddefconfig", "error")]


def test_link_mismatch_when_the_makefile_wires_dups_to_the_wrong_option(tmp_path: Path,
                                                                       matrix: Matrix) -> None:
    wrong = {**SEED_RULES, "dups.o": "MODULE_DEBUG"}
    rec = run(tmp_path, matrix, "dups-n", FakeMake(wiring=wrong))
    assert rec.verdict == "link-mismatch"
    assert rec.reasons == ["kernel/module/: linked but not expected: dups.o"]
    assert rec.link["kernel/module/"]["unexpected"] == ["dups.o"]
    assert stages(rec)[-1] == ("link-check", "fail")


def test_link_mismatch_when_an_expected_object_is_missing(tmp_path: Path, matrix: Matrix) -> None:
    wrong = {**SEED_RULES, "dups.o": "n"}
    rec = run(tmp_path, matrix, "dups-y", FakeMake(wiring=wrong))
    assert rec.verdict == "link-mismatch"
    assert rec.reasons == ["kernel/module/: expected but not linked: dups.o"]


def test_link_mismatch_when_no_archive_was_built(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake(no_archive=True))
    assert rec.verdict == "link-mismatch"
    assert rec.reasons == ["kernel/module/built-in.a was not produced by the build"]


def test_a_corrupt_archive_still_finishes_the_record(tmp_path: Path, matrix: Matrix) -> None:
    class Corrupt(FakeMake):
        def run(self, step: Step, log: IO[str]) -> StepResult:
            result = super().run(step, log)
            if step.name == "build":
                (Path(host_workdir(step)) / "kernel/module/built-in.a").write_bytes(b"truncated")
            return result

    rec = run(tmp_path, matrix, "dups-y", Corrupt())
    assert rec.status == "done" and rec.verdict in ("infra-error", "link-mismatch")
    assert on_disk(tmp_path, "dups-y")["status"] == "done"


# --- infrastructure failures ------------------------------------------------------------------

def test_build_timeout_is_an_infra_error(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake(timeout="build"))
    assert rec.verdict == "infra-error"
    assert rec.reasons == ["build timed out after 1800 s: raise build.timeout or lower the load"]
    assert stages(rec)[-1] == ("build", "error")
    assert on_disk(tmp_path, "dups-y")["verdict"] == "infra-error"


def test_olddefconfig_timeout_is_an_infra_error(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake(timeout="olddefconfig"))
    assert rec.verdict == "infra-error"
    assert rec.reasons[0].startswith("make olddefconfig failed")


def test_a_failed_base_config_is_an_infra_error(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake(fail={"base-config": ["boom", "gcc: not found"]}))
    assert rec.verdict == "infra-error"
    assert rec.reasons == ["`make tinyconfig` failed: boom | gcc: not found"]
    assert stages(rec) == [("base-config", "error")]


def test_disk_full_during_the_build_is_an_infra_error(tmp_path: Path, matrix: Matrix) -> None:
    rec = run(tmp_path, matrix, "dups-y", FakeMake(fail={"build": [
        "kernel/module/main.o: error: No space left on device",
        "make[4]: *** [scripts/Makefile.build:229: kernel/module/main.o] Error 1"]}))
    assert rec.verdict == "infra-error"
    assert rec.reasons == ["disk full during the build: free some space and rerun"]


def test_an_infra_error_from_the_runner_finishes_the_record(tmp_path: Path, matrix: Matrix) -> None:
    boom = InfraError("Docker could not start step build: connection refused")
    rec = run(tmp_path, matrix, "dups-y", FakeMake(raise_on={"build": boom}))
    assert (rec.verdict, rec.status) == ("infra-error", "done")
    assert rec.reasons == ["Docker could not start step build: connection refused"]
    assert on_disk(tmp_path, "dups-y")["reasons"] == rec.reasons
    assert (tmp_path / "results/r1/dups-y/reproducer.sh").is_file()


def test_ctrl_c_leaves_an_interrupted_record_and_propagates(tmp_path: Path, matrix: Matrix) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, matrix, "dups-y", FakeMake(raise_on={"build": KeyboardInterrupt()}))
    data = on_disk(tmp_path, "dups-y")
    assert (data["status"], data["verdict"]) == ("interrupted", "infra-error")
    assert data["reasons"] == ["interrupted (Ctrl-C or SIGTERM) before this combination finished"]
    assert data["finished"]


# --- extra stages, output trees, settings -----------------------------------------------------

def test_the_pipeline_boots_after_a_clean_link_only(tmp_path: Path, matrix: Matrix,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline decides the boot stage itself: a combination that asks for a boot gets the
    kernel image built and is booted after a clean link check, and never after a mismatch."""
    from dataclasses import replace

    from harness import boot_stage
    from harness.matrix import BootRequest

    calls: list[str] = []

    def boot(job: Job, record: results.Record, out: Path, resolved: kconfig.Config,
             log: IO[str]) -> Outcome:
        calls.append(record.combination)
        assert resolved["CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS"] == "y"
        return Outcome(Verdict.BOOT_FAIL, ["no dups warning on the console"])

    monkeypatch.setattr(boot_stage, "boot", boot)
    monkeypatch.setattr(boot_stage, "boot_fragment", lambda arch=None: {})
    settings = settings_for(tmp_path, matrix)
    runner = FakeMake()
    booted = replace(matrix.combination("dups-y"), boot=BootRequest())
    rec = run_combination(Job(settings, matrix, booted, SYMBOLS, runner))
    assert (rec.verdict, rec.reasons, calls) == ("boot-fail", ["no dups warning on the console"],
                                                 ["dups-y"])
    assert matrix.arch.image_target in runner.steps[-1].argv
    rec = run_combination(Job(settings, matrix, replace(matrix.combination("dups-n"),
                                                        boot=BootRequest()),
                              SYMBOLS, FakeMake(wiring={**SEED_RULES, "dups.o": "y"})))
    assert rec.verdict == "link-mismatch" and calls == ["dups-y"]  # no boot after a mismatch
    # a job that stops at the build (a bisect of a build failure) neither links nor boots
    rec = run_combination(Job(settings, matrix, booted, SYMBOLS, FakeMake(),
                              last_stage=Stage.BUILD))
    assert rec.verdict == "pass" and calls == ["dups-y"] and not rec.link


def test_the_bootable_kernel_builds_with_every_core_and_more_weight(
        tmp_path: Path, matrix: Matrix, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the core budget the critical path (a kernel that boots) builds at make -jN with
    cgroup CPU shares above the default, so the object builds fill only what it leaves idle;
    an object build gets the default weight. The docker run line shows it."""
    from dataclasses import replace

    from harness import boot_stage, container, cores
    from harness.matrix import BootRequest

    monkeypatch.setattr(boot_stage, "boot", lambda *a: Outcome.ok())
    monkeypatch.setattr(boot_stage, "boot_fragment", lambda arch=None: {})
    settings = settings_for(tmp_path, matrix, adaptive_jobs=True, workers=2, jobs=1)
    long = FakeMake()
    booted = replace(matrix.combination("dups-y"), boot=BootRequest())
    assert run_combination(Job(settings, matrix, booted, SYMBOLS, long)).verdict == "pass"
    build = next(s for s in long.steps if s.name == "build")
    assert build.cpu_shares == cores.LONG_SHARES and "-j2" in build.argv and build.cpus == 2.0
    assert f"--cpu-shares {cores.LONG_SHARES}" in container.docker_run_line("img", build)
    short = FakeMake()
    run_combination(Job(settings, matrix, matrix.combination("dups-n"), SYMBOLS, short))
    build = next(s for s in short.steps if s.name == "build")
    assert build.cpu_shares == 0 and "--cpu-shares" not in container.docker_run_line("img", build)


def test_pristine_starts_from_an_empty_output_tree(tmp_path: Path, matrix: Matrix) -> None:
    stale = tmp_path / "cache/pristine/r1/dups-y/stale.o"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    run(tmp_path, matrix, "dups-y", FakeMake())
    assert not stale.exists()
    assert not (tmp_path / "cache/ccache").exists()


def test_a_warm_tree_keeps_its_base_config(tmp_path: Path, matrix: Matrix) -> None:
    first, second = FakeMake(), FakeMake()
    rec = run(tmp_path, matrix, "dups-y", first, pristine=False, ccache=False)
    assert Path(rec.output_dir).parent.parent == tmp_path / "cache/work"
    rec2 = run(tmp_path, matrix, "dups-y", second, pristine=False, ccache=False)
    assert rec2.output_dir == rec.output_dir
    assert [s.name for s in first.steps] == ["base-config", "olddefconfig", "build"]
    assert [s.name for s in second.steps] == ["olddefconfig", "build"]
    assert rec2.verdict == "pass" and "base-config" not in [s.name for s in rec2.stages]


def test_a_warm_tree_whose_config_is_already_the_answer_runs_no_olddefconfig(
        tmp_path: Path, matrix: Matrix) -> None:
    """A warm rerun with nothing changed: the tree's .config holds exactly what the resolve
    step found olddefconfig makes of the request, so it is kept (an olddefconfig would
    rewrite it, and the new .config would make the build run Kconfig again). Config truth
    still judges it; another answer, or a tree a stopped step left dirty, runs olddefconfig."""
    from harness import resolve

    first = run(tmp_path, matrix, "dups-y", FakeMake(), pristine=False, ccache=False)
    out = Path(first.output_dir)
    answer = kconfig.config_hash(kconfig.parse_config((out / ".config").read_text()))
    settings = settings_for(tmp_path, matrix, pristine=False, ccache=False)
    resolve.save(Path(settings.run_dir), {"dups-y": resolve.Resolution(
        "dups-y", config_hash=answer, tree="dups-y")})
    kept = FakeMake()
    rec = run(tmp_path, matrix, "dups-y", kept, pristine=False, ccache=False)
    assert [s.name for s in kept.steps] == ["build"]
    assert rec.verdict == "pass" and ("olddefconfig", "pass") in stages(rec)
    stage = next(s for s in rec.stages if s.name == "olddefconfig")
    assert stage.duration_s == 0.0 and stage.command.endswith(" olddefconfig")  # rerunnable
    assert rec.resolved_config_hash == answer
    log = (tmp_path / "results/r1/dups-y/build.log").read_text()
    assert f"kmatrix: olddefconfig not run: {out}/.config already is what it makes" in log
    script = (tmp_path / "results/r1/dups-y/reproducer.sh").read_text()
    assert "# olddefconfig\n" + stage.command in script  # the reproducer still runs it

    resolve.save(Path(settings.run_dir), {"dups-y": resolve.Resolution(
        "dups-y", config_hash="0123456789abcdef", tree="dups-y")})
    other = FakeMake()
    run(tmp_path, matrix, "dups-y", other, pristine=False, ccache=False)
    assert [s.name for s in other.steps] == ["olddefconfig", "build"]

    resolve.save(Path(settings.run_dir), {"dups-y": resolve.Resolution(
        "dups-y", config_hash=answer, tree="dups-y")})
    treeguard.condemn(out)  # nothing in a condemned tree is trusted
    dirty = FakeMake()
    run(tmp_path, matrix, "dups-y", dirty, pristine=False, ccache=False)
    assert "olddefconfig" in [s.name for s in dirty.steps]


def test_a_new_tree_takes_the_resolve_steps_config_instead_of_running_olddefconfig(
        tmp_path: Path, matrix: Matrix) -> None:
    """The resolve step's one Kconfig parse wrote the exact .config make olddefconfig makes of
    this request: a new tree takes it (one Kconfig run fewer: the build's syncconfig is the
    only one), config truth still judges it, and the reproducer still runs olddefconfig. A
    text that is not the resolution's answer is never taken."""
    from harness import resolve

    probe = run(tmp_path / "probe", matrix, "dups-y", FakeMake(), pristine=False, ccache=False)
    text = (Path(probe.output_dir) / ".config").read_text()
    answer = kconfig.config_hash(kconfig.parse_config(text))
    settings = settings_for(tmp_path, matrix, pristine=False, ccache=False)
    run_dir = Path(settings.run_dir)
    resolve.save(run_dir, {"dups-y": resolve.Resolution("dups-y", config_hash=answer,
                                                        tree="dups-y")})
    results.atomic_write(run_dir / resolve.CONFIGS_DIR / "dups-y.config", text)
    taken = FakeMake()
    rec = run(tmp_path, matrix, "dups-y", taken, pristine=False, ccache=False)
    assert [s.name for s in taken.steps] == ["base-config", "build"]
    assert rec.verdict == "pass" and rec.resolved_config_hash == answer
    assert (Path(rec.output_dir) / ".config").read_text() == text
    stage = next(s for s in rec.stages if s.name == "olddefconfig")
    assert stage.duration_s == 0.0 and stage.command.endswith(" olddefconfig")
    log = (tmp_path / "results/r1/dups-y/build.log").read_text()
    assert f"kmatrix: olddefconfig not run: {rec.output_dir}/.config written as the resolve " \
        "step's Kconfig made it" in log

    # another request's text under this name: make olddefconfig runs, as without one
    shutil.rmtree(tmp_path / "cache/work")
    results.atomic_write(run_dir / resolve.CONFIGS_DIR / "dups-y.config",
                         kconfig.render_config({"CONFIG_MODULES": "n"}))
    other = FakeMake()
    run(tmp_path, matrix, "dups-y", other, pristine=False, ccache=False)
    assert [s.name for s in other.steps] == ["base-config", "olddefconfig", "build"]


def test_a_tree_sequence_gives_each_config_its_own_directory_and_reruns_rebuild_nothing(
        tmp_path: Path, matrix: Matrix) -> None:
    """Two configs in one tree's sequence: the second builds in a copy of the first's
    directory (an incremental build), then each directory keeps its config, so a rerun of
    the sequence keeps both configs (no olddefconfig) instead of switching one directory back
    and forth."""
    from harness import resolve

    settings = settings_for(tmp_path, matrix, pristine=False, ccache=False)

    def hash_of(combo: str) -> str:  # what the resolve step finds: FakeMake's olddefconfig
        rec = run(tmp_path / "probe", matrix, combo, FakeMake(), pristine=True)
        return str(rec.resolved_config_hash)

    hashes = {c: hash_of(c) for c in ("dups-y", "dups-n")}
    assert hashes["dups-y"] != hashes["dups-n"]
    resolve.save(Path(settings.run_dir), {
        c: resolve.Resolution(c, config_hash=hashes[c], tree="lane-1", position=i)
        for i, c in enumerate(("dups-y", "dups-n"))})
    from harness.session import warm_combinations

    assert warm_combinations(settings, matrix) == {}  # nothing built yet: cold estimates
    first = run(tmp_path, matrix, "dups-y", FakeMake(), pristine=False, ccache=False)
    assert warm_combinations(settings, matrix) == {"dups-y": "lane-1"}
    second = run(tmp_path, matrix, "dups-n", FakeMake(), pristine=False, ccache=False)
    work = Path(first.output_dir).parent
    assert Path(first.output_dir).name == "lane-1"
    assert Path(second.output_dir).name == f"lane-1~{hashes['dups-n'][:12]}"
    log = (tmp_path / "results/r1/dups-n/build.log").read_text()
    assert "starts as a copy of lane-1, the config before it" in log
    assert (work / "lane-1" / ".config").read_text() != \
        (Path(second.output_dir) / ".config").read_text()
    for combo in ("dups-y", "dups-n"):  # the rerun: each directory already holds its config
        again = FakeMake()
        assert run(tmp_path, matrix, combo, again, pristine=False, ccache=False).verdict == "pass"
        assert [s.name for s in again.steps] == ["build"], combo
    # the estimates count both as a no-op make, each scheduled by its own directory; not
    # under --pristine, nor with lanes (one directory a tree)
    assert warm_combinations(settings, matrix) == {
        "dups-y": "lane-1", "dups-n": f"lane-1~{hashes['dups-n'][:12]}"}
    assert warm_combinations(settings_for(tmp_path, matrix, pristine=True), matrix) == {}
    assert warm_combinations(settings_for(tmp_path, matrix, pristine=False, trees="lanes"),
                             matrix) == {}
    lanes = run(tmp_path, matrix, "dups-n", FakeMake(), pristine=False, ccache=False,
                trees="lanes")  # `lanes`: one directory per lane, the least disk
    assert Path(lanes.output_dir).name == "lane-1"


def test_a_warm_tree_remakes_a_base_config_made_for_another_base(tmp_path: Path,
                                                                 matrix: Matrix) -> None:
    """Two matrices (or two runs) with the same combination id share a warm tree; the base
    config kept there must be this matrix's, not the last user's."""
    from dataclasses import replace

    run(tmp_path, matrix, "dups-y", FakeMake(), pristine=False, ccache=False)
    other = FakeMake()
    rec = run(tmp_path, replace(matrix, base="allnoconfig"), "dups-y", other, pristine=False,
              ccache=False)
    assert [s.name for s in other.steps] == ["base-config", "olddefconfig", "build"]
    assert other.steps[0].argv[-1] == "allnoconfig"
    assert rec.verdict == "pass"


def test_a_warm_tree_remakes_its_base_when_the_base_file_changed(tmp_path: Path) -> None:
    """A config bisect writes each good config to a file: same path, other content."""
    good = tmp_path / "good.config"
    path = tmp_path / "m.yaml"
    path.write_text("base: good.config\nconfig: {CONFIG_MODULES: y}\ninclude: [{id: one}]\n"
                    + makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    seen = []

    def olddefconfig_input(step: Step) -> None:
        if step.name == "olddefconfig":
            seen.append(kconfig.parse_config((Path(host_workdir(step)) / ".config").read_text()))

    for extra in ("CONFIG_PROC_FS=y\n", "CONFIG_KALLSYMS=y\n"):
        good.write_text(TINYCONFIG.replace("# CONFIG_KALLSYMS is not set\n", "") + extra)
        rec = run(tmp_path, load_matrix(path), "one", FakeMake(on_step=olddefconfig_input),
                  pristine=False, ccache=False)
        assert rec.verdict == "pass"
    assert seen[0].get("CONFIG_PROC_FS") == "y" and "CONFIG_KALLSYMS" not in seen[0]
    assert seen[1].get("CONFIG_KALLSYMS") == "y" and "CONFIG_PROC_FS" not in seen[1]


def test_a_base_config_file_needs_no_make(tmp_path: Path) -> None:
    (tmp_path / "my.config").write_text(TINYCONFIG + "CONFIG_PROC_FS=y\n")
    path = tmp_path / "m.yaml"
    path.write_text("base: my.config\nconfig: {CONFIG_MODULES: y}\ninclude: [{id: one}]\n"
                    + makefile.render_expect_yaml("kernel/module/", SEED_RULES))
    m = load_matrix(path)
    runner = FakeMake()
    rec = run(tmp_path, m, "one", runner)
    assert [s.name for s in runner.steps] == ["olddefconfig", "build"]
    assert rec.verdict == "pass"
    assert "procfs.o" in rec.link["kernel/module/"]["members"]


def test_run_settings_round_trip_and_no_seed_when_pristine(tmp_path: Path, matrix: Matrix) -> None:
    settings = settings_for(tmp_path, matrix, workers=2, jobs=1, only=["dups-y"])
    settings.save()
    assert RunSettings.load(Path(settings.run_dir)) == settings
    assert seeds.ensure_seed(settings, matrix, SYMBOLS, FakeMake(), None, 2) is None  # type: ignore[arg-type]


def test_reproducer_line() -> None:
    m = Matrix(Path("/my matrices/m.yaml"), "debian", arch.get("x86_64"), "tinyconfig", (), (),
               [Combination("dups-y", (), 1)])
    assert pipeline.reproducer_line(m, m.combinations[0]) == \
        "kmatrix run '/my matrices/m.yaml' --only dups-y"


def test_an_unsatisfiable_request_takes_no_tree_and_runs_no_step(tmp_path: Path,
                                                                  matrix: Matrix) -> None:
    from harness import resolve

    settings = settings_for(tmp_path, matrix, pristine=False, ccache=False)
    resolve.save(Path(settings.run_dir), {"dups-y": resolve.Resolution(
        "dups-y", holds=False, unsatisfiable="CONFIG_X depends on MIPS", seconds=1.5)})
    runner = FakeMake()
    rec = run_combination(Job(settings, matrix, matrix.combination("dups-y"), SYMBOLS, runner))
    assert rec.verdict == "unsatisfiable" and rec.reasons == ["CONFIG_X depends on MIPS"]
    assert stages(rec) == [("resolve", "fail")]
    assert runner.steps == [] and rec.output_dir == ""
    assert not (tmp_path / "cache/work").exists() or not any((tmp_path / "cache/work").rglob(
        "dups-y"))
