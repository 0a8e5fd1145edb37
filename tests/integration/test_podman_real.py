"""Issue 14, runtimes: kmatrix under Podman (Debian 12's podman 4.3 serving its Docker-compatible
API, started by harness/scripts/start-podman), in real containers of the real builder image.

A small matrix of the object tier gives the same verdicts under Podman as under Docker; every
security setting of a step's container holds under Podman (checked from inside a real
container); the run's labels find and remove its containers; no Podman service is one line and
exit 3."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock
from testhelpers import REPO, run_kmatrix

from harness import container, image, ownership, runtime, source
from harness.container import DockerRunner, Mount, Step

pytestmark = pytest.mark.integration

START_PODMAN = REPO / "harness" / "scripts" / "start-podman"


@pytest.fixture(scope="module")
def podman_runtime() -> runtime.Runtime:
    """Podman's service, started if none answers (the script setup.sh runs too)."""
    done = subprocess.run([str(START_PODMAN)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return runtime.runtime("podman")


@pytest.fixture(scope="module")
def podman_client(podman_runtime: runtime.Runtime) -> object:
    return runtime.connect(podman_runtime)


@pytest.fixture(scope="module")
def podman_image(podman_client: object, podman_runtime: runtime.Runtime,
                 builder_image: str) -> str:
    """The builder image in Podman's storage, as `kmatrix run --runtime podman` makes it:
    copied from Docker's (made first: about 30 s), else built offline."""
    cache = source.cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / "podman-image.lock")):
        return image.ensure_image(podman_client, image.read_spec(), cache,
                                  donor=lambda: runtime.donor(podman_runtime))


def step(tmp_path: Path, script: str, name: str = "limits", timeout_s: float = 120) -> Step:
    return Step(name, ("sh", "-c", script), (Mount(tmp_path, read_only=False),),
                workdir=str(tmp_path), timeout_s=timeout_s, cpus=1.0, mem_bytes=512 << 20)


PROBE = """
exec > probe.txt 2>&1
echo "uid $(id -u):$(id -g)"
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status
touch /usr/kmatrix-x 2>/dev/null && echo "root rw" || echo "root ro"
touch /tmp/x && echo "tmp rw"
grep -E ' /tmp ' /proc/mounts | cut -d' ' -f3,4
echo "ifaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
echo "pid1 $(cat /proc/1/comm)"
echo "pids $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "mem $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
echo "memsw $(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo none)"
echo "home $HOME"
"""


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_every_security_setting_holds_under_both_runtimes(
        engine: str, podman_client: object, podman_image: str, builder_image: str,
        podman_runtime: runtime.Runtime, tmp_path: Path) -> None:
    rt = podman_runtime if engine == "podman" else runtime.runtime("docker")
    client = podman_client if engine == "podman" else runtime.connect(rt)
    runner = DockerRunner(podman_image if engine == "podman" else builder_image, client,
                          f"it-{engine}-probe", rt)
    log = io.StringIO()
    result = runner.run(step(tmp_path, PROBE), log)
    assert result.ok, log.getvalue()
    assert log.getvalue().startswith(f"\n$ {shlex.join(rt.cli)} run --rm ")
    seen = dict((line.split(None, 1) + [""])[:2]
                for line in (tmp_path / "probe.txt").read_text().splitlines())
    assert seen["uid"] == ownership.step_ids().spec and not seen["uid"].startswith("0:")
    assert seen["CapEff:"] == seen["CapBnd:"] == "0000000000000000"  # --cap-drop ALL
    assert seen["NoNewPrivs:"] == "1"  # no-new-privileges
    assert seen["root"] == "ro" and seen["tmp"] == "rw"  # --read-only, a tmpfs /tmp
    assert seen["tmpfs"].startswith("rw,nosuid,nodev")
    assert seen["ifaces"].split() == ["lo"]  # --network none
    assert seen["pid1"] == f"{engine}-init"  # --init (Podman's is catatonit)
    assert seen["pids"] == str(container.PIDS_LIMIT)
    assert seen["mem"] == str(512 << 20)
    assert seen["memsw"] in (str(512 << 20), "none")  # no swap beyond memory (if accounted)
    assert seen["home"] == "/tmp"


