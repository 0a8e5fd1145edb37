"""Resolve every combination before any build (Kconfig only, no compiler).

For each combination: base + requested values through the tree's own `make olddefconfig`
(in a scratch output tree), then
- `repair: true`: the smallest set of extra assignments that makes the request hold;
- a request that can never hold is *unsatisfiable*: reported with the reason, never built;
- combinations that resolve to the same .config as an earlier one are *duplicates*: they share
  one output tree, so the kernel is built once (the second build finds everything up to date).
The answers go to resolve.json in the run directory, read by the workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from . import kconfig, results, variants
from .cache import SEED_MARKER
from .container import Runner, write_log
from .kconfig import Config, SymbolTable
from .kconfig.session import KconfigSession
from .matrix import Combination, Matrix
from .parallel import side_by_side
from .settings import Job, RunSettings
from .verdict import InfraError

RESOLVE_FILE = "resolve.json"
# the exact .config `make olddefconfig` writes for each request that holds (the resolve step's
# one Kconfig parse made it): a build tree takes it instead of running make olddefconfig again
CONFIGS_DIR = "resolved-configs"
MEMO_VERSION = 3  # bump when Resolution or the memo key changes (3: the toolchain)


@dataclass
class Resolution:
    combination: str
    config_hash: str = ""
    holds: bool = True
    added: dict[str, str] = field(default_factory=dict)  # by repair
    unsatisfiable: str = ""  # why the request can never hold
    duplicate_of: str = ""  # the first combination that resolves to the same .config
    why: list[str] = field(default_factory=list)  # why each dropped value does not hold
    seconds: float = 0.0
    delta: dict[str, str] = field(default_factory=dict)  # resolved values that differ from base
    tree: str = ""  # the output tree it builds in (harness/schedule.py), and its place there
    position: int = 0

    @property
    def tree_group(self) -> str:
        return self.tree or self.duplicate_of or self.combination


def requested_for(settings: RunSettings, matrix: Matrix, combo: Combination,
                  symbols: SymbolTable, runner: Runner) -> Config:
    return Job(settings, matrix, combo, symbols, runner).requested()


def resolve_one(session: KconfigSession, base: Config, requested: Config,
                combo: Combination) -> Resolution:
    from .kconfig.repair import diagnose, repair

    start = time.monotonic()
    res = Resolution(combo.id)
    if combo.repair:
        fixed = repair(requested, base, session)
        res.added = dict(fixed.added)
        resolved, res.holds = fixed.resolved, fixed.holds
        if not fixed.holds and fixed.unsatisfiable:
            res.unsatisfiable = fixed.unsatisfiable
    else:
        problems = diagnose(requested, base, session)
        resolved = kconfig.parse_config(session.resolved_text())
        res.holds = not problems
        res.why = ["why: " + p.summary() for p in problems]
        impossible = [p for p in problems if p.unsatisfiable]
        if impossible:
            res.unsatisfiable = "; ".join(p.summary() for p in impossible)
    res.config_hash = kconfig.config_hash(resolved)
    res.delta = delta_from(base, resolved)
    res.seconds = round(time.monotonic() - start, 1)
    return res


def delta_from(base: Config, resolved: Config) -> Config:
    """The options whose resolved value differs from the base config's (what a tree that last
    held the base has to change)."""
    out: Config = {}
    for name in sorted(set(base) | set(resolved)):
        value = kconfig.actual_value(resolved, name)
        if kconfig.normalize(value) != kconfig.normalize(kconfig.actual_value(base, name)):
            out[name] = value
    return out


def base_config(settings: RunSettings, matrix: Matrix, runner: Runner, scratch: Path,
                log: IO[str]) -> Config:
    """The base config (tinyconfig, ...) as `matrix`'s architecture and toolchain make it: the
    one kept in their seed tree, else made in a scratch tree, or the matrix's config file."""
    from .matrix import BASES
    from .pipeline import BASE_CONFIG

    seed = settings.seed_for(matrix.variant)
    if seed and (Path(seed) / BASE_CONFIG).is_file():  # made whole, or its base only
        return kconfig.parse_config((Path(seed) / BASE_CONFIG).read_text())
    if matrix.base in BASES:
        return KconfigSession(Path(settings.tree), scratch / f"base-{matrix.variant}", runner, log,
                              arch=matrix.arch,
                              toolchain=matrix.toolchain).config_target(matrix.base)
    return kconfig.parse_config(Path(matrix.base).read_text())


