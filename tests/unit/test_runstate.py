"""Issue 10, item 2: a run stopped by SIGTERM or killed by SIGKILL. Every test here failed
before the fix: the containers of a stopped run were never looked for, records stayed
`running`, no reports were written on SIGTERM and results/latest kept naming the run before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_rough_edges import FakeRun

from harness import cli, container, results, runstate, session
from harness.compare import previous_comparable_run
from harness.results import Record
from harness.verdict import EXIT_INFRA, EXIT_INTERRUPTED, Verdict


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def dead_owner() -> str:
    return f"{runstate.owner_id().rpartition(':')[0]}:{dead_pid()}"


# --- state.json -----------------------------------------------------------------------------------

def test_a_running_run_whose_process_is_gone_is_killed(tmp_path: Path) -> None:
    runstate.begin(tmp_path)
    assert runstate.load(tmp_path).effective == runstate.RUNNING  # this process: alive
    runstate.save(tmp_path, runstate.RunState(runstate.RUNNING, dead_owner()))
    assert runstate.load(tmp_path).effective == runstate.KILLED
    assert "was killed before it finished" in runstate.incomplete_reason(tmp_path)
    assert not runstate.is_finished_run(tmp_path)


def test_an_owner_on_another_host_is_never_declared_dead() -> None:
    assert runstate.owner_alive(f"some-other-host:{dead_pid()}")


def test_only_complete_runs_and_runs_from_before_state_files_are_finished(tmp_path: Path) -> None:
    assert runstate.is_finished_run(tmp_path)  # no state.json: an older run directory
    runstate.begin(tmp_path)
    runstate.end(tmp_path, runstate.INTERRUPTED)
    assert not runstate.is_finished_run(tmp_path)
    assert "did not finish (interrupted)" in runstate.incomplete_reason(tmp_path)
    runstate.end(tmp_path, runstate.COMPLETE)
    assert runstate.is_finished_run(tmp_path) and runstate.incomplete_reason(tmp_path) == ""
    (tmp_path / "state.json").write_text("{not json")
    assert runstate.load(tmp_path) is None


# --- signals -------------------------------------------------------------------------------------

def test_sigterm_takes_the_ctrl_c_path() -> None:
    with pytest.raises(KeyboardInterrupt), runstate.terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # let the handler run
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_signal_while_the_reports_are_written_waits_for_them() -> None:
    written = []
    with pytest.raises(KeyboardInterrupt), runstate.signals_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        written.append("summary.md")  # still reached: the signal is held back
    assert written == ["summary.md"]


# --- containers ---------------------------------------------------------------------------------

class FakeContainer:
    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.labels, self.short_id, self.removed = labels, name, False

    def remove(self, force: bool = False) -> None:
        self.removed = force


def test_reap_removes_the_runs_containers_and_those_of_dead_owners_only() -> None:
    me = runstate.owner_id()
    mine = FakeContainer("mine", {container.RUN_LABEL: "r1", container.OWNER_LABEL: me})
    other_live = FakeContainer("live", {container.RUN_LABEL: "r2", container.OWNER_LABEL: me})
    orphan = FakeContainer("orphan", {container.RUN_LABEL: "r3",
                                      container.OWNER_LABEL: dead_owner()})
    remote = FakeContainer("remote", {container.RUN_LABEL: "r4",
                                      container.OWNER_LABEL: "elsewhere:1"})
    asked = {}

    def list_(**kwargs: object) -> list[FakeContainer]:
        asked.update(kwargs)
        return [mine, other_live, orphan, remote]

    client = SimpleNamespace(containers=SimpleNamespace(list=list_))
    removed = container.reap(client, "r1")
    assert [c.short_id for c in (mine, other_live, orphan, remote) if c.removed] == \
        ["mine", "orphan"]
    assert len(removed) == 2
    assert asked == {"all": True, "filters": {"label": container.OWNER_LABEL}}


def test_reap_with_no_engine_removes_nothing_and_does_not_raise() -> None:
    def broken(**kwargs: object) -> list[FakeContainer]:
        raise ConnectionError("engine gone")

    assert container.reap(SimpleNamespace(containers=SimpleNamespace(list=broken))) == []


# --- records and reports ------------------------------------------------------------------------

def record(combo: str, status: str = "done", verdict: str = "pass") -> Record:
    return Record(combo, "run", "m", {}, {}, status=status, verdict=verdict)


def test_unfinished_records_become_interrupted_never_a_kernel_verdict(tmp_path: Path) -> None:
    results.write_record(tmp_path, record("a"))
    results.write_record(tmp_path, record("b", status="running", verdict=""))
    assert results.mark_unfinished(tmp_path, "interrupted") == 1
    by = {r.combination: r for r in results.read_records(tmp_path)}
    assert by["a"].final is Verdict.PASS
    assert by["b"].status == "interrupted" and by["b"].final is Verdict.INFRA_ERROR
    assert by["b"].reasons[-1] == "interrupted"


def test_summary_of_a_killed_run_lists_every_selected_combination_and_exits_infra(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "20261130T000000Z-0001"
    run_dir.mkdir()
    results.write_record(run_dir, record("a"))
    results.write_record(run_dir, record("b", status="running", verdict=""))
    runstate.save(run_dir, runstate.RunState(runstate.RUNNING, dead_owner(),
                                             expected=["a", "b", "c"]))
    assert cli.main(["summary", str(run_dir)]) == EXIT_INFRA
    out, err = capsys.readouterr()
    assert "was killed before it finished" in err
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()
            if line.split() and line.split()[0] in ("a", "b", "c")}
    assert rows == {"a": "pass", "b": "interrupted", "c": "infra-error"}


def test_a_stopped_run_is_never_the_baseline_of_a_comparison(tmp_path: Path) -> None:
    def run(name: str, how: str | None) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "run.json").write_text(json.dumps({"matrix_path": "m.yaml"}))
        if how:
            runstate.save(path, runstate.RunState(how, runstate.owner_id()))
        return path

    old = run("20261128T000000Z-0001", None)  # before state files
    run("20261129T000000Z-0001", runstate.INTERRUPTED)
    current = run("20261130T000000Z-0001", runstate.RUNNING)
    assert previous_comparable_run(tmp_path, current) == old


def test_sigterm_during_a_run_marks_writes_and_exits_130(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole `kmatrix run` path with pytest real and the steps faked: SIGTERM in the
    second combination's step; the third never starts. Reports cover all three."""
    run = FakeRun(tmp_path, monkeypatch)
    reaped: list[str] = []
    monkeypatch.setattr(container, "reap_run", lambda run_id, *_: reaped.append(run_id) or [])
    monkeypatch.setattr(session, "finish_run", FINISH_RUN)  # the real one, FakeRun's undone
    from harness import pytest_plugin

    fake = pytest_plugin.run_combination

    def stop_in_second(job: object) -> Record:
        if run.ran:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
        return fake(job)

    monkeypatch.setattr(pytest_plugin, "run_combination", stop_in_second)
    with pytest.raises(SystemExit) as stopped:
        raise SystemExit(cli.main(["run"]))
    assert stopped.value.code == EXIT_INTERRUPTED
    run_dir = next((tmp_path / "results").glob("run-*"))
    assert reaped == [run_dir.name]
    summary = (run_dir / "summary.md").read_text()
    assert all(c in summary for c in ("dups-y", "dups-n", "stats"))
    assert "name=\"stats\"" in (run_dir / "junit.xml").read_text()
    assert runstate.load(run_dir).state == runstate.INTERRUPTED


FINISH_RUN = session.finish_run  # the real one, before FakeRun replaces it


def test_a_damaged_resolve_memo_is_resolved_again_and_a_damaged_resolve_json_is_one_line(
        tmp_path: Path) -> None:
    """Issue 10, item 8: before the fix both ended in a traceback."""
    import io

    from harness import resolve
    from harness.verdict import InfraError

    known = tmp_path / "abc.json"
    known.write_text('{"combination": "x", "config_ha')
    log = io.StringIO()
    assert resolve.remembered(known, "x", log) is None and not known.exists()
    assert "is damaged (JSONDecodeError): resolving again" in log.getvalue()
    (tmp_path / resolve.RESOLVE_FILE).write_text("[1, 2")
    with pytest.raises(InfraError, match="is damaged .*rerun the matrix"):
        resolve.load(tmp_path)
