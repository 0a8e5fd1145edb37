"""Issue 9's rough edges, one test (or a few) each: each failed before its fix."""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from harness import boot, cli, image, pytest_plugin, session
from harness import matrix as matrixmod
from harness.bisect.commits import Git, bisect_commits
from harness.bisect.trial import Observation
from harness.matrix import BuildSettings, load_matrix
from harness.results import Record
from harness.settings import Job
from harness.verdict import InfraError, InputError, Verdict

REPO = Path(__file__).resolve().parents[2]


# --- setup.sh installs what the tests use --------------------------------------------------------

def test_setup_installs_gnu_cpio() -> None:
    """tests/unit/test_cpio.py checks the initramfs with GNU cpio: a skip for a missing tool is
    a missing install step, so setup.sh installs it."""
    text = (REPO / "setup.sh").read_text()
    found = re.search(r"^debs=\((.*?)\)", text, re.M | re.S)
    assert found, "setup.sh has no debs=(...) list"
    assert "cpio" in found.group(1).split()


# --- commit bisect reads git's output untranslated ---------------------------------------------

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.org",
           "GIT_COMMITTER_NAME": "C", "GIT_COMMITTER_EMAIL": "c@example.org"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=GIT_ENV).stdout.strip()


def test_commit_bisect_under_a_translated_locale(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Under LANGUAGE=de git says "Binäre Suche:" instead of "Bisecting:" (with git's German
    catalog, as on Debian); every git command kmatrix runs gets LC_ALL=C and no LANGUAGE, seen
    by a `git` wrapper first on PATH, and the bisect finds the first bad commit."""
    repo = tmp_path / "linux"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    commits = []
    for n, state in enumerate(["ok", "ok", "ok", "bad", "bad", "bad"]):
        (repo / "state").write_text(state + "\n")
        (repo / "n").write_text(f"{n}\n")
        _git(repo, "add", "state", "n")
        _git(repo, "commit", "-q", "-m", f"commit {n}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    seen = tmp_path / "git-env.log"
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "LC_ALL=${{LC_ALL-unset}} LANGUAGE=${{LANGUAGE-unset}}" '
                       f'>> {seen}\nexec {shutil.which("git")} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("LANGUAGE", "de")

    def make_step(tree: Path):
        def step(commit: str, number: int) -> Observation:
            if (tree / "state").read_text().strip() == "ok":
                return Observation("pass")
            return Observation("build-error", "build", ("make failed: dups.c: error: 'x'",))
        return step

    result = bisect_commits(Git(lambda _: None), repo, tmp_path / "wt" / "linux", commits[0],
                            commits[-1], "dups-y", "build", make_step, lambda _: None)
    assert result.first_bad is not None and result.first_bad.id == commits[3]
    assert result.confirmed
    lines = seen.read_text().splitlines()
    assert len(lines) > 5
    assert set(lines) == {"LC_ALL=C LANGUAGE=unset"}


# --- build.timeout / build.boot_timeout: positive, finite numbers of seconds -----------------

@pytest.mark.parametrize("key", ["timeout", "boot_timeout"])
@pytest.mark.parametrize("value", ["yes", "true", "no", ".nan", ".inf", "-.inf", "0", "-5", "0.0",
                                   "'60'"])
def test_build_timeouts_reject_booleans_nan_inf_and_non_positive(tmp_path: Path, key: str,
                                                                 value: str) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text(f"include: [{{}}]\nbuild:\n  targets: [kernel/module/]\n  {key}: {value}\n")
    with pytest.raises(InputError) as exc:
        load_matrix(path)
    assert exc.value.message.startswith(f"{path}:4: {key} must be a positive number of seconds")
    assert "\n" not in exc.value.message


@pytest.mark.parametrize("key", ["timeout", "boot_timeout"])
def test_build_timeouts_accept_positive_numbers(tmp_path: Path, key: str) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text(f"include: [{{}}]\nbuild: {{{key}: 0.5}}\n")
    build = load_matrix(path).build
    assert (build.timeout_s if key == "timeout" else build.boot_timeout_s) == 0.5


# --- one boot timeout default ------------------------------------------------------------------

def test_boot_timeout_default_has_one_source(tmp_path: Path) -> None:
    """matrix.py said 300 s, boot.py 180 s: a matrix without build.boot_timeout and a BootSpec
    without limit_s get the same limit."""
    path = tmp_path / "matrix.yaml"
    path.write_text("include: [{}]\n")
    default = load_matrix(path).build.boot_timeout_s
    assert BuildSettings().boot_timeout_s == default
    assert boot.DEFAULT_BOOT_LIMIT_S == default
    spec = boot.BootSpec(kernel=tmp_path / "bzImage", initramfs=tmp_path / "i.cpio",
                         work_dir=tmp_path, cmdline="console=ttyS0")
    assert spec.limit_s == default


# --- the README's matrix reference, verdicts and exit statuses ---------------------------------

def _readme() -> str:
    return (REPO / "README.md").read_text()


def _matrix_reference() -> str:
    found = re.search(r"^## matrix\.yaml\n+```yaml\n(.*?)^```", _readme(), re.M | re.S)
    assert found, "README.md has no ```yaml block under ## matrix.yaml"
    return found.group(1)


def test_readme_matrix_reference_names_every_key() -> None:
    doc = yaml.safe_load(_matrix_reference())
    include_keys = {k for entry in doc["include"] for k in entry}
    boot_keys = {k for entry in doc["include"] if isinstance(entry.get("boot"), dict)
                 for k in entry["boot"]}
    for allowed, shown in ((matrixmod.TOP_KEYS, set(doc)),
                           (matrixmod.KERNEL_KEYS, set(doc["kernel"])),
                           (matrixmod.INCLUDE_KEYS, include_keys),
                           (matrixmod.BOOT_KEYS, boot_keys),
                           (matrixmod.BUILD_KEYS, set(doc["build"]))):
        assert allowed <= shown, f"missing from the README's matrix.yaml: {sorted(allowed - shown)}"
    assert doc["build"]["boot_timeout"] == matrixmod.DEFAULT_BOOT_TIMEOUT_S


def test_readme_lists_every_verdict() -> None:
    found = re.search(r"^Verdicts: (.*?)\n\n", _readme(), re.M | re.S)
    assert found
    listed = set(re.findall(r"`([a-z-]+)`", found.group(1)))
    assert {v.value for v in Verdict} <= listed, sorted({v.value for v in Verdict} - listed)


def test_readme_gives_the_exit_statuses_of_bisect_and_explain() -> None:
    text = " ".join(_readme().split())
    assert re.search(r"`kmatrix bisect` and `kmatrix bisect-config` exit `0` when they found", text)
    assert re.search(r"`1` when they did not", text)
    assert re.search(r"`kmatrix explain` exits `0` when the value holds, `1` when it does not",
                     text)


# --- kmatrix run -- PYTEST_ARGS, and --lf -------------------------------------------------------

RUN_MATRIX = """\
config: {CONFIG_MODULES: y}
short_names: {CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups}
axes:
  CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
include:
  - id: stats
    config: {CONFIG_MODULE_STATS: y}
"""


class FakeRun:
    """`kmatrix run` with everything before and after pytest faked (no Docker, no kernel): the
    real pytest, the real kmatrix plugin, a fake run_combination that fails `failing`."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from harness.settings import RunSettings

        self.opts: list[session.Options] = []
        self.argv: list[list[str]] = []
        self.ran: list[str] = []
        self.failing: set[str] = set()
        (tmp_path / "matrix.yaml").write_text(RUN_MATRIX)
        monkeypatch.chdir(tmp_path)

        def prepare_run(opts: session.Options, say=print):
            self.opts.append(opts)
            matrix = load_matrix(opts.matrix)
            run_dir = (opts.results / f"run-{len(self.opts)}").resolve()
            run_dir.mkdir(parents=True)
            settings = RunSettings(run_id=run_dir.name, matrix_path=str(matrix.path),
                                   run_dir=str(run_dir), cache=str(tmp_path / "cache"),
                                   tree=str(tmp_path), kernel={}, image="fake", workers=1,
                                   only=list(opts.only))
            settings.save()
            return settings, matrix

        def run_combination(job: Job) -> Record:
            self.ran.append(job.combo.id)
            verdict = "build-error" if job.combo.id in self.failing else "pass"
            return Record(job.combo.id, "r", "m", {}, {}, status="done", verdict=verdict,
                          reasons=["fake"], reproducer="fake")

        real_main = pytest.main

        def main(argv: list[str], plugins: list[object] | None = None) -> int:
            self.argv.append(list(argv))
            return real_main(argv, plugins=plugins)

        monkeypatch.setattr(session, "prepare_run", prepare_run)
        monkeypatch.setattr(session, "finish_run", lambda settings, expected=None, interrupted=False: [])
        monkeypatch.setattr(pytest_plugin, "run_combination", run_combination)
        monkeypatch.setattr(RunSettings, "runner", lambda self: None)
        monkeypatch.setattr(pytest_plugin, "load_symbols", lambda run_dir: None)
        monkeypatch.setattr(pytest, "main", main)

    def __call__(self, *args: str) -> list[str]:
        self.ran = []
        cli.main(["run", *args])
        return self.ran


def test_run_passes_what_follows_double_dash_to_pytest(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`kmatrix run -- -k dups` (the example in `run --help`) took `-k` as the matrix path."""
    run = FakeRun(tmp_path, monkeypatch)
    assert run("--", "-k", "dups") == ["dups-y", "dups-n"]
    assert run.opts[-1].matrix == Path("matrix.yaml")
    assert run.argv[-1][-2:] == ["-k", "dups"]
    assert run("matrix.yaml", "--only", "stats", "--", "-k", "stats or dups") == ["stats"]
    assert run.opts[-1].only == ("stats",)
    assert run.argv[-1][-2:] == ["-k", "stats or dups"]


def test_run_last_failed_reruns_only_the_failed_combinations(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """--lf needs pytest's cache provider: it is on, with its cache in the results directory."""
    run = FakeRun(tmp_path, monkeypatch)
    run.failing = {"dups-n"}
    assert run() == ["dups-y", "dups-n", "stats"]
    assert "no:cacheprovider" not in run.argv[-1]
    assert (tmp_path / "results" / ".pytest_cache").is_dir()
    assert run("--", "--lf") == ["dups-n"]
    run.failing = set()
    assert run("--", "--lf") == ["dups-n"]
    assert run("--", "--lf") == ["dups-y", "dups-n", "stats"]  # nothing failed last: all
    assert not (tmp_path / ".pytest_cache").exists()


# --- list takes no --kernel; --bisect-new-failures does not swallow the matrix ------------------

def parsed(monkeypatch: pytest.MonkeyPatch, *argv: str) -> SimpleNamespace:
    """The namespace `kmatrix ARGV` hands its command (the command itself is not run)."""
    seen: list[SimpleNamespace] = []
    monkeypatch.setitem(cli.COMMANDS, argv[0], lambda args: seen.append(args) or 0)
    assert cli.main(list(argv)) == 0
    return seen[0]


def test_list_does_not_accept_kernel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kmatrix list` only reads the matrix: --kernel was accepted and ignored."""
    path = tmp_path / "matrix.yaml"
    path.write_text(RUN_MATRIX)
    with pytest.raises(SystemExit) as exc:
        cli.main(["list", str(path), "--kernel", str(tmp_path)])
    assert exc.value.code == 2
    assert "unrecognized arguments: --kernel" in capsys.readouterr().err
    assert cli.main(["list", str(path)]) == 0


@pytest.mark.parametrize(("argv", "matrix", "budget"), [
    (["--bisect-new-failures", "my.yaml"], "my.yaml", 1800.0),
    (["--bisect-new-failures", "my.yaml", "--only", "x"], "my.yaml", 1800.0),
    (["--bisect-new-failures=600", "my.yaml"], "my.yaml", 600.0),
    (["--bisect-new-failures", "600", "my.yaml"], "my.yaml", 600.0),
    (["my.yaml", "--bisect-new-failures"], "my.yaml", 1800.0),
    (["--bisect-new-failures", "--only", "x"], "matrix.yaml", 1800.0),
    (["--bisect-new-failures", "--", "-k", "dups"], "matrix.yaml", 1800.0),
    (["my.yaml"], "my.yaml", None),
    (["my.yaml", "--", "--bisect-new-failures", "x"], "my.yaml", None),
])
def test_bisect_new_failures_does_not_swallow_the_matrix(monkeypatch: pytest.MonkeyPatch,
                                                         argv: list[str], matrix: str,
                                                         budget: float | None) -> None:
    """`kmatrix run --bisect-new-failures my.yaml` failed as "invalid float value: 'my.yaml'"."""
    args = parsed(monkeypatch, "run", *argv)
    assert (args.matrix, args.bisect_new_failures) == (Path(matrix), budget)


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_bisect_new_failures_budget_must_be_positive_seconds(
        value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(cli.COMMANDS, "run", lambda args: pytest.fail(f"ran with {args}"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", f"--bisect-new-failures={value}"])
    assert exc.value.code == 2
    assert "--bisect-new-failures" in capsys.readouterr().err


# --- help everywhere; no dangling names; links stay in the repository ---------------------------

def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_argument_of_every_command_has_help() -> None:
    parser = cli.build_parser()
    missing = []
    commands = _subparsers(parser)
    assert set(commands) == set(cli.COMMANDS)
    for name, sub in [("kmatrix", parser), *commands.items()]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            missing += [f"kmatrix {c.dest}" for c in action._choices_actions if not c.help]
    assert missing == []


def test_every_nox_session_has_a_docstring() -> None:
    tree = ast.parse((REPO / "noxfile.py").read_text())
    sessions = [f for f in tree.body if isinstance(f, ast.FunctionDef) and any(
        "session" in ast.unparse(d) for d in f.decorator_list)]
    assert {f.name for f in sessions} >= {"matrix", "tests", "unit", "lint"}
    assert [f.name for f in sessions if not ast.get_docstring(f)] == []


def _docs() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
            *sorted((REPO / "benchmarks").rglob("*.md"))]


def test_relative_markdown_links_resolve_inside_the_repository() -> None:
    bad = []
    for doc in _docs():
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(REPO) or not path.exists():
                bad.append(f"{doc.relative_to(REPO)}: ({target})")
        # a relative path named in backticks is a link too: it must be a file of the repository
        for target in re.findall(r"`(\.\./[^`\s]+)`", text):
            path = (doc.parent / target).resolve()
            if not path.is_relative_to(REPO) or not path.exists():
                bad.append(f"{doc.relative_to(REPO)}: `{target}`")
    assert bad == []


def test_packages_txt_names_what_really_builds_the_image() -> None:
    """containers/packages.txt named a containers/build-offline.sh that does not exist."""
    text = (REPO / "containers" / "packages.txt").read_text()
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    named = re.findall(r"\b((?:containers|harness)/[\w./-]+\w)", comments)
    assert named, comments
    assert [n for n in named if not (REPO / n).exists()] == []
    assert "harness/image.py" in named


# --- the offline image build's Debian mirror: the host's own ---------------------------------

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://security.debian.org/debian-security bookworm-security main
deb-src http://src.example/debian bookworm main
deb [ arch=amd64 signed-by=/k.gpg ] http://ftp.de.debian.org/debian/ bookworm main contrib  # the mirror
deb http://[::1]:3142/debian bookworm main
deb http://second.example/debian bookworm main
"""

DEB822 = """\
# a comment
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb-src deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: https://mirror.example.org/debian
 http://other.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

THIRD_PARTY = """\
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
deb https://deb.nodesource.com/node_20.x nodistro main
deb http://deb.debian.org/debian bookworm-updates main
deb http://archive.ubuntu.com/ubuntu jammy main
"""


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list": ONE_LINE})
    assert image.apt_sources_mirror(root) == ("http://ftp.de.debian.org/debian",
                                              str(root / "sources.list"))
    (root / "sources.list").write_text("deb [trusted=yes] http://[::1]:3142/debian sid main\n")
    assert image.apt_sources_mirror(root) == ("http://[::1]:3142/debian", str(root / "sources.list"))


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert image.apt_sources_mirror(root) == ("https://mirror.example.org/debian",
                                              str(root / "sources.list.d" / "debian.sources"))


def test_mirror_skips_security_updates_and_other_archives(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list": THIRD_PARTY,
                              "sources.list.d/a.list": "deb cdrom:[Debian 12]/ bookworm main\n",
                              "sources.list.d/b.sources": DEB822.split("\n\n")[0] + "\n",
                              "sources.list.d/c.list.disabled": "deb http://x.example/debian bookworm main\n",
                              "sources.list.d/d.list": "deb http://found.example/debian stable main\n",
                              "sources.list.d/e.sources": DEB822})
    assert image.apt_sources_mirror(root) == ("http://found.example/debian",
                                              str(root / "sources.list.d" / "d.list"))


def test_mirror_order_is_apts(tmp_path: Path) -> None:
    """sources.list first, then sources.list.d/ by name, .list and .sources alike."""
    root = apt_dir(tmp_path, {"sources.list.d/10-a.sources": DEB822,
                              "sources.list.d/20-b.list": ONE_LINE})
    assert image.apt_sources_mirror(root)[0] == "https://mirror.example.org/debian"
    (root / "sources.list").write_text("deb http://first.example/debian bookworm main\n")
    assert image.apt_sources_mirror(root)[0] == "http://first.example/debian"


def test_no_debian_archive_in_the_sources_gives_the_default(tmp_path: Path) -> None:
    assert image.apt_sources_mirror(tmp_path / "nothing-here") is None
    root = apt_dir(tmp_path, {"sources.list": THIRD_PARTY + "# deb http://x.example/debian bookworm main\n"})
    assert image.apt_sources_mirror(root) is None
    url, origin = image.choose_mirror(None, {}, root)
    assert url == image.MIRROR == "http://deb.debian.org/debian"
    assert "default" in origin


def test_mirror_override_beats_env_beats_host(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list": ONE_LINE})
    env = {"KMATRIX_DEBIAN_MIRROR": "http://env.example/debian"}
    assert image.choose_mirror(None, {}, root) == ("http://ftp.de.debian.org/debian",
                                                   str(root / "sources.list"))
    assert image.choose_mirror(None, env, root) == ("http://env.example/debian",
                                                    "$KMATRIX_DEBIAN_MIRROR")
    assert image.choose_mirror("https://opt.example/debian", env, root) == (
        "https://opt.example/debian", "--mirror")
    with pytest.raises(InputError, match="not a mirror URL"):
        image.choose_mirror("deb.debian.org/debian", {}, root)


def test_offline_build_uses_and_prints_the_chosen_mirror(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMATRIX_DEBIAN_MIRROR", "http://env.example/debian")
    monkeypatch.setattr(image.shutil, "which", lambda name: "/usr/sbin/" + name)
    ran: list[list[str]] = []

    def run(argv: list[str], timeout_s: float, why: str) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 1, "", "E: Failed getting release file")

    monkeypatch.setattr(image, "run_bounded", run)
    said: list[str] = []
    spec = image.read_spec()
    with pytest.raises(InfraError, match="http://env.example/debian"):
        image.build_offline(None, spec, tmp_path, said.append)
    assert ran[0][-1] == "http://env.example/debian"
    assert any("http://env.example/debian" in line and "KMATRIX_DEBIAN_MIRROR" in line
               for line in said), said
    ran.clear()
    with pytest.raises(InfraError):
        image.build_offline(None, spec, tmp_path, said.append, mirror="http://opt.example/debian")
    assert ran[0][-1] == "http://opt.example/debian"
    assert image.debootstrap_argv(spec, tmp_path / "r", "http://m.example/debian")[-1] == \
        "http://m.example/debian"


def test_kmatrix_image_takes_a_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parsed(monkeypatch, "image", "--mirror", "http://m.example/debian")
    assert args.mirror == "http://m.example/debian"
    assert parsed(monkeypatch, "image").mirror is None
