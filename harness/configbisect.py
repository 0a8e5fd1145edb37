"""Config bisect: the smallest set of assignments that turns a passing config into a failing one.

Delta debugging (Zeller's ddmin) over the assignments that differ between a good and a bad
config, each candidate applied to the good config and resolved by the tree's own
``make olddefconfig``. Kconfig dependencies are respected in two ways:

* grouping: before ddmin, each differing option is removed from the bad config alone and the
  result resolved; what falls with it depends on it. An option that Kconfig puts back is not a
  free choice (it is selected or derived) and is never requested; every free option is tested
  together with the free options it depends on (a *unit*);
* truth: after olddefconfig every requested assignment must have held. A candidate where one
  did not is *unresolved* (neither good nor bad), as ddmin allows.

The logic here is plain functions over plain data; the oracle (resolve a config, run the
combination's checks) is passed in, so the algorithm is tested with fakes in milliseconds.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from .kconfig import Config, actual_value, normalize


class Trial(enum.StrEnum):
    """ddmin's three outcomes for one candidate config."""

    FAIL = "fail"  # fails the same way as the bad config (same verdict and stage)
    PASS = "pass"
    UNRESOLVED = "unresolved"  # the assignments did not hold, or another failure, or infra


STAGES = ("config", "build", "link", "boot")
VERDICT_STAGE = {"config-dropped": "config", "unsatisfiable": "config", "build-error": "build",
                 "link-mismatch": "link", "boot-fail": "boot", "boot-timeout": "boot"}


@dataclass(frozen=True)
class Observation:
    """What the combination's checks said about one config (or one commit)."""

    verdict: str  # a Verdict value
    stage: str = ""  # config | build | link | boot (empty when it passed)
    reasons: tuple[str, ...] = ()
    record_dir: str = ""  # where the step's record.json and build.log are

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass(frozen=True)
class Unit:
    """A free option and the free options it cannot go without (its Kconfig dependencies)."""

    symbol: str
    symbols: frozenset[str]


@dataclass
class TriedConfig:
    """One config the bisect tried, as reported."""

    number: int
    assignments: list[str]  # SYMBOL=value applied to the good config
    outcome: str  # a Trial value
    verdict: str
    stage: str
    note: str = ""
    duration_s: float = 0.0
    record_dir: str = ""


@dataclass
class ConfigBisectResult:
    good: str
    bad: str
    target: dict[str, str]  # verdict and stage of the bad config
    differing: list[str]  # every differing assignment (SYMBOL=bad value)
    derived: list[str]  # differing symbols Kconfig sets by itself (never requested)
    units: list[list[str]]
    reproduced: bool = False
    culprits: list[str] = field(default_factory=list)  # SYMBOL=value, the smallest set found
    single: bool = False  # one option (with what it needs) is to blame
    message: str = ""
    tried: list[TriedConfig] = field(default_factory=list)
    duration_s: float = 0.0
    complete: bool = True  # False when the time budget ran out

    def to_dict(self) -> dict:
        return asdict(self)


class ConfigOracle(Protocol):
    def resolve(self, config: Config) -> Config:
        """The config after the tree's `make olddefconfig`."""
        ...

    def check(self, number: int, assignments: Config) -> Observation:
        """The combination's checks on the good config with these assignments applied."""
        ...


class BudgetExhausted(Exception):
    """The time budget ran out; the bisect reports what it has narrowed down so far."""


# --------------------------------------------------------------------------- pure parts


def differing(good: Config, bad: Config, candidates: Iterable[str] | None = None) -> Config:
    """The assignments (symbol -> bad value) where the two resolved configs differ."""
    names = list(candidates) if candidates is not None else sorted(set(good) | set(bad))
    out: Config = {}
    for name in names:
        g, b = actual_value(good, name), actual_value(bad, name)
        if normalize(g) != normalize(b) and name not in out:
            out[name] = b
    return out


def held(requested: Config, resolved: Config) -> list[str]:
    """The requested assignments that did NOT survive olddefconfig (empty: all held)."""
    return [s for s, v in requested.items()
            if normalize(v) != normalize(actual_value(resolved, s))]


