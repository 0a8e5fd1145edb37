"""One combination, end to end: config -> olddefconfig -> config truth -> build -> link check
-> boot (for combinations that ask for one).

``run_combination(job)`` is the whole chain for one combination; it talks to the outside world
only through the job's ``Runner`` (containers) and the filesystem, and it always leaves a
finished record. The pipeline decides which stages a combination gets (the boot stage
included); a job's ``last_stage`` stops it early (bisects).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import IO

from . import boot_stage, cores, kconfig, linkcheck, locks, results, treeguard, variants
from . import matrix as matrixmod
from .cache import SEED_MARKER
from .container import Runner, StepResult, write_log
from .kbuild import Kbuild, damaged_tree, first_errors, infra_trouble, step_output
from .kconfig import Config
from .kconfig.session import KconfigSession
from .matrix import Combination, Matrix
from .resolve import CONFIGS_DIR, Resolution, resolved_config_text
from .resolve import load as load_resolutions
from .settings import Job, RunSettings
from .treeguard import run_guarded
from .verdict import InfraError, Outcome, Stage, Verdict

BASE_CONFIG = ".kmatrix-base.config"  # the base config (tinyconfig, ...) kept in each output tree
BASE_KEY = ".kmatrix-base.key"  # what that base config was made from (see base_key)
CONFIG_TIMEOUT_S = 600.0


def reproducer_line(matrix: Matrix, combo: Combination, runtime: str = "docker") -> str:
    """The kmatrix command that reruns this combination (with `--runtime` when the run's
    container runtime was not the matrix's own)."""
    extra = ["--runtime", runtime] if runtime != matrix.build.runtime else []
    return shlex.join(["kmatrix", "run", str(matrix.path), "--only", combo.id, *extra])


def kconfig_session(tc: Kbuild, runner: Runner, out: Path, log: IO[str]) -> KconfigSession:
    """The Kconfig session of a build tree: the run's own toolchain, one step at a time."""
    return KconfigSession(tc.tree, out, runner, log, arch=tc.arch, toolchain=tc.toolchain,
                          timeout_s=CONFIG_TIMEOUT_S,
                          build_kbuild=tc)


def base_config_stage(tc: Kbuild, runner: Runner, matrix: Matrix, out: Path,
                      log: IO[str]) -> tuple[Config | None, StepResult | None]:
    """The base config kept in the output tree: tinyconfig & co come from the tree's make."""
    saved, key_file = out / BASE_CONFIG, out / BASE_KEY
    key = base_key(matrix)
    if saved.is_file() and key_file.is_file() and key_file.read_text().strip() == key:
        return kconfig.parse_config(saved.read_text()), None
    # absent, or made for another base (another matrix, another bisect's good config)
    key_file.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if matrix.base in matrixmod.BASES:
        base, result = kconfig_session(tc, runner, out, log).config_target_step(
            matrix.base, "base-config")
        if base is None:
            return None, result
        text = (out / ".config").read_text()
    else:
        text = Path(matrix.base).read_text()
        result = None
    results.atomic_write(saved, text)
    results.atomic_write(key_file, key + "\n")
    return kconfig.parse_config(text), result


def base_key(matrix: Matrix) -> str:
    """What a kept base config was made from: the arch and the base's name, or for a file base
    its content (the same path may hold another config next time)."""
    if matrix.base in matrixmod.BASES:
        return f"{matrix.arch.name}:{matrix.base}"
    digest = hashlib.sha256(Path(matrix.base).read_bytes()).hexdigest()
    return f"{matrix.arch.name}:file:{digest}"


def olddefconfig(tc: Kbuild, runner: Runner, out: Path, config: Config,
                 log: IO[str]) -> tuple[Config | None, StepResult]:
    """Write the merged config and let the tree's own Kconfig resolve it."""
    return kconfig_session(tc, runner, out, log).olddefconfig_step(config)


def kept_config(out: Path, resolution: Resolution | None) -> Config | None:
    """The tree's .config, when it already holds exactly the values the resolve step found
    `make olddefconfig` makes of this request (the same tree, image, toolchain, base and
    request: its config hash); None otherwise, and always for a tree a stopped step left dirty
    or without a resolve step (bisects)."""
    if resolution is None or not resolution.config_hash or treeguard.dirty_since(out) is not None:
        return None
    try:
        current = kconfig.parse_config((out / ".config").read_text())
    except (OSError, UnicodeDecodeError):
        return None
    return current if kconfig.config_hash(current) == resolution.config_hash else None


def tree_name(settings: RunSettings, combo: Combination) -> str:
    """The output tree the resolve step chose (harness/schedule.py): a shared lane, or the
    combination's own (by id); a combination that resolves to the same .config as an earlier one
    (say, one kernel booted with two command lines) builds right after it in its tree, so the
    kernel is built once. Without a resolve step (bisects), the combination's own."""
    return tree_of(load_resolutions(Path(settings.run_dir)).get(combo.id), combo)


def tree_of(resolution: Resolution | None, combo: Combination) -> str:
    """`tree_name` from a resolution already loaded."""
    return resolution.tree_group if resolution is not None else combo.id


def branch_of(resolutions: dict[str, Resolution], resolution: Resolution | None,
              name: str, trees: str = "") -> tuple[str, str]:
    """The directory of tree `name` this combination builds in, and the one a new directory
    starts as a copy of ("": the seed); see schedule.branch_dirs. `trees`: the run's
    `build.trees`; under `lanes` (the least disk) a tree is one directory."""
    from .schedule import branch_dirs

    if resolution is None or not resolution.tree or trees == "lanes":
        return name, ""
    members = sorted((r for r in resolutions.values()
                      if r.tree == name and not r.unsatisfiable), key=lambda r: r.position)
    return branch_dirs(name, [(r.combination, r.config_hash, r.holds) for r in members]).get(
        resolution.combination, (name, ""))


def output_dir(settings: RunSettings, name: str, say: Callable[[str], None],
               variant: str = variants.DEFAULT, parent: str = "",
               make_seed: Callable[[], Path | None] | None = None) -> Path:
    """The combination's output tree: warm (kept from the last run, or a new one copied from
    `parent`, the directory before it in its tree's sequence, else from the seed, which
    `make_seed` makes first when the run has not made it whole yet) unless --pristine, which
    always starts from an empty directory. Called with the directory's lock held (and takes
    `parent`'s while copying it); a tree a stopped step left dirty is repaired first
    (harness/treeguard.py)."""
    if settings.pristine:
        out = Path(settings.cache) / "pristine" / settings.run_id / name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        return out
    out = settings.work_dir(variant) / name
    if treeguard.dirty_since(out) == 0:  # condemned: found damaged, nothing in it is trusted
        say(f"kmatrix: tree {out} was found damaged: made again from the seed")
        shutil.rmtree(out)
    source = settings.work_dir(variant) / parent if parent else None
    if not out.is_dir() and source is not None and source.is_dir():
        # under the source's own lock too: another worker may be building in it
        with locks.held(source.parent / f"{parent}.lock", f"output tree {parent}", say):
            if source.is_dir() and treeguard.dirty_since(source) != 0:
                say(f"kmatrix: tree {out.name} starts as a copy of {parent}, the config "
                    "before it in its tree's sequence (an incremental build)")
                copy_tree(source, out)
    if not out.is_dir() and (seed := settings.seed_for(variant)):
        if make_seed is not None and not (Path(seed) / SEED_MARKER).exists():
            make_seed()  # its base config only so far (seeds.ensure_base)
        copy_seed(Path(seed), out, say)
    out.mkdir(parents=True, exist_ok=True)
    treeguard.repair(out, say)
    return out


def copy_seed(seed: Path, out: Path, say: Callable[[str], None]) -> None:
    """A new tree as a copy of the seed, made while holding the seed's lock (so `kmatrix
    cache --prune` cannot delete it halfway); a seed that is gone meanwhile gives an empty
    tree (a cold build, said in the log), never a half copy."""
    with locks.held(seed.parent / f"{seed.name}.lock", f"seed tree {seed.name}", say):
        if not (seed / SEED_MARKER).exists():
            say(f"kmatrix: seed tree {seed} is gone (pruned?): {out.name} builds from empty")
            return
        copy_tree(seed, out, "the seed tree")


def copy_tree(source: Path, out: Path, what: str = "a tree") -> None:
    """`out` as a whole copy of `source` (made beside it, then renamed: never half a copy)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.copy"
    shutil.rmtree(tmp, ignore_errors=True)
    done = subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(tmp)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InfraError(f"copying {what} failed ({done.stderr.strip()[:160]}): is the "
                         f"disk under {out.parent} full?")
    (tmp / SEED_MARKER).unlink(missing_ok=True)
    tmp.rename(out)


def _say_to(log: IO[str]) -> Callable[[str], None]:
    """A line to the step log (where a human reading a slow combination looks first)."""
    return lambda line: write_log(log, line + "\n")


def run_combination(job: Job) -> results.Record:
    """Run one combination and return its finished record (also written to the run dir)."""
    settings, matrix, combo = job.settings, job.matrix, job.combo
    run_dir = job.run_dir
    requested = job.requested()
    record = results.Record(
        combination=combo.id, run_id=settings.run_id, matrix=str(matrix.path),
        values=combo.axis_values, requested=requested, arch=matrix.arch.name,
        toolchain=matrix.toolchain.name,
        kernel=dict(settings.kernel), image={"tag": settings.image, "id": settings.image_id,
                                             "runtime": settings.runtime},
        reproducer=reproducer_line(matrix, combo, settings.runtime))
    results.write_record(run_dir, record)  # early, so a killed run still shows what ran
    start = time.monotonic()
    try:
        with open(job.combo_dir / "build.log", "w") as log:
            log.write(f"# kmatrix: combination {combo.id} of {matrix.path}\n"
                      f"# reproduce: {record.reproducer}\n")
            resolutions = load_resolutions(run_dir)
            resolution = resolutions.get(combo.id)  # if the resolve step ran
            outcome = _unsatisfiable(resolution, record)
            if outcome is None and resolution is not None:  # its time, for the reports
                _stage(record, "resolve", "pass", resolution.seconds)
            if outcome is None:  # a request that can never hold takes no tree at all
                name = tree_of(resolution, combo)
                work = settings.work_dir(matrix.variant)
                work.mkdir(parents=True, exist_ok=True)
                where, parent = branch_of(resolutions, resolution, name, settings.trees)
                # each directory of a tree has its own lock (a warm rerun may build two
                # directories of one tree at once: session.warm_combinations)
                with locks.held(work / f"{where}.lock", f"output tree {where}",
                                _say_to(log)):
                    def make_seed() -> Path | None:
                        from .seeds import ensure_seed  # seeds builds on this module

                        return ensure_seed(settings, matrix, job.symbols, job.runner, log,
                                           os.cpu_count() or 1)

                    chain = Chain(job, record, log, output_dir(settings, where, _say_to(log),
                                                           matrix.variant, parent, make_seed),
                                  resolution)
                    outcome = chain.run(requested)
    except InfraError as exc:
        outcome = Outcome(Verdict.INFRA_ERROR, [exc.message])
    except Exception as exc:  # noqa: BLE001 - the record must still be finished
        outcome = Outcome(Verdict.INFRA_ERROR, [f"kmatrix failed: {type(exc).__name__}: {exc}"])
    except KeyboardInterrupt:
        record.status, record.verdict = "interrupted", Verdict.INFRA_ERROR
        record.reasons = ["interrupted (Ctrl-C or SIGTERM) before this combination finished"]
        record.duration_s = time.monotonic() - start
        record.finished = results.now()
        results.write_record(run_dir, record)
        raise
    record.verdict = outcome.verdict
    record.reasons = outcome.reasons
    record.status = "done"
    record.duration_s = round(time.monotonic() - start, 1)
    record.finished = results.now()
    _write_reproducer(job.combo_dir, job.runner, record)
    results.write_record(run_dir, record)
    if settings.pristine and record.output_dir:
        shutil.rmtree(record.output_dir, ignore_errors=True)  # a pristine tree is never reused
    return record


def _unsatisfiable(resolution: Resolution | None, record: results.Record) -> Outcome | None:
    """The resolve step's verdict on a request Kconfig can never satisfy, if it gave one."""
    if resolution is None or not resolution.unsatisfiable:
        return None
    _stage(record, "resolve", "fail", resolution.seconds)
    return Outcome(Verdict.UNSATISFIABLE, [resolution.unsatisfiable])


def _stage(record: results.Record, name: str, status: str, duration: float = 0.0,
           command: str = "") -> None:
    record.stages.append(results.StageRecord(name, status, round(duration, 1), command))


class Chain:
    """The stages of one combination in one output tree, each filling the record as it goes."""

    def __init__(self, job: Job, record: results.Record, log: IO[str], out: Path,
                 resolution: Resolution | None) -> None:
        self.job, self.record, self.log, self.out = job, record, log, out
        self.resolution = resolution
        self.tc = job.settings.kbuild(job.matrix)
        record.output_dir = str(out)

    def run(self, requested: Config) -> Outcome:
        job, record, log = self.job, self.record, self.log
        resolved = self.config(requested)
        if isinstance(resolved, Outcome):  # the combination ended at its config
            return resolved
        if job.last_stage is Stage.CONFIG:
            return Outcome.ok()
        outcome = self.build()
        if outcome.verdict is not Verdict.PASS or job.last_stage is Stage.BUILD:
            return outcome
        outcome = link_stage(job.matrix, self.out, resolved, record)
        if outcome.verdict is not Verdict.PASS or not job.boots:
            return outcome
        return boot_stage.boot(job, record, self.out, resolved, log)

    def config(self, requested: Config) -> Config | Outcome:
        """Base config, repair, olddefconfig and config truth: the resolved config, or the
        outcome that ends the combination here."""
        job, record, log, out, resolution = self.job, self.record, self.log, self.out, \
            self.resolution
        base, failed = base_config_stage(self.tc, job.runner, job.matrix, out, log)
        if failed is not None:
            _stage(record, "base-config", "pass" if failed.ok else "error", failed.duration_s,
                   failed.command)
        if base is None:
            return Outcome(Verdict.INFRA_ERROR, [f"`make {job.matrix.base}` failed: "
                                                 + " | ".join(failed.tail[-3:] if failed else [])])
        if resolution is not None:
            record.duplicate_of = resolution.duplicate_of
            if resolution.added:
                record.repaired = _repaired(resolution.added)
                requested = kconfig.merge(resolution.added, requested)
                record.requested = requested
        elif job.combo.repair:
            requested = self.repair(base, requested)
        merged = kconfig.merge(base, requested)
        results.atomic_write(job.combo_dir / "input.config", kconfig.render_config(merged))
        # make olddefconfig is not run when the tree's .config already is this request's
        # answer (a warm tree: a new .config would only make the build run Kconfig again), or
        # when the resolve step's one Kconfig parse wrote that answer, byte for byte, for this
        # very input (same tree, image, toolchain, base, request): the build's make then runs
        # Kconfig on it once (syncconfig), as after make olddefconfig
        resolved = kept_config(out, resolution)
        taken = ""  # where the .config written now comes from
        if resolved is None and (text := resolved_config_text(job.run_dir, resolution)) is not None:
            results.atomic_write(out / ".config", text)
            resolved = kconfig.parse_config(text)
            taken = f"{job.run_dir}/{CONFIGS_DIR}/{job.combo.id}.config"
        if resolved is not None:
            rerun = job.runner.reproducer(self.tc.make_step(
                "olddefconfig", out, "olddefconfig", timeout_s=job.matrix.build.timeout_s,
                jobs=1))
            digest = kconfig.config_hash(resolved)
            how = (f"written as the resolve step's Kconfig made it of this request ({taken}, "
                   f"config hash {digest})." if taken else
                   f"already is what it makes of this request (config hash {digest}, as the "
                   "resolve step found it); kept.")
            write_log(log, f"kmatrix: olddefconfig not run: {out}/.config {how} To run it: "
                      f"{rerun}\n")
            _stage(record, "olddefconfig", "pass", 0.0, rerun)  # reproducer.sh runs it
        else:
            resolved, step = olddefconfig(self.tc, job.runner, out, merged, log)
            _stage(record, "olddefconfig", "pass" if step.ok else "error", step.duration_s,
                   step.command)
            if resolved is None:
                return Outcome(Verdict.INFRA_ERROR if step.timed_out else Verdict.BUILD_ERROR,
                               ["make olddefconfig failed: " + " | ".join(step.tail[-3:])])
        shutil.copyfile(out / ".config", job.combo_dir / "config")
        record.resolved_config_hash = kconfig.config_hash(resolved)
        record.compiler = resolved.get("CONFIG_CC_VERSION_TEXT", "").strip('"')

        mismatches = kconfig.config_truth(requested, resolved)
        record.mismatches = [asdict(m) for m in mismatches]
        _stage(record, "config-truth", "fail" if mismatches else "pass")
        if mismatches:
            # the resolve step already asked Kconfig why, for the same config; else ask now
            why = (resolution.why if resolution is not None and resolution.why
                   and not job.combo.repair else self.why_dropped(mismatches))
            return Outcome(Verdict.CONFIG_DROPPED, [m.describe() for m in mismatches] + why)
        return resolved

    def build(self) -> Outcome:
        job, record, log, out = self.job, self.record, self.log, self.out
        matrix = job.matrix
        targets = list(matrix.build.targets)
        if job.boots and matrix.arch.image_target not in targets:
            targets.append(matrix.arch.image_target)
        # make -j by the run's core budget: a bootable kernel takes every core (harness/cores.py)
        budget = job.settings.core_budget()
        with contextlib.ExitStack() as held:
            tc = self.tc
            if budget is not None:
                claim = held.enter_context(budget.claim(long=job.boots))
                tc = replace(tc, jobs=claim.jobs, cpus=float(min(claim.jobs, budget.cores)),
                             cpu_shares=cores.LONG_SHARES if claim.long else 0)
            step = run_guarded(job.runner, tc.make_step("build", out, *targets,
                                                        timeout_s=matrix.build.timeout_s),
                               log, out)
        _stage(record, "build", "pass" if step.ok else ("error" if step.timed_out else "fail"),
               step.duration_s, step.command)
        if step.timed_out:
            return Outcome(Verdict.INFRA_ERROR, [f"build timed out after {matrix.build.timeout_s:g}"
                                                 " s: raise build.timeout or lower the load"])
        if not step.ok:
            log.flush()
            lines = step_output((job.combo_dir / "build.log").read_text(
                errors="replace").splitlines())
            if step.exit_code is not None and step.exit_code > 128:
                # make died of a signal (128 + N): sent from outside, an engine stop or restart,
                # `docker stop` or a kill (an OOM kill was named above); a compile error is 2
                return Outcome(Verdict.INFRA_ERROR, [
                    f"the build was stopped from outside (exit {step.exit_code}: signal "
                    f"{step.exit_code - 128}; the Docker engine stopped or restarted, or the "
                    "container was stopped or killed): rerun"])
            if damage := damaged_tree(lines):
                treeguard.condemn(out)
                return Outcome(Verdict.INFRA_ERROR, [damage])
            if trouble := infra_trouble(lines):
                return Outcome(Verdict.INFRA_ERROR, [trouble])
            errors = first_errors(lines) or step.tail[-3:]
            return Outcome(Verdict.BUILD_ERROR, ["make failed: " + errors[0], *errors[1:]])
        return Outcome.ok()

    def why_dropped(self, mismatches: list[kconfig.Mismatch]) -> list[str]:
        """The unmet Kconfig condition behind each dropped value, read by the tree's own Kconfig
        code from the resolved .config (`MODULE_DEBUG_AUTOLOAD_DUPS=y needs MODULE_DEBUG [=n]`)."""
        from .kconfig.explain import explain

        try:
            dump = kconfig_session(self.tc, self.job.runner, self.out, self.log).dump()
        except InfraError as exc:
            self.log.write(f"kmatrix: no explanation for the dropped values: {exc.message}\n")
            return []
        return ["why: " + explain(m.symbol, m.requested, dump, tree=self.tc.tree).summary()
                for m in mismatches]

    def repair(self, base: Config, requested: Config) -> Config:
        """`repair: true`: add the smallest set of assignments that makes the request hold (each
        round checked by the real olddefconfig); the combination is still judged by config
        truth."""
        from .kconfig.repair import repair

        start = time.monotonic()
        session = kconfig_session(self.tc, self.job.runner, self.out, self.log)
        fixed = repair(requested, base, session)
        self.record.repaired = _repaired(fixed.added)
        _stage(self.record, "repair", "pass" if fixed.holds else "fail",
               time.monotonic() - start)
        self.log.write(f"kmatrix: {fixed.describe()}\n")
        return kconfig.merge(fixed.added, requested)


def _repaired(added: Config) -> list[str]:
    return [f"+{kconfig.bare_name(k)}={v}" for k, v in added.items()]


def link_stage(matrix: Matrix, out: Path, resolved: Config, record: results.Record) -> Outcome:
    reasons: list[str] = []
    for directory, expect in matrix.expect.items():
        archive = out / directory / "built-in.a"
        if not archive.is_file():
            if not matrixmod.builds_directory(matrix.build.targets, directory, matrix.arch):
                # nothing would be checked: never a silent pass
                _stage(record, "link-check", "error")
                return Outcome(Verdict.INFRA_ERROR, [
                    f"link check of {directory} checked nothing: no {directory}built-in.a and "
                    f"no build target builds it: add {directory} to build.targets"])
            reasons.append(f"{directory}built-in.a was not produced by the build")
            continue
        try:
            members = linkcheck.archive_members(archive)
        except (OSError, ValueError) as exc:
            treeguard.condemn(out)
            _stage(record, "link-check", "error")
            return Outcome(Verdict.INFRA_ERROR, [f"the output tree is damaged ({exc}): it is "
                                                 "emptied for a clean build; rerun"])
        report = linkcheck.link_check(directory, expect, resolved, members)
        record.link[directory] = {"members": report.members, "expected": report.expected,
                                  "missing": report.missing, "unexpected": report.unexpected}
        reasons += report.describe()
    _stage(record, "link-check", "fail" if reasons else "pass")
    return Outcome(Verdict.LINK_MISMATCH, reasons) if reasons else Outcome.ok()


def _write_reproducer(combo_dir: Path, runner: Runner, record: results.Record) -> None:
    lines = ["#!/bin/sh", f"# Reproduce combination {record.combination} "
             f"(verdict: {record.verdict_text}) step by step.", "set -e"]
    out = record.output_dir
    if out:
        lines.append(shlex.join(["cp", str(combo_dir / "input.config"), f"{out}/.config"]))
    lines += [f"# {s.name}\n{s.command}" for s in record.stages
              if s.command and s.name != "base-config"]
    results.atomic_write(combo_dir / "reproducer.sh", "\n".join(lines) + "\n", mode=0o755)
