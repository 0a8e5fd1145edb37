"""Which output tree builds which combination, and in what order: pure functions, no processes.

Kbuild's fixdep recompiles only the objects whose ``CONFIG_`` inputs changed since a tree's last
build, so the cost of a combination is how far its resolved config is from the config its tree
last held. Three policies (``build.trees`` in matrix.yaml, ``kmatrix run --trees``):

* ``nearest`` (the default): the combinations of a tier (object tier, boot tier) are ordered by
  greedy nearest neighbour from the seed config; each one then follows the tree whose last
  combination is nearest to it when that is much nearer than the seed (FOLLOW_FACTOR), or
  starts its own tree from the seed. A matrix whose combinations are each "the seed plus an
  option or two" gets one tree per combination (a rerun is a no-op build, and they build in
  parallel); combinations close to each other and far from the seed -- bootable kernels above
  all, whose first build costs minutes -- follow each other in one tree, so the next one is an
  incremental rebuild and relink. A tree takes at most max(4, tier size / workers).
* ``lanes``: at most one tree per worker (plus the boot tier's), each a contiguous piece of the
  nearest-neighbour path: the least disk, for large matrices.
* ``own``: every combination its own tree, copied from the seed.

Distances are counted on *deltas*: the resolved options whose values differ from the base
config, as the resolve step found them (`resolve.Resolution.delta`); the seed has one too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

POLICIES = ("nearest", "lanes", "own")
BRANCH = "~"  # in a tree's further directories (tree~confighash); never in an id (matrix.ID_RE)
BOOT_CONFIGS_PER_LANE = 4  # distinct bootable configs one boot lane takes before another opens
# A combination follows another tree only when that is at least this many times nearer than
# the seed: a follower pays its distance on the first run and again on every rerun (its tree
# goes back to the first combination's config and forth), a tree of its own pays the distance
# from the seed once and nothing on reruns. Measured (docs/performance.md, runs E and F):
# following at 1x made the default object tier slower warm (38.9 s against 34.7 s).
FOLLOW_FACTOR = 2


@dataclass(frozen=True)
class Slot:
    """Where a combination builds: its tree's name and its place in that tree's sequence."""

    tree: str
    position: int


def distance(a: Mapping[str, str], b: Mapping[str, str]) -> int:
    """How many options differ between two resolved configs, given as deltas from one base."""
    return sum(1 for s in set(a) | set(b) if a.get(s) != b.get(s))


def nearest_path(deltas: Mapping[str, Mapping[str, str]],
                 start: Mapping[str, str] | None = None) -> list[str]:
    """The combinations in greedy nearest-neighbour order from `start` (the seed: empty delta).

    Ties go to the earlier combination of the matrix, so the same matrix always gives the same
    order. Identical configs (distance 0) end up next to each other.
    """
    left = list(deltas)
    here: Mapping[str, str] = start or {}
    path = []
    while left:
        nxt = min(left, key=lambda c: (distance(here, deltas[c]), left.index(c)))
        path.append(nxt)
        left.remove(nxt)
        here = deltas[nxt]
    return path


def cut(path: Sequence[str], pieces: int) -> list[list[str]]:
    """The path in `pieces` contiguous, nearly equal parts (fewer when it is shorter)."""
    pieces = max(1, min(pieces, len(path)))
    size, extra = divmod(len(path), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(list(path[start:end]))
        start = end
    return [p for p in out if p]


def chains(order: Sequence[str], deltas: Mapping[str, Mapping[str, str]],
           seed: Mapping[str, str], cap: int) -> list[list[str]]:
    """`nearest`: each combination (in `order`) follows the tree whose last combination is
    nearest to it when that is FOLLOW_FACTOR times nearer than the seed, else starts a tree of
    its own from the seed (a rerun of it is then a no-op, and it builds in parallel). A tree
    takes at most `cap` combinations."""
    trees: list[list[str]] = []
    for c in order:
        open_trees = [t for t in trees if len(t) < cap]
        best = min(open_trees, key=lambda t: distance(deltas[t[-1]], deltas[c]), default=None)
        if best is not None and (FOLLOW_FACTOR * distance(deltas[best[-1]], deltas[c])
                                 < distance(seed, deltas[c])):
            best.append(c)
        else:
            trees.append([c])
    return trees


def plan(deltas: Mapping[str, Mapping[str, str]], boots: set[str], workers: int,
         policy: str = "nearest", same_as: Mapping[str, str] | None = None,
         tag: str = "", seed: Mapping[str, str] | None = None) -> dict[str, Slot]:
    """Each combination's tree and position.

    `deltas`: every combination to build (matrix order) with its delta from the base; `seed`:
    the seed tree's delta (base + common config), where a new tree starts. `boots`: the ones
    that boot (they need a bootable kernel). `same_as`: duplicates (a combination resolving to
    the same .config as an earlier one), which build right after that one in its tree under
    every policy. `tag` prefixes lane names, so two seeds do not take turns in one lane.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown tree policy {policy!r}: use one of {', '.join(POLICIES)}")
    seed = seed or {}
    same_as = dict(same_as or {})
    followers: dict[str, list[str]] = {}
    for dup, first in same_as.items():
        followers.setdefault(first, []).append(dup)
    unique = [c for c in deltas if c not in same_as]
    tiers = [("lane", [c for c in unique if c not in boots]),
             ("boot-lane", [c for c in unique if c in boots])]
    if policy == "own":
        pieces = [(c, [c]) for c in unique]
    elif policy == "nearest":
        pieces = []
        for _, combos in tiers:
            cap = max(BOOT_CONFIGS_PER_LANE, -(-len(combos) // max(1, workers)))
            path = nearest_path({c: deltas[c] for c in combos}, seed)
            pieces += [(chain[0], chain) for chain in chains(path, deltas, seed, cap)]
    else:
        pieces = []
        booting = len(tiers[1][1])
        boot_lanes = max(1, min(workers, -(-booting // BOOT_CONFIGS_PER_LANE))) if booting else 0
        # a boot lane (minutes for its first kernel) runs beside the object lanes, not after
        lanes = {"lane": max(1, workers - boot_lanes), "boot-lane": max(1, boot_lanes)}
        for prefix, combos in tiers:
            path = nearest_path({c: deltas[c] for c in combos}, seed)
            pieces += [(f"{tag}{prefix}-{n}", piece)
                       for n, piece in enumerate(cut(path, lanes[prefix]), start=1)]
    slots: dict[str, Slot] = {}
    for tree, piece in pieces:
        order = [x for c in piece for x in (c, *followers.get(c, []))]
        slots.update({c: Slot(tree, i) for i, c in enumerate(order)})
    return slots


def transitions(order: Sequence[str], deltas: Mapping[str, Mapping[str, str]],
                seed: Mapping[str, str] | None = None) -> int:
    """Options changed along one tree's sequence, from the seed: what its builds pay for."""
    here: Mapping[str, str] = seed or {}
    total = 0
    for c in order:
        total += distance(here, deltas[c])
        here = deltas[c]
    return total


def branch_dirs(tree: str, members: Sequence[tuple[str, str, bool]]) -> dict[str, tuple[str, str]]:
    """Where each combination of one tree's sequence builds: `members` are (combination,
    resolved config hash, builds) in the sequence's order; the answer is, for each, its
    directory and the directory a new one starts as a copy of ("": the seed).

    The sequence's first config builds in the tree's own directory. Every other config builds
    in a directory of its own (tree~hash), started as a copy of the directory of the
    combination before it, so its first build is the same incremental rebuild as when they
    took turns in one directory; but each directory then keeps its config, and a rerun finds
    every config already built there instead of rebuilding each from the one before. A
    combination that will not build (its request does not hold) starts from the seed."""
    first = members[0][1] if members else ""
    out: dict[str, tuple[str, str]] = {}
    previous = ""
    for combo, digest, builds in members:
        where = tree if not digest or digest == first else f"{tree}{BRANCH}{digest[:12]}"
        out[combo] = (where, previous if builds and previous not in ("", where) else "")
        if builds:
            previous = where
    return out