def kconfig_group(matrix: Matrix, combo: Combination) -> str:
    """What a combination's resolution depends on besides its request and the tree: the
    architecture and the toolchain (Kconfig probes the compiler: CC_IS_CLANG, GCC_VERSION ...).
    Every combination of a group is resolved in one Kconfig session."""
    return matrix.built_with(combo).variant


def resolve_all(settings: RunSettings, matrix: Matrix, symbols: SymbolTable, runner: Runner,
                base: Config, scratch: Path, log: IO[str], workers: int = 2,
                fingerprint: str = "") -> dict[str, Resolution]:
    """Resolve the selected combinations: every request of a Kconfig group (an architecture
    and toolchain) in one container and one Kconfig parse (KconfigSession.resolve_each); the
    requests that do not hold then get their explanations and repairs, `workers` scratch trees
    in parallel, as before. `base` is the matrix's own base config; a combination with its own
    architecture or toolchain resolves against theirs, in a session of theirs. `fingerprint`:
    the tree's kconfig_fingerprint when the caller has it (it reads every Kconfig file)."""
    combos = [c for c in matrix.combinations if not settings.only or c.id in settings.only]
    views = {v.variant: v for v in matrix.views([c.id for c in combos])}
    bases = {name: base if name == matrix.variant else
             base_config(settings, view, runner, scratch, log) for name, view in views.items()}
    variant_of = {c.id: matrix.built_with(c).variant for c in combos}
    memo = Path(settings.cache) / "resolved"
    memo.mkdir(parents=True, exist_ok=True)
    fingerprint = fingerprint or kconfig_fingerprint(Path(settings.tree))
    requests = {c.id: requested_for(settings, matrix, c, symbols, runner) for c in combos}
    known: dict[str, Path] = {}
    found: dict[str, Resolution] = {}

    def memo_file(view: Matrix, request: Config, repair: bool) -> Path:
        # the same tree, image, toolchain, base and request always resolve the same way
        return memo / (hashlib.sha256(json.dumps([
            MEMO_VERSION, fingerprint, settings.image, view.arch.name, view.toolchain.name,
            sorted(bases[view.variant].items()), sorted(request.items()), repair]).encode()
        ).hexdigest()[:20] + ".json")

    for c in combos:
        known[c.id] = memo_file(views[variant_of[c.id]], requests[c.id], c.repair)
        res = remembered(known[c.id], c.id, log)
        if res is not None:
            found[c.id] = res

    groups: dict[str, list[Combination]] = {}
    for c in combos:
        if c.id not in found:
            groups.setdefault(kconfig_group(matrix, c), []).append(c)
    # a seed made only up to its base config (seeds.ensure_base): its config-to-be (what
    # make olddefconfig makes of base + common config) is asked in its group's parse, so the
    # trees are planned from it as from a made seed's .config
    seed_configs: dict[str, Config] = {}
    seed_asks: dict[str, tuple[Config, Path]] = {}
    for name, view in views.items():
        seed = settings.seed_for(name)
        if not seed or (Path(seed) / SEED_MARKER).exists():
            continue
        from .seeds import seed_request  # seeds builds on the pipeline, which builds on this

        ask = seed_request(view, symbols)
        text_file = memo_file(view, ask, False).with_suffix(".config")
        try:
            seed_configs[name] = kconfig.parse_config(text_file.read_text())
        except (OSError, UnicodeDecodeError):
            seed_asks[name] = (ask, text_file)
            groups.setdefault(name, [])
    rest: list[Combination] = []

    def one_group(group: str, own: IO[str]) -> tuple[list[str | None], float]:
        started = time.monotonic()
        asks = [requests[c.id] for c in groups[group]] + \
            ([seed_asks[group][0]] if group in seed_asks else [])
        texts = each_in_group(settings, views[group], runner, group, bases[group], asks,
                              fingerprint, scratch, own)
        if group in seed_asks and texts[-1] is not None:
            results.atomic_write(seed_asks[group][1], texts[-1])
            seed_configs[group] = kconfig.parse_config(texts[-1])
        return texts[:len(groups[group])], time.monotonic() - started

    # the groups (architectures, toolchains) side by side: each is one single-threaded parse
    done = side_by_side(log, list(groups), one_group, workers)
    for (group, members), (texts, seconds) in zip(groups.items(), done, strict=True):
        share = round(seconds / max(1, len(members)), 1)
        for c, text in zip(members, texts, strict=True):
            res = holding(c, bases[group], requests[c.id],
                          None if text is None else kconfig.parse_config(text))
            if res is None or text is None:
                rest.append(c)  # does not hold (or was not resolved): explained, repaired
                continue
            res.seconds = share
            found[c.id] = res
            results.atomic_write(known[c.id].with_suffix(".config"), text)
            results.atomic_write(known[c.id], json.dumps(asdict(res)))

    lanes = [rest[i::workers] for i in range(workers)]

    def lane(i: int) -> list[Resolution]:
        sessions: dict[str, KconfigSession] = {}
        out = []
        for c in lanes[i]:
            view = views[variant_of[c.id]]
            where = f"lane{i}" if view.variant == matrix.variant else f"lane{i}-{view.variant}"
            session = sessions.setdefault(view.variant, KconfigSession(
                Path(settings.tree), scratch / where, runner, log, arch=view.arch,
                toolchain=view.toolchain))
            res = resolve_one(session, bases[view.variant], requests[c.id], c)
            results.atomic_write(known[c.id], json.dumps(asdict(res)))
            out.append(res)
        return out

    if rest:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found.update({r.combination: r for rs in pool.map(lane, range(workers)) for r in rs})
    ordered = [found[c.id] for c in combos]
    keep_configs(Path(settings.run_dir), {c.id: known[c.id].with_suffix(".config") for c in combos},
                 found)
    boots = {c.id for c in combos if Job(settings, matrix, c, symbols, runner).boots}
    for name in views:  # trees are never shared across architectures or toolchains
        theirs = [r for r in ordered if variant_of[r.combination] == name]
        mark_duplicates(theirs)
        place_in_trees(settings, theirs, boots,
                       seed_delta(settings, bases[name], name, seed_configs.get(name)),
                       "" if name == matrix.variant else f"{name}-")
    return {r.combination: r for r in ordered}


