"""Shards: a deterministic part of the matrix for one CI runner (`kmatrix run --shard K/N`).

Every shard resolves the whole matrix (Kconfig only, remembered in the cache) and places it in
output trees as if the N runners were one machine with N times its workers; then the trees --
not the combinations -- are dealt to shards, so the combinations that share a tree (a bootable
kernel and the ones that follow it, duplicates) always run on one runner, one after the other.
Trees go to shards by expected cost, largest first, each to the least loaded shard (longest
processing time first): a tree's cost is the sum of its combinations' durations in the previous
comparable run where known, else a per-tier estimate (the first bootable kernel of a tree costs
minutes, an object-tier combination seconds). Ties break by name, so every runner computes the
same partition from the same inputs; run.json records it whole, and `kmatrix merge` refuses
shards that did not.

The fingerprint says which run a shard belongs to: the matrix (its file, fragments and base
config by content), the kernel (version, origin, commit), the builder image (tag and the
package versions inside) and the selection (`--only`, boots on or off).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .matrix import BASES, Matrix
from .resolve import Resolution
from .verdict import InputError

# Expected seconds when the previous run does not say (docs/performance.md, docs/speed.md,
# FACTS.md: an object-tier combination 4 to 7 s warm, the first bootable kernel 144 to 500 s
# (188 s cold beside the object tier on 2 cores, 2026-11-30), each further kernel in its tree
# 13 to 17 s with its boot; the rest of a seed made after the resolve step 20 to 60 s)
OBJECT_COST_S = 10.0
BOOT_FIRST_COST_S = 250.0
SEED_REST_COST_S = 30.0
BOOT_NEXT_COST_S = 30.0
DUPLICATE_COST_S = 5.0  # same .config as the one before it in its tree: no build
UNSATISFIABLE_COST_S = 1.0
# a combination whose output tree already holds its .config (a warm rerun): a no-op make
# (1 to 2.3 s for the object tier, 3 to 3.8 s for a bootable kernel, 2026-11-30 evening) and
# its boot (1.2 to 1.6 s)
WARM_OBJECT_COST_S = 1.5
WARM_BOOT_COST_S = 6.0
FINGERPRINT_PARTS = ("matrix", "kernel", "image", "selection")


@dataclass(frozen=True)
class ShardSpec:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        try:
            k, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise InputError(f"--shard {text!r}: write K/N, e.g. --shard 1/4") from None
        if not 1 <= k <= n:
            raise InputError(f"--shard {text}: K must be between 1 and N (here 1 to {n})")
        return cls(k, n)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def tree_groups(resolutions: Mapping[str, Resolution]) -> dict[str, list[str]]:
    """Each output tree's combinations in the order they build there (matrix order of trees)."""
    groups: dict[str, list[Resolution]] = {}
    for r in resolutions.values():
        groups.setdefault(r.tree_group, []).append(r)
    return {g: [r.combination for r in sorted(rs, key=lambda r: r.position)]
            for g, rs in groups.items()}


def estimate(members: list[Resolution], boots: set[str], known: Mapping[str, float]) -> float:
    """A tree's expected seconds: known durations, else the per-tier estimate."""
    total, booted = 0.0, False
    for r in members:
        if r.combination in known:
            total += known[r.combination]
        elif r.unsatisfiable:
            total += UNSATISFIABLE_COST_S
        elif r.duplicate_of and r.combination not in boots:
            total += DUPLICATE_COST_S
        elif r.combination in boots:
            total += BOOT_NEXT_COST_S if booted else BOOT_FIRST_COST_S
        else:
            total += OBJECT_COST_S
        booted = booted or r.combination in boots
    return total


def partition(groups: Mapping[str, list[str]], costs: Mapping[str, float],
              count: int) -> tuple[list[list[str]], list[float]]:
    """Deal whole trees to `count` shards, largest first, each to the least loaded shard (the
    lower index on a tie): the combinations of each shard, and each shard's expected seconds."""
    parts: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for group in sorted(groups, key=lambda g: (-costs[g], g)):
        i = min(range(count), key=lambda k: (loads[k], k))
        parts[i] += groups[group]
        loads[i] += costs[group]
    return parts, loads