def group_units(good: Config, bad: Config, delta: Config,
                resolve: Callable[[Config], Config]) -> tuple[list[Unit], list[str]]:
    """Free options with the free options each one needs, and the derived (forced) symbols.

    For each differing symbol S: resolve the bad config with S set back to its good value.
    If Kconfig puts S back, S is derived (selected, or has no prompt): it is never requested.
    Otherwise every other differing symbol that changed with it depends on S.
    """
    dependents: dict[str, set[str]] = {}
    derived: list[str] = []
    for sym in delta:
        without = dict(bad)
        without[sym] = actual_value(good, sym)
        resolved = resolve(without)
        if normalize(actual_value(resolved, sym)) != normalize(actual_value(good, sym)):
            derived.append(sym)
            continue
        dependents[sym] = {t for t in delta if t != sym
                           and normalize(actual_value(resolved, t)) != normalize(bad_val(bad, t))}
    free = list(dependents)
    needs = {s: {t for t in free if t != s and s in dependents[t]} for s in free}
    units = []
    for sym in free:
        closure, todo = {sym}, [sym]
        while todo:
            for t in needs[todo.pop()]:
                if t not in closure:
                    closure.add(t)
                    todo.append(t)
        units.append(Unit(sym, frozenset(closure)))
    return units, derived


def bad_val(bad: Config, sym: str) -> str:
    return actual_value(bad, sym)


def classify(obs: Observation, target: Observation) -> tuple[Trial, str]:
    """A candidate fails like the bad config only with the same verdict at the same stage."""
    if obs.passed:
        return Trial.PASS, ""
    if obs.verdict == "config-dropped":
        return Trial.UNRESOLVED, "unresolved: Kconfig did not keep the tested assignments: " + \
            "; ".join(obs.reasons[:2])
    if obs.verdict == "infra-error":
        return Trial.UNRESOLVED, "infrastructure error: " + "; ".join(obs.reasons[:1])
    if obs.verdict == target.verdict and obs.stage == target.stage:
        return Trial.FAIL, ""
    return Trial.UNRESOLVED, (f"a different failure ({obs.verdict} at {obs.stage}): "
                              + "; ".join(obs.reasons[:1]))


def split(items: Sequence, n: int) -> list[list]:
    """n nearly equal, non-empty, contiguous chunks."""
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            chunks.append(list(items[start:end]))
        start = end
    return chunks


def ddmin(items: Sequence, test: Callable[[list], Trial]) -> list:
    """Zeller's ddmin: a 1-minimal sub-list for which test() is FAIL (test(items) must be FAIL).

    Subsets first, then complements; granularity doubles when neither reduces.
    """
    current, n = list(items), 2
    while len(current) >= 2:
        chunks = split(current, n)
        for chunk in chunks:
            if test(chunk) is Trial.FAIL:
                current, n = chunk, 2
                break
        else:
            for chunk in chunks if n > 2 else []:
                complement = [x for x in current if x not in chunk]
                if test(complement) is Trial.FAIL:
                    current, n = complement, max(n - 1, 2)
                    break
            else:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
    return current


# --------------------------------------------------------------------------- the bisect


def _assignments(units: Iterable[Unit], bad: Config) -> Config:
    symbols = sorted(set().union(*[u.symbols for u in units])) if units else []
    return {s: bad_val(bad, s) for s in symbols}


def _render(assignments: Config) -> list[str]:
    return [f"{s}={v}" for s, v in assignments.items()]


class Bisector:
    """Runs ddmin over units, every candidate through the oracle, each config tried once."""

    def __init__(self, oracle: ConfigOracle, bad: Config, target: Observation,
                 say: Callable[[str], None], deadline: float | None = None) -> None:
        self.oracle, self.bad, self.target, self.say = oracle, bad, target, say
        self.deadline = deadline
        self.tried: list[TriedConfig] = []
        self._seen: dict[frozenset[str], Trial] = {}

    def test(self, units: list[Unit]) -> Trial:
        assignments = _assignments(units, self.bad)
        key = frozenset(assignments)
        if key in self._seen:
            return self._seen[key]
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExhausted(f"time budget exhausted after {len(self.tried)} configs")
        number = len(self.tried) + 1
        start = time.monotonic()
        obs = self.oracle.check(number, assignments)
        outcome, note = classify(obs, self.target)
        self.tried.append(TriedConfig(number, _render(assignments), outcome.value, obs.verdict,
                                      obs.stage, note, round(time.monotonic() - start, 1),
                                      obs.record_dir))
        self.say(f"config {number}: good + {len(assignments)} assignment(s) "
                 f"[{' '.join(_render(assignments))[:160]}]: {outcome.value}"
                 + (f" ({note})" if note else ""))
        self._seen[key] = outcome
        return outcome


