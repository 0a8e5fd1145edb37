"""The nightly flow, as data: the `kmatrix` commands the shipped workflow
(.github/workflows/nightly.yml) runs, and the same flow on one machine (`kmatrix nightly`,
`nox -s nightly`). Both render the templates below, and a test checks that the workflow's
commands are exactly these, so what CI runs is what the tests run.

    image     the builder image (the workflow restores it from its cache first)
    shard     each of the N shards: `kmatrix run --shard K/N` (one runner each; here in turn)
    merge     one run directory from the N shards, its reports, the new failures bisected
    compare   the merged run against the previous nightly: Markdown and JSON beside it
    history   each combination's verdicts over the nightlies kept; flaky ones flagged
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

STEPS: dict[str, str] = {
    "keys": "kmatrix nightly --keys",
    "image": "kmatrix image",
    "shard": "kmatrix run {matrix} --shard {shard}/{shards} --results {results} {options}",
    "merge": "kmatrix merge {merged} {shard_dirs} --allow-missing "
             "--bisect-new-failures={budget} {options}",
    "compare": "kmatrix compare {previous} {merged} --json {merged}/comparison.json "
               "--markdown {merged}/comparison.md",
    "history": "kmatrix history --results {results}",
}

# The values the workflow renders each step with (shell variables and GitHub expressions).
WORKFLOW_VALUES: dict[str, dict[str, str]] = {
    "keys": {}, "image": {},
    "shard": {"matrix": "$MATRIX", "shard": "${{ matrix.shard }}", "shards": "$SHARDS",
              "results": "results", "options": "$KMATRIX_OPTIONS"},
    "merge": {"merged": "$MERGED", "shard_dirs": "$SHARD_DIRS", "budget": "$BISECT_BUDGET",
              "options": "$KMATRIX_MERGE_OPTIONS"},
    "compare": {"previous": "$PREVIOUS", "merged": "$MERGED"},
    "history": {"results": "results"},
}


def render(step: str, **values: str) -> str:
    """A step's command line with its values (the workflow's are shell expressions)."""
    return " ".join(STEPS[step].format(**values).split())


def argv(step: str, **values: str) -> list[str]:
    """A step as an argument list for this machine: `kmatrix` is this Python's harness."""
    words = shlex.split(render(step, **values))
    return [sys.executable, "-m", "harness", *words[1:]]


def cache_keys(containers: Path | None = None) -> dict[str, str]:
    """The workflow's cache keys, made like kmatrix's own: the image by its tag (a hash of the
    package list), the compiler cache by the image it compiled with."""
    from . import image

    tag = image.read_spec(containers) if containers else image.read_spec()
    name = tag.tag.replace(":", "-").replace("/", "-")
    return {"image": tag.tag, "image_key": f"kmatrix-image-{name}",
            "ccache_key_prefix": f"kmatrix-ccache-{name}-"}


def _runs(results: Path) -> set[Path]:
    """The run directories in `results` (not results/latest, not pytest's cache)."""
    return {p for p in results.iterdir() if not p.is_symlink() and (p / "run.json").is_file()} \
        if results.is_dir() else set()


def local_nightly(matrix: Path, results: Path, shards: int, budget: float,
                  options: Sequence[str] = (), say: Callable[[str], None] = print,
                  env: Mapping[str, str] | None = None) -> int:
    """The workflow's steps on one machine, the shards in turn: the merged run's exit status."""
    from .session import new_run_id

    def run(step: str, **values: str) -> int:
        command = argv(step, **values)
        say(f"kmatrix nightly: {render(step, **values)}")
        return subprocess.run(command, env=None if env is None else dict(env)).returncode

    opts = shlex.join(options)
    if run("image") != 0:
        return 3
    dirs = []
    for k in range(1, shards + 1):
        before = _runs(results)
        status = run("shard", matrix=shlex.quote(str(matrix)), shard=str(k), shards=str(shards),
                     results=shlex.quote(str(results)), options=opts)
        made = sorted(_runs(results) - before)
        if status not in (0, 1) or not made:
            say(f"kmatrix nightly: shard {k}/{shards} ended with exit status {status}")
        dirs += made
    merged = results / f"{new_run_id()}-nightly"
    status = run("merge", merged=shlex.quote(str(merged)),
                 shard_dirs=shlex.join(str(d) for d in dirs), budget=f"{budget:g}", options="")
    from .compare import previous_comparable_run

    previous = previous_comparable_run(results, merged) if merged.is_dir() else None
    if previous is not None:
        run("compare", previous=shlex.quote(str(previous)), merged=shlex.quote(str(merged)))
        run("history", results=shlex.quote(str(results)))
    return status