def group_session(settings: RunSettings, matrix: Matrix, runner: Runner, group: str,
                  fingerprint: str, log: IO[str]) -> tuple[KconfigSession, Path]:
    """The Kconfig session kept in the cache for the tree, image and group, and its lock."""
    key = hashlib.sha256(json.dumps([fingerprint, settings.image, group]).encode()).hexdigest()[:16]
    home = Path(settings.cache) / "kconfig-session"
    home.mkdir(parents=True, exist_ok=True)
    return (KconfigSession(Path(settings.tree), home / key, runner, log, arch=matrix.arch,
                           toolchain=matrix.toolchain), home / f"{key}.lock")


def prepare_session(settings: RunSettings, matrix: Matrix, runner: Runner, fingerprint: str,
                    seed: Path | None, log: IO[str]) -> None:
    """Prepare the Kconfig session of `matrix`'s group (its conf, lkc objects and the dumper)
    ahead of the resolve step, side by side with the seeds: it needs no base config (any
    config builds conf and shows Kconfig's environment). `fingerprint`: kconfig_fingerprint of
    the tree, made once for all groups; `seed`: the group's seed tree, whose conf it takes once
    its base config is made (no second compile of conf). A failure here is only logged: the
    resolve step tries again, and falls back to one make per request."""
    from . import locks

    session, lock = group_session(settings, matrix, runner, matrix.variant, fingerprint, log)
    try:
        with locks.held(lock, f"the Kconfig session {session.out}", lambda ln: write_log(
                log, ln + "\n")):
            from .pipeline import BASE_CONFIG

            if seed is not None and (seed / BASE_CONFIG).is_file():  # its config target ended
                session.adopt_conf(seed)
            session.prepare_each({})
    except InfraError as exc:
        log.write(f"kmatrix: the Kconfig session {session.out} could not be prepared ahead "
                  f"({exc}); the resolve step tries again\n")


