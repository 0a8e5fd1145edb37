"""What each combination of a run is expected to cost, and what that says about the run.

Made once after the resolve step (estimates.json in the run directory): each combination's
expected seconds are its duration in the previous comparable run where known, else its tier's
cost (harness/shard.py: a tree's first bootable kernel minutes, a further kernel in that tree
and its boot tens of seconds, an object-tier combination seconds). The workers take the trees
costliest first (the critical path starts first), and the progress line's time left is the
expected cost of what is left, not the mean of what finished.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import results
from .resolve import Resolution

ESTIMATES_FILE = "estimates.json"


@dataclass
class Estimates:
    seconds: dict[str, float] = field(default_factory=dict)  # expected, by combination
    # each combination's output tree, or its own directory of it when that is warm: the unit
    # the workers take (pytest-xdist's group) and the time left adds up
    tree: dict[str, str] = field(default_factory=dict)
    source: str = "per-tier estimates"  # or "durations of RUN where known"

    def save(self, run_dir: Path) -> None:
        results.atomic_write(run_dir / ESTIMATES_FILE, json.dumps(
            {"seconds": self.seconds, "tree": self.tree, "source": self.source}, indent=1))

    @classmethod
    def load(cls, run_dir: Path) -> Estimates:
        try:
            data = json.loads((run_dir / ESTIMATES_FILE).read_text())
            return cls({k: float(v) for k, v in data["seconds"].items()}, dict(data["tree"]),
                       str(data.get("source", "")))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls()  # none (a run from before estimates, a bisect): no order, mean times

    def tree_costs(self) -> dict[str, float]:
        costs: dict[str, float] = {}
        for combo, seconds in self.seconds.items():
            tree = self.tree.get(combo, combo)
            costs[tree] = costs.get(tree, 0.0) + seconds
        return costs


def expected(resolutions: Mapping[str, Resolution], boots: set[str],
             known: Mapping[str, float], warm: Collection[str] | None = None
             ) -> dict[str, float]:
    """Each combination's expected seconds, its tree's members taken in build order (the first
    bootable kernel of a tree costs minutes, the next ones in that tree an incremental build).
    A `warm` combination (its output tree already holds its .config) costs a no-op make, and
    its boot: at most that, whatever it took last time (the last run may have been cold)."""
    from .shard import (
        BOOT_FIRST_COST_S,
        BOOT_NEXT_COST_S,
        DUPLICATE_COST_S,
        OBJECT_COST_S,
        UNSATISFIABLE_COST_S,
        WARM_BOOT_COST_S,
        WARM_OBJECT_COST_S,
    )

    out: dict[str, float] = {}
    booted: set[str] = set()
    for r in sorted(resolutions.values(), key=lambda r: (r.tree_group, r.position)):
        group = r.tree_group
        if r.combination in known:
            cost = known[r.combination]
        elif r.unsatisfiable:
            cost = UNSATISFIABLE_COST_S
        elif r.duplicate_of and r.combination not in boots:
            cost = DUPLICATE_COST_S
        elif r.combination in boots:
            cost = BOOT_NEXT_COST_S if group in booted else BOOT_FIRST_COST_S
        else:
            cost = OBJECT_COST_S
        if warm and r.combination in warm and not r.unsatisfiable:
            cost = min(cost, WARM_BOOT_COST_S if r.combination in boots else WARM_OBJECT_COST_S)
        if r.combination in boots:
            booted.add(group)
        out[r.combination] = cost
    return out


def tree_rank(estimates: Estimates) -> dict[str, int]:
    """Trees costliest first (ties by name): the order the workers take them in."""
    costs = estimates.tree_costs()
    return {t: i for i, t in enumerate(sorted(costs, key=lambda t: (-costs[t], t)))}


def pace(estimates: Estimates, finished: Mapping[str, float]) -> float:
    """How much slower (above 1) or faster than expected the finished combinations ran: the
    machine's load, a colder cache. Between 0.5 and 10."""
    expected_s = sum(estimates.seconds.get(c, 0.0) for c in finished)
    if expected_s <= 0:
        return 1.0
    return min(10.0, max(0.5, sum(finished.values()) / expected_s))


def time_left(estimates: Estimates, queued: list[str], running: Mapping[str, float],
              workers: int, speed: float = 1.0) -> float:
    """Seconds left: what is queued and what the running ones still have (their expected cost
    less the time they have run, at least a tenth of it), each expected cost times `speed`
    (see pace), spread over the workers, but never less than the costliest tree's own remainder
    (its combinations run one after another)."""
    left: dict[str, float] = {}
    for combo in queued:
        tree = estimates.tree.get(combo, combo)
        left[tree] = left.get(tree, 0.0) + estimates.seconds.get(combo, 0.0) * speed
    for combo, ran in running.items():
        cost = estimates.seconds.get(combo, 0.0) * speed
        tree = estimates.tree.get(combo, combo)
        left[tree] = left.get(tree, 0.0) + max(cost - ran, cost / 10)
    if not left:
        return 0.0
    return max(sum(left.values()) / max(1, workers), max(left.values()))


def seed_costs(unmade: Mapping[str, list[str]]) -> dict[str, float]:
    """The rest of each seed the run did not make before the builds (seeds.ensure_base), made
    by whichever of its combinations comes first: its expected cost spread over them all, so
    neither the time left nor the pace (seeds.py) takes it for a slow machine."""
    from .shard import SEED_REST_COST_S

    return {c: SEED_REST_COST_S / len(combos) for combos in unmade.values() for c in combos}


def prepare(run_dir: Path, boots: set[str],
            unmade_seeds: Mapping[str, list[str]] | None = None,
            warm: Mapping[str, str] | None = None) -> Estimates:
    """The run's estimates from its resolve.json and the previous comparable run's records;
    `unmade_seeds`: the combinations of each seed not made yet (their first one makes it);
    `warm`: those whose output directory already holds their .config, and its name
    (session.warm_combinations): scheduled by that directory instead of their tree."""
    from . import compare, resolve, shard
    from .results import read_records

    found = resolve.load(run_dir)
    previous = compare.previous_comparable_run(run_dir.parent, run_dir)
    known = shard.known_durations(read_records(previous)) if previous else {}
    seconds = expected(found, boots, known, warm)
    for combo, extra in seed_costs(unmade_seeds or {}).items():
        if combo in seconds and combo not in known:
            seconds[combo] += extra
    estimates = Estimates(seconds,
                          {c: (warm or {}).get(c, r.tree_group) for c, r in found.items()},
                          f"durations of {previous.name} where known" if previous
                          else "per-tier estimates")
    estimates.save(run_dir)
    return estimates
