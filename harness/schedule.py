"""Which output tree builds which combination, and in what order: pure functions, no processes.

Two policies (``build.trees`` in matrix.yaml, ``kmatrix run --trees``):

* ``lanes`` (the default): a few shared warm trees ("lanes"), the combinations of each lane in
  an order where consecutive ones differ in as few resolved options as possible (greedy nearest
  neighbour from the seed config). Kbuild's fixdep then recompiles only the objects whose
  ``CONFIG_`` inputs changed since the previous combination, and a bootable kernel is relinked
  instead of built again. The object tier gets one lane per worker; the boot tier its own lane(s)
  (a bootable tree is big and a fresh build costs minutes, so its kernels follow each other);
  the workers are split between them, so the boot lane starts at once beside the object lanes.
* ``own``: every combination keeps its own warm tree (copied from the seed). A rerun of an
  unchanged combination is a no-op build; it costs one tree of disk per combination.

Distances are counted on each combination's *delta*: the resolved options whose values differ from
the base config, as the resolve step found them (`resolve.Resolution.delta`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

POLICIES = ("lanes", "own")
BOOT_CONFIGS_PER_LANE = 4  # distinct bootable configs one boot lane takes before another opens


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


def plan(deltas: Mapping[str, Mapping[str, str]], boots: set[str], workers: int,
         policy: str = "lanes", same_as: Mapping[str, str] | None = None,
         tag: str = "") -> dict[str, Slot]:
    """Each combination's tree and position.

    `deltas`: every combination to build (matrix order) with its delta from the base.
    `boots`: the ones that boot (they need a bootable kernel). `same_as`: duplicates (a
    combination resolving to the same .config as an earlier one), which build right after that
    one in its tree under either policy. `tag` prefixes lane names, so two matrices do not
    take turns in one lane.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown tree policy {policy!r}: use one of {', '.join(POLICIES)}")
    same_as = dict(same_as or {})
    followers: dict[str, list[str]] = {}
    for dup, first in same_as.items():
        followers.setdefault(first, []).append(dup)
    unique = [c for c in deltas if c not in same_as]
    if policy == "own":
        pieces = [(c, [c]) for c in unique]
    else:
        pieces = []
        booting = sum(c in boots for c in unique)
        boot_lanes = max(1, min(workers, -(-booting // BOOT_CONFIGS_PER_LANE))) if booting else 0
        # a boot lane (minutes for its first kernel) runs beside the object lanes, not after
        tiers = [("lane", [c for c in unique if c not in boots], max(1, workers - boot_lanes)),
                 ("boot-lane", [c for c in unique if c in boots], max(1, boot_lanes))]
        for prefix, combos, lanes in tiers:
            path = nearest_path({c: deltas[c] for c in combos})
            pieces += [(f"{tag}{prefix}-{n}", piece)
                       for n, piece in enumerate(cut(path, lanes), start=1)]
    slots: dict[str, Slot] = {}
    for tree, piece in pieces:
        order = [x for c in piece for x in (c, *followers.get(c, []))]
        slots.update({c: Slot(tree, i) for i, c in enumerate(order)})
    return slots


def transitions(order: Sequence[str], deltas: Mapping[str, Mapping[str, str]]) -> int:
    """Options changed along one tree's sequence, from the seed: what its builds pay for."""
    here: Mapping[str, str] = {}
    total = 0
    for c in order:
        total += distance(here, deltas[c])
        here = deltas[c]
    return total