def each_in_group(settings: RunSettings, matrix: Matrix, runner: Runner, group: str, base: Config,
                  configs: list[Config], fingerprint: str, scratch: Path,
                  log: IO[str]) -> list[str | None]:
    """base + each request through `make olddefconfig`'s own code, one parse for them all, in a
    Kconfig session kept in the cache for the tree, image and group (prepared once, under a
    lock): the .config text make olddefconfig writes for each. A session that cannot be
    prepared or run resolves nothing here: None for each, and every request is resolved one
    make at a time instead."""
    from . import locks
    from .kconfig.config import merge

    session, lock = group_session(settings, matrix, runner, group, fingerprint, log)

    def note(line: str) -> None:
        log.write(line + "\n")

    try:
        with locks.held(lock, f"the Kconfig session {session.out}", note):
            session.prepare_each(base)
            with contextlib.suppress(OSError):
                os.utime(session.out)  # its last use, for `kmatrix cache --prune`
            return session.resolve_each_text(
                [merge(base, {kconfig.config_name(k): v for k, v in r.items()}) for r in configs],
                scratch / f"each-{session.out.name}")
    except InfraError as exc:
        log.write(f"kmatrix: one Kconfig session for {len(configs)} requests failed ({exc}): "
                  "resolving each with make\n")
        return [None] * len(configs)


def keep_configs(run_dir: Path, memo_texts: dict[str, Path],
                 found: dict[str, Resolution]) -> None:
    """Copy into the run directory (CONFIGS_DIR/COMBINATION.config) the remembered .config text
    of every combination whose request holds, when it is the one its resolution names (its
    config hash): what the build tree takes as its .config (resolved_config_text)."""
    for combo, memo_text in memo_texts.items():
        res = found.get(combo)
        if res is None or not res.holds or res.added or res.unsatisfiable:
            continue
        try:
            text = memo_text.read_text()
        except (OSError, UnicodeDecodeError):
            continue  # remembered before the texts were kept: the tree runs make olddefconfig
        if kconfig.config_hash(kconfig.parse_config(text)) == res.config_hash:
            results.atomic_write(run_dir / CONFIGS_DIR / f"{combo}.config", text)


def resolved_config_text(run_dir: Path, res: Resolution | None) -> str | None:
    """The exact .config `make olddefconfig` writes for this combination's request, as the
    resolve step's Kconfig parse wrote it (kept by keep_configs); None when there is none or
    it is not the one the resolution names."""
    if res is None or not res.config_hash:
        return None
    try:
        text = (run_dir / CONFIGS_DIR / f"{res.combination}.config").read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return text if kconfig.config_hash(kconfig.parse_config(text)) == res.config_hash else None


def holding(combo: Combination, base: Config, requested: Config,
            resolved: Config | None) -> Resolution | None:
    """The resolution of a request whose every value holds in `resolved` (what resolve_one
    finds in its first olddefconfig: no explanation, no repair); None otherwise."""
    from .kconfig.repair import failing

    if resolved is None:
        return None
    if failing({kconfig.config_name(k): v for k, v in requested.items()}, resolved):
        return None
    res = Resolution(combo.id)
    res.config_hash = kconfig.config_hash(resolved)
    res.delta = delta_from(base, resolved)
    return res


def mark_duplicates(ordered: list[Resolution]) -> None:
    """A combination that resolves to the same .config as an earlier one it builds after
    builds in that one's tree. Only a combination that is built can be the first: an
    unsatisfiable one never is (a cover combination of a sample can resolve like one)."""
    first: dict[str, str] = {}
    for res in ordered:
        res.duplicate_of = ""
        if res.unsatisfiable:
            continue
        if res.config_hash in first:
            res.duplicate_of = first[res.config_hash]
        else:
            first[res.config_hash] = res.combination


def seed_delta(settings: RunSettings, base: Config, variant: str = variants.DEFAULT,
               to_be: Config | None = None) -> Config:
    """The seed tree's resolved config (base + common values) as a delta from the base: where
    every new output tree starts (`to_be`: a seed not made yet, as the resolve step found it)."""
    if to_be is not None:
        return delta_from(base, to_be)
    seed = settings.seed_for(variant)
    seed_config = Path(seed) / ".config" if seed else None
    if seed_config is None or not (Path(seed) / SEED_MARKER).exists() or \
            not seed_config.is_file():
        return {}
    return delta_from(base, kconfig.parse_config(seed_config.read_text()))