def plan(resolutions: Mapping[str, Resolution], boots: set[str], known: Mapping[str, float],
         count: int, order: list[str]) -> tuple[list[list[str]], list[float]]:
    """The whole partition; each shard's combinations in matrix order (`order`)."""
    groups = tree_groups(resolutions)
    costs = {g: estimate([resolutions[c] for c in cs], boots, known)
             for g, cs in groups.items()}
    parts, loads = partition(groups, costs, count)
    rank = {c: i for i, c in enumerate(order)}
    return [sorted(p, key=lambda c: rank.get(c, len(rank))) for p in parts], loads


def known_durations(records: Iterable[object]) -> dict[str, float]:
    """Durations of the previous run's judged combinations (an infra-error says nothing)."""
    from .results import Record

    return {r.combination: r.duration_s for r in records
            if isinstance(r, Record) and r.verdict is not None and r.status == "done"
            and (r.passed or r.verdict.is_kernel_failure)}


def restrict(run_dir: Path, matrix: Matrix, boot: bool, spec: ShardSpec,
             say: Callable[[str], None] = print) -> tuple[list[str], list[list[str]]]:
    """After the resolve step: keep this shard's trees in resolve.json; its combinations (the
    caller records them as the run's selection) and the whole partition."""
    from . import compare, resolve
    from .results import read_records

    found = resolve.load(run_dir)
    previous = compare.previous_comparable_run(run_dir.parent, run_dir)
    known = known_durations(read_records(previous)) if previous else {}
    boots = {c.id for c in matrix.combinations if c.boot is not None and boot}
    order = [c.id for c in matrix.combinations]
    parts, loads = plan(found, boots, known, spec.count, order)
    mine = parts[spec.index - 1]
    resolve.save(run_dir, {k: v for k, v in found.items() if k in mine})
    source = f"durations of {previous.name} where known" if previous else "per-tier estimates"
    say(f"kmatrix: shard {spec}: {len(mine)} of {len(found)} combinations, about "
        f"{loads[spec.index - 1]:.0f} s of {sum(loads):.0f} s expected ({source})")
    return mine, parts


def shard_info(spec: ShardSpec, selection: list[str], parts: list[list[str]]) -> dict[str, object]:
    """What run.json records about the shard: which one, what the whole run selected, and the
    whole partition (every shard must have computed the same one)."""
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    return {"index": spec.index, "count": spec.count, "selection": selection,
            "partition": parts, "partition_digest": digest}


def _digest(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(hashlib.sha256(chunk).digest())
    return h.hexdigest()[:16]


def fingerprint(matrix: Matrix, kernel: Mapping[str, str | None], image: str,
                packages: Mapping[str, str], selection: list[str], boot: bool) -> dict[str, str]:
    """Each part as readable text (what a mismatch names), and the digest of all of them."""
    files = [matrix.path, *matrix.fragment_files]
    if matrix.base not in BASES:
        files.append(Path(matrix.base))
    parts = {
        "matrix": f"{matrix.path.name} {_digest(*(f.read_bytes() for f in files))}",
        "kernel": f"Linux {kernel.get('version')} ({Path(str(kernel.get('origin'))).name}"
                  f"{', commit ' + str(kernel.get('commit'))[:12] if kernel.get('commit') else ''})",
        "image": f"{image} (packages {_digest(json.dumps(sorted(packages.items())).encode())})",
        "selection": (f"--only {','.join(selection)}" if selection else "every combination")
                     + ("" if boot else ", --no-boot"),
    }
    parts["digest"] = _digest(*(parts[k].encode() for k in FINGERPRINT_PARTS))
    return parts


def fingerprint_difference(a: Mapping[str, str], b: Mapping[str, str]) -> str:
    """The first part two fingerprints differ in, as `part: A vs B` ("" when they agree)."""
    for part in FINGERPRINT_PARTS:
        if a.get(part) != b.get(part):
            return f"{part}: {a.get(part) or 'not recorded'} vs {b.get(part) or 'not recorded'}"
    return ""
