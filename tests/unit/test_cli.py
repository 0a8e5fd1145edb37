"""The command line (`kmatrix ...` / `python -m harness ...`) on the mini tree, with no Docker:
help, list, validate (one-line errors naming file:line, exit 2), expect-map, summary; and the
CPU budget a run is split by."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from testhelpers import MINI_TREE, REPO, run_kmatrix

from harness import cli, results, yamlsrc
from harness.session import cpu_budget
from harness.verdict import EXIT_BAD_INPUT, EXIT_INFRA, EXIT_KERNEL_FAILED, EXIT_OK, InputError

GOOD = """
    config: {CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}
    short_names: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups}
    axes:
      CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
    include:
      - id: stats
        config: {CONFIG_MODULE_STATS: y}
        boot: {cmdline: module.enable_dups_trace=1}
    """


def matrix_file(tmp_path: Path, text: str = GOOD) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def kmatrix(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return run_kmatrix(*args, cwd=cwd, timeout=60)


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- as a program -----------------------------------------------------------------------------

def test_python_m_harness_help_lists_the_subcommands() -> None:
    done = kmatrix("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: kmatrix ")
    for command in ("run", "validate", "list", "expect-map", "image", "summary"):
        assert re.search(rf"^    {command}\b", done.stdout, re.M), command
    assert "exit status: 0 pass, 1 kernel failure, 2 bad input, 3 infrastructure problem" in \
        done.stdout


def test_python_m_harness_list(tmp_path: Path) -> None:
    done = kmatrix("list", str(matrix_file(tmp_path)))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "dups-y  CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y",
        "dups-n  CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=n",
        "stats  CONFIG_MODULE_STATS=y  [boot: module.enable_dups_trace=1]",
    ]


def test_a_reader_that_leaves_early_is_no_traceback(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """`kmatrix verdict LOG | head`: the pipe closes while the record is printed. Before, a
    BrokenPipeError traceback; now the status of a tool SIGPIPE stopped, and nothing else."""
    from harness import judge

    def closed_pipe(*_: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(judge, "main_print", closed_pipe)
    monkeypatch.setattr(os, "dup2", lambda *_: None)  # pytest's captured stdout stays
    log, config = tmp_path / "console.log", tmp_path / "config"
    log.write_text("")
    config.write_text("")
    assert cli.main(["verdict", str(log), "--config", str(config)]) == 141


def test_python_m_harness_list_defaults_to_the_matrix_here() -> None:
    done = kmatrix("list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == ("dups-y.trace-y  CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS=y "
                                           "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE=y")


def test_python_m_harness_validate_bad_matrix_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = matrix_file(tmp_path, "config: {CONFIG_MODULES: y}\naxes_typo: {}\n"
                       "include: [{id: base}]\n")
    done = kmatrix("validate", str(path), "--kernel", str(MINI_TREE))
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"kmatrix: error: {path}:2: unknown key 'axes_typo' in the "
                                  "matrix: expected one of ")


# --- in process -------------------------------------------------------------------------------

def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = main(capsys)
    assert code == EXIT_BAD_INPUT and "usage: kmatrix" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == "kmatrix 0.1.0\n"


def test_validate_a_good_matrix_against_the_mini_tree(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = matrix_file(tmp_path)
    code, out, err = main(capsys, "validate", str(path), "--kernel", str(MINI_TREE))
    assert (code, err) == (EXIT_OK, "")
    assert out == f"{path}: valid: 3 combinations against Linux 6.12.0-mini ({MINI_TREE})\n"


def test_validate_uses_the_matrix_kernel_source_relative_to_the_matrix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(MINI_TREE, tmp_path / "linux")
    (tmp_path / "m").mkdir()
    path = matrix_file(tmp_path / "m", "kernel: {source: ../linux}\n" + textwrap.dedent(GOOD))
    code, out, _ = main(capsys, "validate", str(path))
    assert code == EXIT_OK
    assert out.endswith(f"against Linux 6.12.0-mini ({tmp_path / 'linux'})\n")


@pytest.mark.parametrize("edit, line, message", [
    (("CONFIG_MODULE_STATS: y", "CONFIG_MODULE_STAT: y"), 6,
     "CONFIG_MODULE_STAT is not defined by any Kconfig file in this kernel tree: did you mean "
     "CONFIG_MODULE_STATS"),
    (("[y, n]", "[y, n"), 5, "YAML error: "),
    (("[y, n]", "[yes, n]"), 4, "CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: YAML read True as a boolean: "
     "write y or n"),
    (("CONFIG_MODULE_STATS: y", "CONFIG_MODULE_STATS: m"), 6,
     "CONFIG_MODULE_STATS=m: a bool takes y or n"),
    (("stats", "two words"), 6, "id 'two words' may only use letters, digits, _ . + -"),
])
def test_validate_bad_matrix_is_one_line_naming_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], line: int,
        message: str) -> None:
    path = matrix_file(tmp_path, GOOD.replace(*edit))
    code, out, err = main(capsys, "validate", str(path), "--kernel", str(MINI_TREE))
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.startswith(f"kmatrix: error: {path}:{line}: {message}")
    assert err.count("\n") == 1 and err.endswith("\n")


def test_validate_with_a_missing_kernel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(capsys, "validate", str(matrix_file(tmp_path)), "--kernel",
                        str(tmp_path / "nope"))
    assert code == EXIT_BAD_INPUT
    assert err == (f"kmatrix: error: kernel source {tmp_path / 'nope'} does not exist: give a "
                   "kernel tree, a tarball, or `debian`\n")


def test_validate_refuses_a_tree_with_build_output(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(MINI_TREE, tree)
    (tree / ".config").write_text("CONFIG_MODULES=y\n")
    code, _, err = main(capsys, "validate", str(matrix_file(tmp_path)), "--kernel", str(tree))
    assert code == EXIT_BAD_INPUT
    assert "has build output in the source tree" in err and "make mrproper" in err


def test_validate_refuses_a_directory_that_is_not_a_kernel(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(capsys, "validate", str(matrix_file(tmp_path)), "--kernel", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert f"{tmp_path} is not a kernel tree" in err


def test_list_a_missing_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(capsys, "list", str(tmp_path / "none.yaml"))
    assert code == EXIT_BAD_INPUT
    assert err == (f"kmatrix: error: {tmp_path / 'none.yaml'}: no such matrix file: pass an "
                   "existing matrix.yaml\n")


def test_expect_map_from_the_mini_tree(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = main(capsys, "expect-map", "--kernel", str(MINI_TREE))
    assert code == EXIT_OK
    first, rest = out.split("\n", 1)
    assert first == (f"# generated by `kmatrix expect-map` from {MINI_TREE}/kernel/module/Makefile "
                     "(Linux 6.12.0-mini)")
    got = yamlsrc.loads(rest)["expect"]["kernel/module/"]
    assert len(got) == 16
    assert got["dups.o"] == "MODULE_DEBUG_AUTOLOAD_DUPS" and got["main.o"] == "y"


def test_expect_map_of_a_directory_without_makefile(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(capsys, "expect-map", "--kernel", str(MINI_TREE), "--dir", "drivers")
    assert code == EXIT_BAD_INPUT
    assert err == (f"kmatrix: error: {MINI_TREE}/drivers/Makefile does not exist: pass --dir with "
                   "a directory that has a Makefile\n")


def write_run(run_dir: Path, verdicts: dict[str, str]) -> None:
    for combo, verdict in verdicts.items():
        failed = verdict != "pass"
        results.write_record(run_dir, results.Record(
            combination=combo, run_id=run_dir.name, matrix="/m/matrix.yaml", values={},
            requested={}, status="done", verdict=verdict, duration_s=3.0,
            reasons=[f"{combo} went wrong"] if failed else [],
            reproducer=f"kmatrix run /m/matrix.yaml --only {combo}"))


@pytest.mark.parametrize("verdicts, status", [
    ({"a": "pass", "b": "pass"}, EXIT_OK),
    ({"a": "pass", "b": "link-mismatch"}, EXIT_KERNEL_FAILED),
    ({"a": "config-dropped", "b": "infra-error"}, EXIT_INFRA),
])
def test_summary_of_a_results_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        verdicts: dict[str, str], status: int) -> None:
    write_run(tmp_path / "run-1", verdicts)
    code, out, _ = main(capsys, "summary", str(tmp_path / "run-1"))
    assert code == status
    lines = out.splitlines()
    assert lines[0] == "combination  verdict          time  reason"
    assert lines[1].startswith(f"a            {verdicts['a']:<14}     3s  ")
    assert any(line.startswith("b            ") for line in lines)
    for combo, verdict in verdicts.items():
        assert (f"reproduce: kmatrix run /m/matrix.yaml --only {combo}" in out) == (verdict != "pass")


def test_summary_of_results_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "results" / "run-1", {"dups-y": "pass"})
    results.finish_run(tmp_path / "results" / "run-1", "t")
    monkeypatch.chdir(tmp_path)
    code, out, _ = main(capsys, "summary")
    assert code == EXIT_OK and "dups-y" in out


def test_summary_of_an_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = main(capsys, "summary", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert err == (f"kmatrix: error: {tmp_path} holds no records: give a results/<run-id> "
                   "directory\n")


# --- the CPU budget ---------------------------------------------------------------------------

@pytest.mark.parametrize("cores, combos, workers, jobs, expected", [
    (2, 15, None, None, (2, 1)),
    (8, 2, None, None, (2, 4)),
    (8, 3, None, None, (3, 2)),
    (1, 15, None, None, (1, 1)),
    (4, 1, None, None, (1, 4)),
    (4, 0, None, None, (1, 4)),
    (8, 15, None, 4, (2, 4)),
    (8, 1, None, 4, (1, 4)),
    (8, 15, 3, None, (3, 2)),
    (2, 15, 1, 2, (1, 2)),
])
def test_cpu_budget_splits_the_cores(cores: int, combos: int, workers: int | None,
                                     jobs: int | None, expected: tuple[int, int]) -> None:
    got = cpu_budget(cores, combos, workers, jobs)
    assert got == expected
    assert got[0] * got[1] <= cores


@pytest.mark.parametrize("workers, jobs", [(2, 2), (None, 4), (3, None)])
def test_cpu_budget_refuses_oversubscription_unless_asked(workers: int | None,
                                                          jobs: int | None) -> None:
    with pytest.raises(InputError, match=r"is more than the 2 cores here: lower one, or pass "
                       r"--oversubscribe"):
        cpu_budget(2, 15, workers, jobs)
    w, j = cpu_budget(2, 15, workers, jobs, oversubscribe=True)
    assert w * j > 2


@pytest.mark.parametrize("available, workers, expected", [
    (None, 2, (2, 4 << 30)),  # unknown: the 4 GiB limit
    (20 << 30, 2, (2, 4 << 30)),  # plenty: 4 GiB each
    (4 << 30, 2, (2, 3 << 29)),  # 3 GiB usable: 1.5 GiB each
    (2 << 30, 2, (1, 3 << 29)),  # 1.5 GiB usable: one build at a time
    (512 << 20, 2, (1, 1 << 30)),  # never below 1 GiB
])
def test_mem_budget_bounds_memory_per_build(available: int | None, workers: int,
                                            expected: tuple[int, int]) -> None:
    from harness.session import mem_budget

    assert mem_budget(available, workers) == expected
