"""`kmatrix merge OUT SHARD_DIR...`: one run directory from the N shards of one run.

The shards must be parts of one run: the same fingerprint (matrix, kernel, image, selection:
harness/shard.py), the same number of shards, the same partition, each part given once. Every
combination of the partition must have exactly one record among the shards: a missing one
(a shard that never ran or was killed early) or one found in two shards is named, and the merge
stops -- or, with `allow_missing`, the missing ones get a record that says so (not judged:
an infrastructure verdict, never a pass).

OUT then holds what one run would hold: each combination's directory (record, logs, configs,
reproducer, whatever else the run wrote there), run.json (the shards' settings, selection and
fingerprint, `shard: {merged: [...]}`), resolve.json, and every report of a run, written by
`reports.write_all` (through `results.finish_run`) from the merged records; each shard's own
files (run.json, seed.log, resolve.log, its summary) are kept under `shards/K/`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from . import resolve, results
from .settings import RunSettings
from .shard import fingerprint_difference
from .verdict import InputError

SHARD_FILES = ("run.json", "seed.log", "resolve.log", "summary.md", "resolve.json")


@dataclass
class Shard:
    path: Path
    settings: RunSettings

    @property
    def name(self) -> str:
        return f"{self.settings.shard.get('index')}/{self.settings.shard.get('count')}"


def load_shard(path: Path) -> Shard:
    if not (path / "run.json").is_file():
        raise InputError(f"{path} is not a run directory (no run.json): give the shards' "
                         "results/<run-id> directories")
    settings = RunSettings.load(path)
    if not settings.shard.get("index") or not isinstance(settings.shard.get("partition"), list):
        raise InputError(f"{path} is not a shard (its run.json has no shard K/N): run it with "
                         "`kmatrix run --shard K/N`")
    return Shard(path, settings)


def check(shards: list[Shard]) -> list[str]:
    """One line for the first way the shards are not parts of one run; else every
    combination of the partition, in order."""
    if not shards:
        raise InputError("no shard directories given: kmatrix merge OUT SHARD_DIR...")
    first = shards[0]
    for other in shards[1:]:
        differs = fingerprint_difference(first.settings.fingerprint, other.settings.fingerprint)
        if differs:
            raise InputError(f"shards {first.path.name} and {other.path.name} are not parts of "
                             f"one run: {differs}; merge the shards of one run")
        if other.settings.shard["count"] != first.settings.shard["count"]:
            raise InputError(f"{first.path.name} is shard {first.name}, {other.path.name} is "
                             f"shard {other.name}: merge shards of one N")
        if other.settings.shard.get("partition_digest") != \
                first.settings.shard.get("partition_digest"):
            raise InputError(f"shards {first.path.name} and {other.path.name} split the matrix "
                             "differently (runners of different sizes, or a different previous "
                             "run to balance by): run every shard with the same --workers and "
                             "the same results")
    seen: dict[int, Path] = {}
    for s in shards:
        index = int(s.settings.shard["index"])
        if index in seen:
            raise InputError(f"shard {s.name} given twice: {seen[index]} and {s.path}")
        seen[index] = s.path
    return [c for part in first.settings.shard["partition"] for c in part]


def placements(shards: list[Shard]) -> dict[str, list[Path]]:
    """Which shard directories hold a record of each combination."""
    found: dict[str, list[Path]] = {}
    for s in shards:
        for path in sorted(s.path.glob(f"*/{results.RECORD}")):
            found.setdefault(path.parent.name, []).append(s.path)
    return found


def merge(out: Path, dirs: list[Path], allow_missing: bool = False) -> RunSettings:
    """Check the shards, then write OUT (a new directory) as one run. Returns its settings;
    the caller writes the reports (`results.finish_run`, which calls `reports.write_all`)."""
    shards = [load_shard(d) for d in dirs]
    expected = check(shards)
    found = placements(shards)
    twice = sorted(c for c, where in found.items() if len(where) > 1)
    if twice:
        where = ", ".join(f"{c} ({' and '.join(p.name for p in found[c])})" for c in twice[:5])
        raise InputError(f"{len(twice)} combination(s) in more than one shard: {where}: "
                         "merge the shards of one run")
    stray = sorted(set(found) - set(expected))
    if stray:
        raise InputError(f"records of combinations outside the partition: {', '.join(stray[:5])}"
                         ": merge the shards of one run")
    missing = [c for c in expected if c not in found]
    count = int(shards[0].settings.shard["count"])
    given = sorted(int(s.settings.shard["index"]) for s in shards)
    absent = [f"{k}/{count}" for k in range(1, count + 1) if k not in given]
    if missing and not allow_missing:
        why = f"shard(s) {', '.join(absent)} not given" if absent else "a shard did not finish"
        raise InputError(f"{len(missing)} combination(s) have no record in any shard ({why}): "
                         f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}; give "
                         "every shard, or --allow-missing to report them as not run")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already exists and is not empty: give a new directory")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    settings = _merged_settings(shards, out, expected)
    planned: dict[str, resolve.Resolution] = {}
    for s in sorted(shards, key=lambda s: int(s.settings.shard["index"])):
        planned.update(resolve.load(s.path))
        keep = out / "shards" / str(s.settings.shard["index"])
        keep.mkdir(parents=True)
        for name in SHARD_FILES:
            if (s.path / name).is_file():
                shutil.copy2(s.path / name, keep / name)
        for combo in (c for c, where in found.items() if where[0] == s.path):
            shutil.copytree(s.path / combo, out / combo, symlinks=True)
    for combo in missing:
        results.write_record(out, results.Record(
            combination=combo, run_id=settings.run_id, matrix=settings.matrix_path, values={},
            requested={}, status="missing",
            reasons=[f"no record in any shard ({', '.join(absent) or 'its shard'} did not "
                     "finish): not run"]))
    resolve.save(out, planned)
    symbols = shards[0].path / "symbols.json"
    if symbols.is_file():
        shutil.copy2(symbols, out / "symbols.json")
    settings.save()
    return settings


def _merged_settings(shards: list[Shard], out: Path, expected: list[str]) -> RunSettings:
    first = min(shards, key=lambda s: int(s.settings.shard["index"]))
    data = dict(vars(first.settings))
    shard = first.settings.shard
    data.update(run_id=out.name, run_dir=str(out), only=list(shard.get("selection", [])),
                shard={"merged": [s.settings.run_id for s in sorted(
                           shards, key=lambda s: int(s.settings.shard["index"]))],
                       "count": shard["count"], "partition": shard["partition"],
                       "partition_digest": shard.get("partition_digest", ""),
                       "combinations": len(expected)})
    return RunSettings(**data)