def shrink(found: list[Unit], units: list[Unit], test: Callable[[list], Trial]) -> list[Unit]:
    """ddmin is 1-minimal over units; a smaller unit inside the found set may still fail alone."""
    while True:
        inside = set().union(*[u.symbols for u in found])
        smaller = sorted((u for u in units if u.symbols < inside), key=lambda u: len(u.symbols))
        for unit in smaller:
            if test([unit]) is Trial.FAIL:
                found = [unit]
                break
        else:
            return found


def bisect_config(good_name: str, bad_name: str, good: Config, bad: Config,
                  target: Observation, oracle: ConfigOracle,
                  candidates: Iterable[str] | None = None,
                  say: Callable[[str], None] = print,
                  deadline: float | None = None) -> ConfigBisectResult:
    """Find the smallest set of the bad config's assignments that, applied to the good config,
    fails the same way as the bad config (same verdict, same stage)."""
    start = time.monotonic()
    delta = differing(good, bad, candidates)
    result = ConfigBisectResult(good_name, bad_name,
                                {"verdict": target.verdict, "stage": target.stage},
                                _render(delta), [], [])
    if not delta:
        result.message = "the good and the bad config resolve to the same values: nothing to bisect"
        return result
    say(f"bisect-config: {len(delta)} differing assignment(s); grouping by Kconfig dependencies "
        f"({len(delta)} olddefconfig runs)")
    units, derived = group_units(good, bad, delta, oracle.resolve)
    result.derived = derived
    result.units = [sorted(u.symbols) for u in units]
    say(f"bisect-config: {len(units)} free option(s), {len(derived)} derived by Kconfig")
    bisector = Bisector(oracle, bad, target, say, deadline)
    try:
        if not units or bisector.test(units) is not Trial.FAIL:
            result.message = (f"no culprit: applying all {len(units)} free differing options to "
                              f"the good config does not fail as {target.verdict} at the "
                              f"{target.stage} stage: see the configs tried")
            return _finish(result, bisector, start)
        result.reproduced = True
        found = shrink(ddmin(units, bisector.test), units, bisector.test)
    except BudgetExhausted as exc:
        result.complete = False
        result.message = f"incomplete: {exc}"
        return _finish(result, bisector, start)
    assignments = _assignments(found, bad)
    result.culprits = _render(assignments)
    result.single = len(found) == 1
    if len(assignments) == 1:
        result.message = f"{result.culprits[0]} alone makes the difference"
    elif result.single:
        result.message = (f"{found[0].symbol}={bad_val(bad, found[0].symbol)} makes the "
                          f"difference, with the options it needs: {' '.join(result.culprits)}")
    else:
        result.message = (f"no single option is to blame: the smallest set found is "
                          f"{len(assignments)} assignments that fail only together: "
                          f"{' '.join(result.culprits)}")
    return _finish(result, bisector, start)


def _finish(result: ConfigBisectResult, bisector: Bisector, start: float) -> ConfigBisectResult:
    result.tried = bisector.tried
    result.duration_s = round(time.monotonic() - start, 1)
    return result


