"""Steps never run as root; the directories they write are handed to the uid they run as."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import container, ownership
from harness.container import Mount, Step


def test_root_runs_steps_as_the_unprivileged_build_uid() -> None:
    assert ownership.step_ids(0, 0) == ownership.Ids(ownership.BUILD_UID, ownership.BUILD_UID)
    assert ownership.step_ids(1000, 1000) == ownership.Ids(1000, 1000)
    assert ownership.BUILD_UID != 0


def _tree(tmp_path: Path) -> Path:
    top = tmp_path / "out"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f.o").write_text("x")
    (top / ".config").write_text("CONFIG_X=y\n")
    outside = tmp_path / "outside"
    outside.write_text("not the step's")
    (top / "link").symlink_to(outside)
    return top


@pytest.mark.skipif(os.getuid() != 0, reason="only root hands directories over")
def test_every_entry_is_handed_over_links_not_followed(tmp_path: Path) -> None:
    top = _tree(tmp_path)
    ids = ownership.Ids(ownership.BUILD_UID, ownership.BUILD_UID)
    changed = ownership.hand_over(top, ids)
    assert changed == 6  # out, a, b, f.o, .config, the link itself
    for p in (top, top / "a", top / "a" / "b", top / "a" / "b" / "f.o", top / ".config"):
        assert (p.stat().st_uid, p.stat().st_gid) == (ids.uid, ids.gid)
    assert (top / "link").lstat().st_uid == ids.uid
    assert (tmp_path / "outside").stat().st_uid == 0  # the link's target is not the step's
    assert ownership.hand_over(top, ids) == 0  # the second time: nothing to do


def test_the_walk_changes_only_what_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = _tree(tmp_path)
    calls: list[str] = []
    monkeypatch.setattr(ownership.os, "getuid", lambda: 0)
    me = ownership.Ids(os.stat(top).st_uid, os.stat(top).st_gid)
    assert ownership.hand_over(top, me, chown=lambda p, u, g: calls.append(p)) == 0
    other = ownership.Ids(me.uid + 1, me.gid)
    ownership.hand_over(top, other, chown=lambda p, u, g: calls.append(p))
    assert sorted(Path(c).name for c in calls) == sorted(
        ["out", "a", "b", "f.o", ".config", "link"])


def test_nothing_is_handed_over_when_not_root_or_to_root(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    top = _tree(tmp_path)
    fail = lambda p, u, g: pytest.fail(f"chown {p}")  # noqa: E731
    monkeypatch.setattr(ownership.os, "getuid", lambda: 1000)
    assert ownership.hand_over(top, ownership.Ids(65532, 65532), chown=fail) == 0
    monkeypatch.setattr(ownership.os, "getuid", lambda: 0)
    assert ownership.hand_over(top, ownership.Ids(0, 0), chown=fail) == 0
    assert ownership.hand_over(Path("/"), ownership.Ids(65532, 65532), chown=fail) == 0


def test_the_run_line_and_the_engine_get_the_unprivileged_user(monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setattr(ownership.os, "getuid", lambda: 0)
    monkeypatch.setattr(ownership.os, "getgid", lambda: 0)
    step = Step("s", ("true",), (Mount(Path("/x"), read_only=False),), workdir="/x")
    line = container.docker_run_line("img", step)
    assert f"--user {ownership.BUILD_UID}:{ownership.BUILD_UID}" in line
    from test_container_faults import FakeClient, FakeContainer

    client = FakeClient(FakeContainer(0))
    container.DockerRunner("img", client).run(step, __import__("io").StringIO())
    assert client.kwargs["user"] == f"{ownership.BUILD_UID}:{ownership.BUILD_UID}"