def place_in_trees(settings: RunSettings, ordered: list[Resolution],
                   boots: set[str], seed: Config, prefix: str = "") -> None:
    """Give every combination to build its output tree and its place in that tree's sequence
    (`prefix` names the trees of another architecture or toolchain than the matrix's)."""
    from . import schedule

    todo = [r for r in ordered if not r.unsatisfiable]
    tag = prefix + (f"{Path(settings.seed).name[:8]}-" if settings.seed else "")
    # shards are planned as one machine with every runner's workers (harness/shard.py)
    workers = settings.workers * int(settings.shard.get("count", 1))
    slots = schedule.plan({r.combination: r.delta for r in todo}, boots, workers,
                          settings.trees,  # prepare_run makes it "own" under --pristine
                          {r.combination: r.duplicate_of for r in todo if r.duplicate_of},
                          tag, seed)
    for r in todo:
        r.tree, r.position = slots[r.combination].tree, slots[r.combination].position


def kconfig_fingerprint(tree: Path, files: list[Path] | None = None) -> str:
    """Every Kconfig file of the tree by path, size and mtime (`files`: kconfig.kconfig_files,
    if the caller listed them already): a tree that changed (a git checkout moved, a file
    edited) never reuses a remembered resolution, nor a remembered symbol scan."""
    digest = hashlib.sha256(str(tree).encode())
    for path in kconfig.kconfig_files(tree) if files is None else files:
        st = path.stat()
        digest.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def save(run_dir: Path, resolutions: dict[str, Resolution]) -> None:
    results.atomic_write(run_dir / RESOLVE_FILE,
                         json.dumps({k: asdict(v) for k, v in resolutions.items()}, indent=2))


def remembered(known: Path, combo: str, log: IO[str]) -> Resolution | None:
    """A remembered resolution; a damaged entry (cut short, not JSON, not a resolution) is
    removed and resolved again, never a traceback."""
    if not known.exists():
        return None
    try:
        return Resolution(**{**json.loads(known.read_text()), "combination": combo,
                             "seconds": 0.0})
    except (OSError, ValueError, TypeError) as exc:
        log.write(f"kmatrix: {known} is damaged ({type(exc).__name__}): resolving again\n")
        known.unlink(missing_ok=True)
        return None


def load(run_dir: Path) -> dict[str, Resolution]:
    path = run_dir / RESOLVE_FILE
    if not path.exists():
        return {}
    try:
        return {k: Resolution(**v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise InfraError(f"{path} is damaged ({type(exc).__name__}): rerun the matrix") from exc


def tree_lines(resolutions: dict[str, Resolution]) -> list[str]:
    """Each shared tree's sequence and the options that change along it after its first
    combination (what the followers' incremental builds pay for)."""
    from .schedule import transitions

    trees: dict[str, list[Resolution]] = {}
    for r in sorted(resolutions.values(), key=lambda r: r.position):
        if r.tree:
            trees.setdefault(r.tree, []).append(r)
    lines = []
    for tree, members in trees.items():
        if len(members) < 2:
            continue
        changes = transitions([r.combination for r in members[1:]],
                              {r.combination: r.delta for r in members}, members[0].delta)
        lines.append(f"tree {tree}: {' -> '.join(r.combination for r in members)} "
                     f"({changes} option changes after the first)")
    return lines


def report_lines(resolutions: dict[str, Resolution]) -> list[str]:
    lines = []
    for r in resolutions.values():
        if r.unsatisfiable:
            lines.append(f"{r.combination}: unsatisfiable, not built: {r.unsatisfiable}")
        if r.duplicate_of:
            lines.append(f"{r.combination}: resolves to the same .config as {r.duplicate_of}: "
                         "built once, in one tree")
        if r.added:
            added = " ".join(f"+{k.removeprefix('CONFIG_')}={v}" for k, v in r.added.items())
            lines.append(f"{r.combination}: repaired: {added}")
    return lines
