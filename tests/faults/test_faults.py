"""The fault-injection suite (issue 10): real faults against real runs, each judged by the
same criteria -- the exit status, the verdicts, no traceback, every combination with a whole
record, no container left, and (where the fault is gone) a rerun with the verdicts of a run
that met no fault. docs/reliability.md lists every case with its measured outcome.

The engine faults run on the suite's own dockerd (tests/faults/engine.py), never on the
machine's. Cases marked slow_fault run in `nox -s faults` only.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from faults.conftest import (
    COMBOS,
    assert_sound,
    container_of,
    finish,
    kmatrix,
    run_to_end,
    start_run,
    wait_for,
    write_matrix,
)
from faults.engine import Engine
from harness.verdict import EXIT_BAD_INPUT, EXIT_INFRA, EXIT_OK

pytestmark = pytest.mark.integration
slow = pytest.mark.slow_fault

OWN = ("--trees", "own")


@pytest.fixture
def smp(tmp_path):
    """A combination whose build takes long enough to be hit: SMP changes most of what
    `prepare` generates, and it builds vmlinux. A new id each test, run with
    `--trees own`: its own tree, a fresh copy of the seed (the warm tree of an earlier run
    would build nothing, and the fault would hit no build). Its trees are removed after."""
    combo = f"f-smp-{secrets.token_hex(3)}"
    yield combo
    for record in tmp_path.glob(f"*/*/{combo}/record.json"):
        out = json.loads(record.read_text()).get("output_dir")
        if out and Path(out).name.startswith(combo):
            shutil.rmtree(out, ignore_errors=True)


def long_matrix(path: Path, tree: Path, combo: str, timeout: float = 1800) -> Path:
    # vmlinux: `kernel/module/` alone is a dozen objects, built in 3 to 6 s even from nothing
    m = write_matrix(path, tree, targets="[vmlinux]", timeout=timeout)
    m.write_text(m.read_text() + f"  - {{id: {combo}, config: {{CONFIG_SMP: y}}}}\n")
    return m


def first_done(results: Path) -> bool:
    return any('"status": "done"' in p.read_text() for p in results.glob("*/*/record.json"))


# --- the engine ----------------------------------------------------------------------------

def test_engine_killed_after_the_first_combination(tmp_path, kernel_tree, live_engine: Engine):
    """The engine crashes (SIGKILL) once the first combination finished: the others are
    infra-error naming Docker, exit 3; with the engine back, a rerun passes them all."""
    m = write_matrix(tmp_path, kernel_tree)
    proc, out = start_run(m, tmp_path / "res", live_engine.env)
    wait_for(lambda: first_done(tmp_path / "res"), "the first combination finished")
    live_engine.stop(signal.SIGKILL)
    result = finish(proc, out, tmp_path / "res")
    assert result.code == EXIT_INFRA, result.out[-2000:]
    assert_sound(result, None, COMBOS)
    done = [c for c, v in result.verdicts.items() if v == "pass"]
    assert len(done) >= 1
    for combo in set(COMBOS) - set(done):
        assert result.verdicts[combo] == "infra-error"
        assert any("Docker" in r for r in result.reasons[combo]), result.reasons[combo]
    live_engine.start()
    again = run_to_end(m, tmp_path / "res2", live_engine.env)
    assert again.code == EXIT_OK and set(again.verdicts.values()) == {"pass"}, again.out[-2000:]
    assert_sound(again, live_engine, COMBOS)


@slow
def test_engine_restarted_during_a_build(tmp_path, kernel_tree, smp, live_engine: Engine):
    m = long_matrix(tmp_path, kernel_tree, smp)
    proc, out = start_run(m, tmp_path / "res", live_engine.env, "--only", smp, *OWN)
    container_of(live_engine, "build")
    live_engine.restart()
    result = finish(proc, out, tmp_path / "res")
    assert result.code == EXIT_INFRA, result.out[-2000:]
    # (the run may end while the engine is still coming back: its stopped container is then
    # removed by the next run, checked below)
    assert_sound(result, None, [smp])
    assert result.verdicts[smp] == "infra-error"
    assert any("Docker" in r for r in result.reasons[smp]), result.reasons
    again = run_to_end(m, tmp_path / "res2", live_engine.env, "--only", smp, *OWN)
    assert again.verdicts == {smp: "pass"}, again.out[-2000:]
    assert_sound(again, live_engine, [smp])


@slow
def test_build_killed_for_memory_is_infra_error(tmp_path, kernel_tree, smp, live_engine: Engine):
    m = long_matrix(tmp_path, kernel_tree, smp)
    proc, out = start_run(m, tmp_path / "res", live_engine.env, "--only", smp, *OWN)
    box = container_of(live_engine, "build")
    live_engine.docker("update", "--memory", "24m", "--memory-swap", "24m", box)
    result = finish(proc, out, tmp_path / "res")
    assert result.code == EXIT_INFRA, result.out[-2000:]
    assert_sound(result, live_engine, [smp])
    assert result.verdicts[smp] == "infra-error"
    assert any("memory" in r for r in result.reasons[smp]), result.reasons
    again = run_to_end(m, tmp_path / "res2", live_engine.env, "--only", smp, *OWN)
    assert again.verdicts == {smp: "pass"}, again.out[-2000:]


@slow
def test_step_timeout_mid_compile_then_rerun_in_the_same_tree(tmp_path, kernel_tree, smp,
                                                             live_engine: Engine):
    """A build stopped at its limit leaves its tree dirty; the rerun repairs it (removes what
    the stopped step wrote) and gives the verdict of an unharmed run."""
    m = long_matrix(tmp_path, kernel_tree, smp, timeout=3)
    result = run_to_end(m, tmp_path / "res", live_engine.env, "--only", smp, *OWN)
    assert result.verdicts == {smp: "infra-error"}, result.out[-2000:]
    assert any("timed out" in r for r in result.reasons[smp]), result.reasons
    assert_sound(result, live_engine, [smp])
    m = long_matrix(tmp_path, kernel_tree, smp)
    again = run_to_end(m, tmp_path / "res2", live_engine.env, "--only", smp, *OWN)
    assert again.verdicts == {smp: "pass"}, again.out[-2000:]
    log = (again.run_dir / smp / "build.log").read_text()
    assert "was left by a stopped step: removed the" in log


@slow
def test_ctrl_c_mid_compile_then_rerun_in_the_same_tree(tmp_path, kernel_tree, smp,
                                                        live_engine: Engine):
    """Ctrl-C while make compiles: exit 130, the record `interrupted`, no container left, the
    tree marked dirty; the rerun repairs the tree and passes."""
    m = long_matrix(tmp_path, kernel_tree, smp)
    # no compiler cache: with it, the warm ccache builds the whole combination in seconds
    proc, out = start_run(m, tmp_path / "res", live_engine.env, "--only", smp, *OWN,
                          "--no-ccache")
    container_of(live_engine, "build")
    time.sleep(5)  # well inside the compile
    proc.send_signal(signal.SIGINT)
    result = finish(proc, out, tmp_path / "res")
    assert result.code == 130, result.out[-2000:]
    assert result.verdicts[smp] in ("interrupted", "infra-error"), result.out[-2000:]
    record = json.loads((result.run_dir / smp / "record.json").read_text())
    assert record["status"] == "interrupted"
    assert (Path(record["output_dir"]) / ".kmatrix-dirty").is_file()
    assert_sound(result, live_engine, [smp])
    again = run_to_end(m, tmp_path / "res2", live_engine.env, "--only", smp, *OWN,
                       "--no-ccache")
    assert again.verdicts == {smp: "pass"}, again.out[-2000:]
    log = (again.run_dir / smp / "build.log").read_text()
    assert "was left by a stopped step: removed the" in log
    assert_sound(again, live_engine, [smp])


@slow
def test_a_paused_build_is_infra_error(tmp_path, kernel_tree, smp, live_engine: Engine):
    m = long_matrix(tmp_path, kernel_tree, smp, timeout=40)
    proc, out = start_run(m, tmp_path / "res", live_engine.env, "--only", smp, *OWN)
    live_engine.docker("pause", container_of(live_engine, "build"))
    result = finish(proc, out, tmp_path / "res")
    assert result.verdicts == {smp: "infra-error"}, result.out[-2000:]
    assert any("paused" in r for r in result.reasons[smp]), result.reasons
    assert_sound(result, live_engine, [smp])


@slow
def test_two_runs_on_one_cache_while_a_prune_loops(tmp_path, kernel_tree, live_engine: Engine):
    """`kmatrix cache --prune 0` (everything not in use) every second while two runs share a
    fresh cache: trees and seeds in use are never removed under a run; whatever it removes
    between combinations is remade. Both runs pass everything."""
    m = write_matrix(tmp_path, kernel_tree)
    env = {**live_engine.env, "KMATRIX_CACHE": str(tmp_path / "cache")}
    runs = [start_run(m, tmp_path / f"res{i}", env) for i in (1, 2)]
    pruned = 0
    while any(proc.poll() is None for proc, _ in runs):
        done = kmatrix("cache", "--prune", "0", env=env, timeout=300)
        assert done.returncode == EXIT_OK and "Traceback" not in done.stderr, done.stderr
        pruned += done.stdout.count("removed ")
        time.sleep(1)
    for i, (proc, out) in enumerate(runs, 1):
        result = finish(proc, out, tmp_path / f"res{i}")
        assert result.code == EXIT_OK, result.out[-3000:]
        assert set(result.verdicts.values()) == {"pass"}
        assert_sound(result, live_engine, COMBOS)
    print(f"prune removed {pruned} tree(s) while the runs went on")


# --- boots (the default matrix's boot kernel, warm in the machine's cache) -------------------

DEFAULT_MATRIX = Path(__file__).resolve().parents[2] / "matrix.yaml"
BOOT = ("--only", "boot-dups-on")
HOLD_S = 10


def held_boot_matrix(path: Path, boot_timeout: int | None = None) -> Path:
    """The default matrix with boot-dups-on's guest modprobe held HOLD_S seconds a run
    (`kmatrix.modprobe_hold`, harness/guest/modprobe): its boot lasts half a minute, long
    enough to be hit while it runs (it otherwise ends about a second after QEMU starts)."""
    import yaml

    matrix = yaml.safe_load(DEFAULT_MATRIX.read_text())
    for combo in matrix["include"]:
        if combo["id"] == "boot-dups-on":
            combo["boot"] = {"cmdline": f"kmatrix.modprobe_hold={HOLD_S}"}
    if boot_timeout is not None:
        matrix.setdefault("build", {})["boot_timeout"] = boot_timeout
    path.write_text(yaml.safe_dump(matrix, sort_keys=False))
    return path


@slow
def test_engine_restarted_during_a_boot(tmp_path, live_engine: Engine):
    m = held_boot_matrix(tmp_path / "matrix.yaml")
    proc, out = start_run(m, tmp_path / "res", live_engine.env, *BOOT, boot=True)
    container_of(live_engine, "boot-tcg", timeout=1800)
    time.sleep(3)
    live_engine.restart()
    result = finish(proc, out, tmp_path / "res")
    assert result.code == EXIT_INFRA, result.out[-2000:]
    assert result.verdicts == {"boot-dups-on": "infra-error"}, result.reasons
    assert_sound(result, None, ["boot-dups-on"])
    proc, out = start_run(m, tmp_path / "res2", live_engine.env, *BOOT, boot=True)
    again = finish(proc, out, tmp_path / "res2")
    assert again.verdicts == {"boot-dups-on": "pass"}, again.out[-2000:]
    assert_sound(again, live_engine, ["boot-dups-on"])


@slow
def test_boot_killed_for_memory_is_infra_error(tmp_path, live_engine: Engine):
    m = held_boot_matrix(tmp_path / "matrix.yaml")
    proc, out = start_run(m, tmp_path / "res", live_engine.env, *BOOT, boot=True)
    box = container_of(live_engine, "boot-tcg", timeout=1800)
    # memory pressure from inside: a limit just above what the container holds now (cgroup v1
    # takes no less), then a process that eats memory until the OOM killer picks its victim,
    # the biggest process: QEMU
    usage = live_engine.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", box).stdout
    held = float(usage.split("/")[0].strip().removesuffix("MiB").removesuffix("GiB"))
    live_engine.docker("update", "--memory", f"{int(held) + 64}m", "--memory-swap",
                       f"{int(held) + 64}m", box)
    live_engine.docker("exec", "-d", box, "tail", "/dev/zero", check=False)
    result = finish(proc, out, tmp_path / "res")
    assert result.verdicts == {"boot-dups-on": "infra-error"}, (result.reasons, result.out[-2000:])
    assert_sound(result, live_engine, ["boot-dups-on"])


@slow
def test_a_frozen_qemu_is_infra_error_not_boot_timeout(tmp_path, live_engine: Engine):
    """`docker pause` of the boot container while QEMU boots: its console stops, the boot is
    stopped at its limit (40 s here) and named paused from outside, never `boot-timeout`;
    unpaused, a rerun passes."""
    m = held_boot_matrix(tmp_path / "matrix.yaml", boot_timeout=40)
    proc, out = start_run(m, tmp_path / "res", live_engine.env, *BOOT, boot=True)
    box = container_of(live_engine, "boot-tcg", timeout=1800)
    time.sleep(2)
    live_engine.docker("pause", box)
    result = finish(proc, out, tmp_path / "res")
    assert result.code == EXIT_INFRA, result.out[-2000:]
    assert result.verdicts == {"boot-dups-on": "infra-error"}, result.reasons
    assert any("paused from outside" in r for r in result.reasons["boot-dups-on"]), \
        result.reasons
    assert_sound(result, live_engine, ["boot-dups-on"])
    proc, out = start_run(m, tmp_path / "res2", live_engine.env, *BOOT, boot=True)
    again = finish(proc, out, tmp_path / "res2")
    assert again.verdicts == {"boot-dups-on": "pass"}, again.out[-2000:]
    assert_sound(again, live_engine, ["boot-dups-on"])


@slow
def test_a_loaded_host_during_a_boot_is_never_a_kernel_verdict(tmp_path, live_engine: Engine):
    """stress-ng on every core (4 workers per core) for the whole boot: the boot passes (late),
    or is infra-error naming the slow host; never boot-timeout or boot-fail."""
    import os

    stress = subprocess.Popen(["stress-ng", "--cpu", str(4 * (os.cpu_count() or 1)),
                               "--timeout", "900s", "--quiet"])
    try:
        proc, out = start_run(DEFAULT_MATRIX, tmp_path / "res", live_engine.env, *BOOT,
                              boot=True)
        result = finish(proc, out, tmp_path / "res")
    finally:
        stress.terminate()
        stress.wait()
    verdict = result.verdicts["boot-dups-on"]
    assert verdict in ("pass", "infra-error"), (verdict, result.reasons)
    if verdict == "infra-error":
        assert any("too slow" in r for r in result.reasons["boot-dups-on"]), result.reasons
    assert_sound(result, live_engine, ["boot-dups-on"])


# --- disks ---------------------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB filesystem, full."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={mnt / 'fill'}", "bs=64k"],
                       capture_output=True, check=False)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_results_on_a_full_disk(tmp_path, kernel_tree, full_disk):
    m = write_matrix(tmp_path, kernel_tree)
    done = kmatrix("run", str(m), "--results", str(full_disk / "res"), timeout=300)
    assert done.returncode == EXIT_INFRA, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "free some space" in lines[0], done.stderr
    assert not list(full_disk.glob("res/*/"))  # no half-made run directory


def test_cache_on_a_full_disk(tmp_path, kernel_tree, full_disk):
    m = write_matrix(tmp_path, kernel_tree)
    done = kmatrix("run", str(m), "--results", str(tmp_path / "res"),
                   env={"KMATRIX_CACHE": str(full_disk / "cache")}, timeout=300)
    assert done.returncode == EXIT_INFRA, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "free" in done.stderr, done.stderr


# --- corrupted state -----------------------------------------------------------------------

def test_corrupted_records_and_a_dangling_latest(tmp_path):
    results = tmp_path / "res"
    run_dir = results / "20261130T000000Z-0001"
    (run_dir / "f-plain").mkdir(parents=True)
    (run_dir / "f-dups").mkdir()
    (run_dir / "f-plain" / "record.json").write_text('{"combination": "f-plain", "verd')
    (run_dir / "f-dups" / "record.json").write_bytes(b"\xff\xfe\x00garbage")
    done = kmatrix("summary", str(run_dir), timeout=60)
    assert done.returncode == EXIT_INFRA, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "f-plain" in done.stdout and "f-dups" in done.stdout
    (results / "latest").symlink_to("20261129T000000Z-gone")
    done = kmatrix("summary", str(results / "latest"), timeout=60)
    assert done.returncode == EXIT_BAD_INPUT, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_sigkill_while_unpacking_the_kernel_source_then_rerun(tmp_path):
    """A run killed while it unpacks Debian's linux-source tarball: no half tree is ever used
    (the next command unpacks again and works), and the half-unpacked directory is a leftover
    that `kmatrix cache --prune` knows."""
    from harness import cache

    m = tmp_path / "matrix.yaml"
    m.write_text("kernel: {source: debian}\ninclude: [{id: a}]\n")
    env = {"KMATRIX_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(kmatrix_argv("validate", str(m)), cwd=Path(__file__).parents[2],
                            env={**__import__("os").environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: list((tmp_path / "cache" / "trees").glob(".linux-source-*/*")),
             "unpacking started", timeout=120, every=0.1)
    time.sleep(2)
    proc.kill()
    proc.wait()
    halves = [p for p in (tmp_path / "cache" / "trees").glob(".*") if p.is_dir()]
    assert halves and not [p for p in (tmp_path / "cache" / "trees").glob("linux-*")
                           if p.is_dir()], "the killed unpack must not leave a final tree"
    done = kmatrix("validate", str(m), env=env, timeout=600)
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    found = [s.path for s in cache.leftover_candidates(tmp_path / "cache")]
    assert set(halves) <= set(found)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@slow
def test_sigkill_during_debootstrap_and_during_the_import_then_rerun(tmp_path, engine: Engine,
                                                                    builder_image: str):
    """`kmatrix image` killed with SIGKILL while debootstrap runs, then again while the root
    filesystem is imported: nothing keeps running (debootstrap dies with kmatrix), no image is
    tagged from a half import, the rerun builds the image, and the killed builds' directories
    are leftovers that `kmatrix cache --prune` removes without reaching through the /proc and
    /sys a killed debootstrap leaves mounted in them."""
    import os

    from harness import cache

    env = {**engine.env, "KMATRIX_CACHE": str(tmp_path / "cache")}
    engine.docker("rmi", "-f", builder_image, check=False)  # this engine must build it
    try:
        def killed_at(marker: str, timeout: float) -> Path:
            out = tmp_path / f"image-{len(list(tmp_path.glob('image-*')))}.out"
            with open(out, "w") as f:
                proc = subprocess.Popen(kmatrix_argv("image"), cwd=Path(__file__).parents[2],
                                        env={**os.environ, **env}, stdout=f,
                                        stderr=subprocess.STDOUT)
            wait_for(lambda: marker in out.read_text(), marker, timeout=timeout, every=0.2)
            time.sleep(3)  # well inside the step: debootstrap unpacking, the import streaming
            proc.kill()
            proc.wait()
            return out

        killed_at("$ debootstrap", 300)
        # PR_SET_PDEATHSIG: the killed kmatrix's debootstrap does not run on
        wait_for(lambda: not _processes_mentioning(str(tmp_path / "cache")),
                 "the killed build's debootstrap stopped", timeout=60, every=0.5)
        killed_at("importing the root filesystem", 1800)
        assert engine.docker("image", "inspect", builder_image,
                             check=False).returncode != 0, "a half import was tagged"
        done = kmatrix("image", env=env, timeout=1800)
        assert done.returncode == EXIT_OK and "Traceback" not in done.stderr, done.stderr
        assert engine.docker("image", "inspect", builder_image, check=False).returncode == 0
        halves = sorted((tmp_path / "cache").glob("rootfs-*"))
        assert len(halves) == 2, halves  # the two killed builds' (the rerun removed its own)
        later = time.time() + 2 * cache.LEFTOVER_AGE_S
        removed, busy = cache.prune(cache.leftovers(tmp_path / "cache", now=later))
        assert sorted(s.path for s in removed) == halves and not busy
        assert not list((tmp_path / "cache").glob("rootfs-*"))
        assert cache.mounts_below(tmp_path) == []
        assert Path("/proc/self/status").exists() and list(Path("/sys/kernel").iterdir())
    finally:
        engine.load_image(builder_image)


def test_a_damaged_tree_is_infra_error_then_made_again(tmp_path, kernel_tree, live_engine):
    """An output tree damaged behind kmatrix's back (its kernel/module/built-in.a cut short,
    as a full disk or a crash before dirty marks would): infra-error naming the damage, never
    link-mismatch; the next run makes the tree again from the seed and passes."""
    import json
    import secrets
    import shutil

    combo = f"f-damage-{secrets.token_hex(3)}"  # a tree of its own, removed at the end
    m = tmp_path / "matrix.yaml"
    m.write_text(write_matrix(tmp_path / "base", kernel_tree).read_text().replace(
        "include:\n", f"include:\n  - {{id: {combo}, config: {{}}}}\n"))
    args = ("--only", combo, "--trees", "own")
    first = run_to_end(m, tmp_path / "res1", live_engine.env, *args)
    assert first.verdicts == {combo: "pass"}, first.out[-2000:]
    tree = Path(json.loads((first.run_dir / combo / "record.json").read_text())["output_dir"])
    try:
        archive = tree / "kernel" / "module" / "built-in.a"
        archive.write_bytes(archive.read_bytes()[:-25])
        damaged = run_to_end(m, tmp_path / "res2", live_engine.env, *args)
        assert damaged.verdicts == {combo: "infra-error"}, damaged.out[-2000:]
        assert "damaged" in damaged.reasons[combo][0], damaged.reasons
        assert_sound(damaged, live_engine, [combo])
        again = run_to_end(m, tmp_path / "res3", live_engine.env, *args)
        assert again.verdicts == {combo: "pass"}, again.out[-2000:]
        assert "was found damaged: made again" in (again.run_dir / combo / "build.log").read_text()
    finally:
        shutil.rmtree(tree, ignore_errors=True)


@slow
def test_a_damaged_seed_is_made_again_and_its_trees_pass(tmp_path, kernel_tree, live_engine):
    """A seed damaged behind kmatrix's back after it was marked done (its kernel/module/main.o
    cut in half, as a full disk or a crash would leave it): the next run makes the seed again
    and a new tree copied from it passes. Before, every new tree was a copy of the damaged
    seed and failed on the same file, run after run. A cache of its own: the shared seeds of
    other suites are never touched."""
    cache = tmp_path / "cache"
    env = {**live_engine.env, "KMATRIX_CACHE": str(cache)}
    m = write_matrix(tmp_path / "m", kernel_tree)
    first = run_to_end(m, tmp_path / "res1", env, "--only", "f-plain")
    assert first.verdicts == {"f-plain": "pass"}, first.out[-2000:]
    seeds = [p for p in (cache / "seeds").iterdir() if (p / ".kmatrix-seed-done").exists()]
    assert len(seeds) == 1, seeds
    victim = seeds[0] / "kernel" / "module" / "main.o"
    victim.write_bytes(victim.read_bytes()[:victim.stat().st_size // 2])
    again = run_to_end(m, tmp_path / "res2", env, "--only", "f-dups")  # a new tree: a copy
    assert again.verdicts == {"f-dups": "pass"}, again.out[-2000:]
    assert again.run_dir is not None
    assert "is damaged (kernel/module/main.o: cut short" in \
        (again.run_dir / "seed.log").read_text()
    assert_sound(again, live_engine, ["f-dups"])


# --- hostile input -------------------------------------------------------------------------

BOMB = """
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
include: [*g]
"""


@pytest.mark.parametrize("name,text", [
    ("alias-bomb", BOMB),
    ("million", "kernel: {source: debian}\nconfig:\n" + "".join(
        f"  CONFIG_OPT{i}: [y, n]\n" for i in range(20))),
    ("deep-expect", "kernel: {source: debian}\nexpect:\n  kernel/module/:\n    main.o: '"
     + "!" * 5000 + "y'\ninclude: [{id: a}]\n"),
    ("newline-id", 'kernel: {source: debian}\ninclude: [{id: "abc\\n"}]\n'),
], ids=lambda value: value if len(value) < 20 else "")
def test_hostile_matrices_are_one_line_and_exit_2_under_limits(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    started = time.monotonic()
    done = subprocess.run(["prlimit", "--as=1073741824", "--", "timeout", "60",
                           *kmatrix_argv("validate", str(path))],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == EXIT_BAD_INPUT, (done.returncode, done.stderr[-500:])
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr[-1000:]
    assert time.monotonic() - started < 60


def test_a_1_gb_console_log_is_one_line_and_exit_2_under_limits(tmp_path):
    """`kmatrix verdict` on a 1 GB console log (real bytes, not a sparse file) under a 256 MB
    address-space limit: refused by its size before a byte is read, one line, exit 2. (A boot
    never writes one: it is stopped once its console passes harness/boot.py's FLOOD_BYTES,
    tests/integration/test_boot_real.py.)"""
    log = tmp_path / "console.log"
    line = b"[    1.000000] KMATRIX-RESULT phase=x calls=? " + b"a" * 200 + b"\n"
    with open(log, "wb") as f:
        chunk = line * ((1 << 20) // len(line))
        while f.tell() < 1 << 30:
            f.write(chunk)
    config = tmp_path / "config"
    config.write_text("CONFIG_MODULES=y\n")
    done = subprocess.run(["prlimit", "--as=268435456", "--", "timeout", "60",
                           *kmatrix_argv("verdict", str(log), "--config", str(config))],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == EXIT_BAD_INPUT, (done.returncode, done.stderr[-500:])
    assert "over the judge's 64 MiB cap" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def kmatrix_argv(*args: str) -> list[str]:
    import sys
    return [sys.executable, "-m", "harness", *args]

