"""What a run was given, as the reports read it: run.json (kernel, image, package versions,
settings) and the matrix's layout (axes, include entries, targets, arch), recorded at the start
of the run so an old or merged run directory renders without the matrix file or the tree.

``describe_matrix`` makes the layout that `prepare_run` saves in run.json (``matrix_info``);
``load`` reads run.json back, tolerant of run directories older than this field: their layout
is then guessed from the records (the axes are the symbols most combinations set).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .results import Record

if TYPE_CHECKING:
    from .matrix import Matrix

MATRIX_COPY = "input-matrix.yaml"  # the matrix file as the run read it


def describe_matrix(matrix: Matrix) -> dict[str, Any]:
    """The matrix's layout and build inputs, as plain data for run.json."""
    return {
        "arch": matrix.arch.name, "make_arch": matrix.arch.make_arch,
        "toolchain": matrix.toolchain.name,
        "image_target": matrix.arch.image_target, "base": matrix.base,
        "fragments": [f.name for f in matrix.fragment_files],
        "common": {sym: value for sym, value, _ in matrix.common},
        "targets": list(matrix.build.targets),
        "axes": [[a.symbol, list(a.values)] for a in matrix.axes],
        "includes": list(matrix.include_ids),
        # each axis combination's place: its values in axis order (excluded places have none;
        # a sample's cover-NN combinations, which ask for a few axes only, have none either)
        "cells": {c.id: [c.axis_values[a.symbol] for a in matrix.axes]
                  for c in matrix.combinations if c.id not in matrix.include_ids
                  and all(a.symbol in c.axis_values for a in matrix.axes)},
        "boots": [c.id for c in matrix.combinations if c.boot is not None],
    }


@dataclass
class Layout:
    """How the heatmap places combinations: axis cells by their values, includes as rows."""

    axes: list[tuple[str, list[str]]]
    includes: list[str]
    cells: dict[str, list[str]] = field(default_factory=dict)  # id -> values in axis order
    selected: list[str] = field(default_factory=list)  # --only (empty: every combination)
    guessed: bool = False  # from the records (a run directory older than matrix_info)


@dataclass
class RunInfo:
    run_id: str
    matrix_path: str
    kernel: dict[str, Any] = field(default_factory=dict)
    image: str = ""
    image_id: str = ""
    image_packages: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # jobs, workers, trees, ...
    matrix_info: dict[str, Any] = field(default_factory=dict)
    matrix_text: str = ""  # the matrix file as the run read it ("" when not kept)

    @property
    def arch(self) -> str:
        return str(self.matrix_info.get("arch", ""))

    @property
    def toolchain(self) -> str:
        """The matrix's own toolchain ("" in runs older than toolchains)."""
        return str(self.matrix_info.get("toolchain", ""))

    @property
    def runtime(self) -> str:
        """The container runtime the run used (docker for run directories older than the
        field: Docker was the only one)."""
        return str(self.settings.get("runtime") or "docker")

    @property
    def targets(self) -> list[str]:
        return [str(t) for t in self.matrix_info.get("targets", [])]

    @property
    def matrix_name(self) -> str:
        return Path(self.matrix_path).name

    def title(self) -> str:
        version = self.kernel.get("version") or "?"
        return f"kmatrix run {self.run_id}: {self.matrix_name} on Linux {version}"

    def compiler(self, toolchain: str = "") -> tuple[str, str]:
        """(TuxMake's toolchain name, the compiler's version) from the image's packages: the
        record's toolchain (harness/toolchains) and its package's version (clang-16:
        1:16.0.6-15~deb12u1 -> 16.0.6), else Debian's `gcc` package names the default gcc
        (4:12.2.0-3 -> gcc-12, 12.2.0)."""
        from . import toolchains

        packages = self.image_packages
        if toolchain in toolchains.TOOLCHAINS:
            exact = packages.get(toolchains.get(toolchain).version_package, "")
            return toolchain, re.sub(r"^\d+:", "", exact).split("-")[0].split("~")[0]
        default = packages.get("gcc", "")
        match = re.match(r"(?:\d+:)?(\d+)\.", default)
        if match:
            major = match.group(1)
            exact = packages.get(f"gcc-{major}", default)
            version = re.sub(r"^\d+:", "", exact).split("-")[0]
            return f"gcc-{major}", version
        return "gcc", ""

    def layout(self, records: list[Record]) -> Layout:
        axes = self.matrix_info.get("axes")
        if axes is not None:
            cells = self.matrix_info.get("cells") or {}
            return Layout([(str(s), [str(v) for v in vals]) for s, vals in axes],
                          [str(i) for i in self.matrix_info.get("includes", [])],
                          {str(k): [str(v) for v in vals] for k, vals in cells.items()},
                          [str(i) for i in self.settings.get("only") or []])
        return guess_layout(records)


def guess_layout(records: list[Record]) -> Layout:
    """A run directory without matrix_info: the axes are the symbol set most records set (at
    least two of them), their values in the order y, m, n, then as text; the rest are rows of
    their own."""
    sets = Counter(tuple(sorted(r.values)) for r in records if r.values)
    if not sets:
        return Layout([], [r.combination for r in records], guessed=True)
    symbols, count = max(sets.items(), key=lambda kv: (kv[1], len(kv[0])))
    if count < 2:
        return Layout([], [r.combination for r in records], guessed=True)
    order = {"y": 0, "m": 1, "n": 2}
    axes = []
    for sym in symbols:
        seen = {r.values[sym] for r in records if tuple(sorted(r.values)) == symbols}
        axes.append((sym, sorted(seen, key=lambda v: (order.get(v, 3), v))))
    includes = [r.combination for r in records if tuple(sorted(r.values)) != symbols]
    cells = {r.combination: [r.values[s] for s, _ in axes] for r in records
             if tuple(sorted(r.values)) == symbols}
    return Layout(axes, includes, cells, guessed=True)


SETTINGS_KEYS = ("jobs", "workers", "trees", "pristine", "ccache", "boot", "only", "mem_bytes",
                 "runtime", "runtime_version")


def load(run_dir: Path) -> RunInfo:
    """run.json of `run_dir` (an empty RunInfo named after the directory when it is missing or
    unreadable: the records alone still make every report)."""
    try:
        data = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    try:
        text = (run_dir / MATRIX_COPY).read_text()
    except OSError:
        text = ""
    return RunInfo(
        run_id=str(data.get("run_id") or run_dir.resolve().name),
        matrix_path=str(data.get("matrix_path", "")),
        kernel=dict(data.get("kernel") or {}), image=str(data.get("image", "")),
        image_id=str(data.get("image_id", "")),
        image_packages=dict(data.get("image_packages") or {}),
        settings={k: data[k] for k in SETTINGS_KEYS if k in data},
        matrix_info=dict(data.get("matrix_info") or {}), matrix_text=text)