def report_text(result: ConfigBisectResult) -> str:
    lines = [(f"kmatrix bisect-config: good {result.good}, bad {result.bad} "
             f"({result.target['verdict']} at the {result.target['stage']} stage)"),
             f"result: {result.message}",
             (f"differing assignments: {len(result.differing)} "
             f"({len(result.derived)} derived by Kconfig, {len(result.units)} free)"),
             f"configs tried: {len(result.tried)} in {result.duration_s:.0f} s", ""]
    for t in result.tried:
        lines.append(f"  {t.number:3d}  {t.outcome:<10} {t.verdict:<14} "
                     f"{' '.join(t.assignments)}" + (f"  # {t.note}" if t.note else ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the real oracle
# Everything below runs the combination's own checks (pipeline.run_combination) in containers.

STAGE_OF_STEP = {"base-config": "config", "olddefconfig": "config", "config-truth": "config",
                 "build": "build", "link-check": "link", "boot": "boot"}
BISECT_COMBO = "config-bisect"  # the combination id (and warm output tree) of every trial


def observe(record, record_dir) -> Observation:
    """A finished record as an Observation: its verdict and the stage that failed."""
    if record.verdict == "pass":
        return Observation("pass", "", (), str(record_dir))
    stage = VERDICT_STAGE.get(record.verdict, "")
    if not stage:
        failed = [s.name for s in record.stages if s.status in ("fail", "error")]
        stage = STAGE_OF_STEP.get(failed[-1], failed[-1]) if failed else ""
    return Observation(record.verdict, stage, tuple(record.reasons), str(record_dir))


def stage_matrix(matrix, stage: str):
    """The matrix with its checks cut after `stage`: config (no build), build (no link check),
    link and boot (everything)."""
    from dataclasses import replace

    if stage == "config":
        return replace(matrix, build=replace(matrix.build, targets=("kernelversion",)),
                       expect={})
    if stage == "build":
        return replace(matrix, expect={})
    return matrix


def stage_settings(settings, stage: str, **changes):
    """Settings for a step cut after `stage`: no boot (nor bzImage) unless the stage is boot."""
    from dataclasses import replace

    return replace(settings, boot=settings.boot and stage == "boot", **changes)


def stage_hooks(settings, matrix, combo, symbols, runner, stage: str) -> list:
    if stage != "boot":
        return []
    from .boot_stage import boot_hook

    hook = boot_hook(settings, matrix, combo, symbols, runner)
    return [hook] if hook is not None else []


@dataclass
class Env:
    """What every bisect step needs: settings (tree, cache, image, -j), matrix, symbols, runner."""

    settings: object  # pipeline.RunSettings
    matrix: object  # matrix.Matrix
    symbols: object  # kconfig.SymbolTable
    runner: object  # container.Runner
    say: Callable[[str], None] = print


def open_env(matrix_path, results_dir, kernel: str | None, jobs: int | None, label: str,
             say: Callable[[str], None] = print) -> Env:
    """Check the matrix and the tree, connect to Docker, make sure the image exists, and create
    results/<label>-<id>/: the same checks `kmatrix run` makes before it builds anything."""
    import os
    from pathlib import Path

    from . import image as imagemod
    from . import session, source
    from .container import DockerRunner, connect
    from .pipeline import RunSettings

    matrix, tree, symbols = session.load_checked(
        session.Options(matrix=Path(matrix_path), results=Path(results_dir), kernel=kernel))
    cache = source.cache_root()
    session.check_disk(cache)
    client = connect()
    tag = imagemod.ensure_image(client, imagemod.read_spec(), cache, log=say)
    runner = DockerRunner(tag, client)
    run_id = f"{label}-{session.new_run_id()}"
    run_dir = (Path(results_dir) / run_id).resolve()
    run_dir.mkdir(parents=True)
    jobs = jobs or max(1, min(2, os.cpu_count() or 1))
    settings = RunSettings(
        run_id=run_id, matrix_path=str(matrix.path), run_dir=str(run_dir), cache=str(cache),
        tree=str(tree.path), kernel={"version": tree.version, "origin": tree.origin,
                                     "commit": tree.commit, "path": str(tree.path)},
        image=tag, image_id=runner.image_id(), jobs=jobs, workers=1, cpus_per_build=float(jobs))
    settings.save()
    return Env(settings, matrix, symbols, runner, say)


class CombinationOracle:
    """Trials on the real tree: the good config as the base, the tested assignments as the
    combination's own values (so config truth checks that they held), one warm output tree."""

    def __init__(self, env: Env, good_config_file, bisect_dir, stage: str,
                 boot=None) -> None:
        from dataclasses import replace

        from .matrix import Combination

        self.env, self.bisect_dir, self.stage, self.boot = env, bisect_dir, stage, boot
        self.matrix = replace(stage_matrix(env.matrix, stage), base=str(good_config_file),
                              common=(), fragment_files=())
        self._combo = Combination

    def resolve(self, config: Config) -> Config:
        from filelock import FileLock

        from . import pipeline

        env = self.env
        out = env.settings.work_dir() / f"{BISECT_COMBO}-resolve"
        out.mkdir(parents=True, exist_ok=True)
        tc = env.settings.toolchain(self.matrix, 1)
        # one scratch tree for every bisect of this tree: held while its .config is ours
        with (FileLock(str(out.parent / f"{out.name}.lock")),
              open(self.bisect_dir / "resolve.log", "a") as log):
            resolved, _ = pipeline.olddefconfig(tc, env.runner, out, config, log)
        if resolved is None:
            from .verdict import InfraError

            raise InfraError(f"make olddefconfig failed while grouping options: see "
                             f"{self.bisect_dir / 'resolve.log'}")
        return resolved

    def check(self, number: int, assignments: Config) -> Observation:
        from dataclasses import replace

        from . import pipeline

        combo = self._combo(BISECT_COMBO, tuple(assignments.items()), 0,
                            self.boot if self.stage == "boot" else None)
        trial_dir = self.bisect_dir / "configs" / f"{number:03d}"
        settings = stage_settings(self.env.settings, self.stage, run_dir=str(trial_dir))
        # the warm tree is shared with other bisects of this tree: run_combination holds its
        # lock, and remakes the kept base config when it is not this bisect's good config
        matrix = replace(self.matrix, combinations=[combo])
        record = pipeline.run_combination(
            settings, matrix, combo, self.env.symbols, self.env.runner,
            stage_hooks(settings, matrix, combo, self.env.symbols, self.env.runner, self.stage))
        return observe(record, trial_dir / combo.id)


def config_input(spec: str, matrix, role: str):
    """A combination id of the matrix, or a .config / fragment file, as a Combination."""
    from pathlib import Path

    from .kconfig import parse_config
    from .matrix import Combination, slug
    from .verdict import InputError

    for combo in matrix.combinations:
        if combo.id == spec:
            return combo
    path = Path(spec)
    if path.is_file():
        values = parse_config(path.read_text(errors="replace"))
        if not values:
            raise InputError(f"{path} holds no CONFIG_ assignment: give a .config, a fragment or "
                             "a combination id")
        return Combination(f"bisect-{role}-{slug(path.name)}", tuple(values.items()), 0)
    raise InputError(f"--{role} {spec!r} is neither a combination of {matrix.path.name} "
                     f"(`kmatrix list`) nor a file")


def run_input(env: Env, combo, run_dir, stage: str):
    """Run one input (good or bad) through its checks; return (record, Observation)."""

    from . import pipeline

    settings = stage_settings(env.settings, stage, run_dir=str(run_dir))
    matrix = stage_matrix(env.matrix, stage)
    env.say(f"kmatrix: checking {combo.id} (log: {run_dir / combo.id / 'build.log'})")
    record = pipeline.run_combination(settings, matrix, combo, env.symbols, env.runner,
                                      stage_hooks(settings, matrix, combo, env.symbols,
                                                  env.runner, stage))
    return record, observe(record, run_dir / combo.id)


def config_bisect_on_tree(env: Env, good_spec: str, bad_spec: str,
                          deadline: float | None = None) -> ConfigBisectResult:
    """`kmatrix bisect-config`: check both inputs, then ddmin; writes bisect-config.json/.txt."""
    import json
    from pathlib import Path

    from . import results
    from .kconfig import parse_config, render_config
    from .verdict import InputError

    start = time.monotonic()
    bisect_dir = Path(env.settings.run_dir)
    good_combo = config_input(good_spec, env.matrix, "good")
    bad_combo = config_input(bad_spec, env.matrix, "bad")
    bad_rec, target = run_input(env, bad_combo, bisect_dir / "inputs", "boot")
    if target.passed or target.verdict == "infra-error":
        raise InputError(f"--bad {bad_spec} does not fail ({target.verdict}"
                         f"{': ' + target.reasons[0] if target.reasons else ''}): nothing to "
                         "bisect") if target.passed else \
            InputError(f"--bad {bad_spec}: infrastructure error: {target.reasons[:1]}")
    if target.verdict == "config-dropped":
        raise InputError(f"--bad {bad_spec} fails config truth ({target.reasons[0]}): its "
                         "requested values never resolve, so no config can reproduce it; fix the "
                         "request instead")
    good_rec, good_obs = run_input(env, good_combo, bisect_dir / "inputs", target.stage)
    if not good_obs.passed:
        raise InputError(f"--good {good_spec} does not pass ({good_obs.verdict}: "
                         f"{'; '.join(good_obs.reasons[:1])}): pick a passing config")
    good = parse_config((bisect_dir / "inputs" / good_combo.id / "config").read_text())
    bad = parse_config((bisect_dir / "inputs" / bad_combo.id / "config").read_text())
    good_file = bisect_dir / "good.config"
    results.atomic_write(good_file, render_config(good))
    results.atomic_write(bisect_dir / "bad.config", render_config(bad))
    candidates = list(dict.fromkeys([*good_rec.requested, *bad_rec.requested]))
    oracle = CombinationOracle(env, good_file, bisect_dir, target.stage, bad_combo.boot)
    result = bisect_config(good_spec, bad_spec, good, bad, target, oracle, candidates,
                           say=env.say, deadline=deadline)
    result.duration_s = round(time.monotonic() - start, 1)
    results.atomic_write(bisect_dir / "bisect-config.json", json.dumps(result.to_dict(), indent=2))
    results.atomic_write(bisect_dir / "bisect-config.txt", report_text(result))
    return result