def test_a_fork_bomb_stops_at_the_pids_limit_under_podman(
        podman_client: object, podman_image: str, podman_runtime: runtime.Runtime,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 128
    monkeypatch.setattr(container, "PIDS_LIMIT", limit)
    script = (f"i=0; while [ $i -lt {4 * limit} ]; do sleep 600 & i=$((i+1)); "
              "echo $i > count; done 2>fork.err")
    runner = DockerRunner(podman_image, podman_client, "it-podman-fork", podman_runtime)
    result = runner.run(step(tmp_path, script), io.StringIO())
    assert result.exit_code not in (0, None)
    assert "cannot fork" in (tmp_path / "fork.err").read_text().lower()
    assert limit - 10 <= int((tmp_path / "count").read_text()) < limit


def test_the_run_labels_find_and_reap_its_containers_under_podman(
        podman_client: object, podman_image: str, podman_runtime: runtime.Runtime,
        tmp_path: Path) -> None:
    run_id = f"it-podman-reap-{os.getpid()}"
    runner = DockerRunner(podman_image, podman_client, run_id, podman_runtime)
    outcome: list[object] = []

    def long_step() -> None:
        try:
            outcome.append(runner.run(step(tmp_path, "sleep 300", "sleeper"), io.StringIO()))
        except Exception as exc:  # noqa: BLE001 - removed under it: any end is fine here
            outcome.append(exc)

    worker = threading.Thread(target=long_step, daemon=True)
    worker.start()
    mine: list = []
    for _ in range(120):
        mine = podman_client.containers.list(  # type: ignore[attr-defined]
            filters={"label": f"{container.RUN_LABEL}={run_id}"})
        if mine:
            break
        time.sleep(0.5)
    assert len(mine) == 1
    labels = mine[0].labels
    assert labels[container.LABEL] == "sleeper"
    assert labels[container.WORKDIR_LABEL] == str(tmp_path)
    assert labels[container.OWNER_LABEL].endswith(f":{os.getpid()}")
    removed = container.reap(podman_client, run_id)
    # reap also removes what dead runs left in this engine (a CI run whose service could
    # not start containers left four): only this run's sleeper is asserted
    ours = [r for r in removed if f"({mine[0].short_id})" in r]
    assert len(ours) == 1 and ours[0].startswith("sleeper ("), removed
    assert podman_client.containers.list(  # type: ignore[attr-defined]
        all=True, filters={"label": f"{container.RUN_LABEL}={run_id}"}) == []
    worker.join(timeout=60)
    assert not worker.is_alive() and outcome
    assert not podman_client.containers.list(  # type: ignore[attr-defined]
        all=True, filters={"label": f"{container.RUN_LABEL}={run_id}"})


def test_no_podman_service_is_one_line_and_exit_3(tmp_path: Path, kernel_tree: Path) -> None:
    m = tmp_path / "matrix.yaml"
    m.write_text(f"kernel: {{source: {kernel_tree}, arch: x86_64}}\nbase: tinyconfig\n"
                 "config: {CONFIG_MODULES: y}\ninclude:\n  - {id: it-nopodman, config: {}}\n")
    absent = tmp_path / "nothing-here" / "podman.sock"
    done = run_kmatrix("run", str(m), "--results", str(tmp_path / "res"), "--runtime", "podman",
                       env={runtime.PODMAN_SOCKET_ENV: str(absent)}, timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"no Podman service answers at unix://{absent}" in done.stderr
    assert "harness/scripts/start-podman" in done.stderr


SMALL = """
kernel: {{source: {tree}, arch: x86_64}}
base: tinyconfig
config: {{CONFIG_MODULES: y, CONFIG_DEBUG_FS: y, CONFIG_MODULE_DEBUG: y}}
short_names: {{CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: dups}}
axes:
  CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS: [y, n]
include:
  - {{id: dropped, config: {{CONFIG_MODULE_UNLOAD_TAINT_TRACKING: y}}}}
  - {{id: wrong-expect, config: {{CONFIG_MODULE_STATS: y}}}}
build: {{targets: [kernel/module/]}}
expect:
  kernel/module/:
    main.o: y
    strict_rwx.o: y
    kmod.o: y
    dups.o: MODULE_DEBUG_AUTOLOAD_DUPS
    tree_lookup.o: MODULES_TREE_LOOKUP
    stats.o: n  # wrong for wrong-expect, which asks for MODULE_STATS
"""
VERDICTS = {"dups-y": "pass", "dups-n": "pass", "dropped": "config-dropped",
            "wrong-expect": "link-mismatch"}


def verdicts(results_dir: Path) -> dict[str, str]:
    latest = results_dir / "latest"
    return {p.parent.name: json.loads(p.read_text())["verdict"]
            for p in latest.glob("*/record.json")}


def test_a_small_matrix_gives_the_same_verdicts_under_podman_as_under_docker(
        tmp_path: Path, kernel_tree: Path, builder_image: str, podman_image: str) -> None:
    m = tmp_path / "matrix.yaml"
    m.write_text(SMALL.format(tree=kernel_tree))
    seen = {}
    for name in ("docker", "podman"):
        res = tmp_path / f"res-{name}"
        done = run_kmatrix("run", str(m), "--results", str(res), "--runtime", name,
                           "--workers", "1", "--jobs", "2", "--no-boot", timeout=1800)
        assert done.returncode == 1, done.stdout + done.stderr  # two kernel failures
        seen[name] = verdicts(res)
        run = json.loads((res / "latest" / "run.json").read_text())
        assert run["runtime"] == name
        assert run["runtime_version"].lower().startswith(name)
        build_log = (res / "latest" / "dups-y" / "build.log").read_text()
        first = f"$ {runtime.runtime(name).cli[0]} " + \
            ("--url " if name == "podman" else "run ")
        assert first in build_log
        reproducer = (res / "latest" / "dups-y" / "reproducer.sh").read_text()
        commands = [line for line in reproducer.splitlines() if line.startswith(("docker", "podman"))]
        assert commands and all(c.startswith(runtime.runtime(name).cli[0] + " ") for c in commands)
        meta = json.loads((res / "latest" / "dups-y" / "metadata.json").read_text())
        assert meta["build"]["runtime"] == name
    assert seen["docker"] == VERDICTS, seen
    assert seen["podman"] == seen["docker"]


def test_a_container_podman_cannot_start_is_removed_at_once(
        podman_client: object, podman_image: str, podman_runtime: runtime.Runtime,
        tmp_path: Path) -> None:
    """A step whose device is missing: Podman refuses it (at create or at start), the step is
    an infrastructure error naming it, and no container of the run is left behind."""
    from harness.verdict import InfraError

    run_id = f"it-podman-start-{os.getpid()}"
    runner = DockerRunner(podman_image, podman_client, run_id, podman_runtime)
    bad = Step("needs-a-device", ("true",), (Mount(tmp_path, read_only=False),),
               workdir=str(tmp_path), timeout_s=30, devices=("/dev/kmatrix-no-such-device",))
    with pytest.raises(InfraError, match="could not start step needs-a-device"):
        runner.run(bad, io.StringIO())
    left = podman_client.containers.list(  # type: ignore[attr-defined]
        all=True, filters={"label": f"{container.RUN_LABEL}={run_id}"})
    assert left == []
