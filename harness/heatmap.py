"""Where each combination sits in the report's heatmap: pure placement, no HTML.

The axes split into row axes and column axes (the last axes become columns while the grid stays
at most ``MAX_COLUMNS`` wide), so 1,000 combinations of ten two-valued axes are a 64 x 16 grid,
shown a page of rows at a time. Every include entry is a row of its own. A combination the
layout does not know (a record of an older matrix, a guessed layout) becomes a row of its own
too: no record ever vanishes from the heatmap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .runinfo import Layout

MAX_COLUMNS = 16
ROWS_PER_PAGE = 32
INCLUDES_PER_PAGE = 40


@dataclass(frozen=True)
class Place:
    """One cell: the combination there and whether it has a record in this run."""

    combination: str  # "" where the matrix has no combination (excluded)
    # "record"; "missing" (selected, no record: never started); "unselected" (in the matrix,
    # left out of this run by --only); "absent" (the matrix excludes it)
    state: str


@dataclass
class Grid:
    row_axes: list[str]
    col_axes: list[str]
    columns: list[tuple[str, ...]]  # each column's values of the column axes
    rows: list[tuple[tuple[str, ...], list[Place]]]  # each row's values and its cells

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self.rows) / ROWS_PER_PAGE))


@dataclass
class Heatmap:
    grid: Grid | None
    rows: list[Place] = field(default_factory=list)  # include entries (and strays), in order

    @property
    def row_pages(self) -> int:
        return max(1, math.ceil(len(self.rows) / INCLUDES_PER_PAGE))


def split_axes(axes: list[tuple[str, list[str]]]) -> tuple[list[int], list[int]]:
    """(row axis indices, column axis indices): columns from the last axis backwards while the
    width stays within MAX_COLUMNS, keeping at least one row axis when there are two or more."""
    cols: list[int] = []
    width = 1
    for i in range(len(axes) - 1, -1, -1):
        n = len(axes[i][1])
        if width * n > MAX_COLUMNS or (len(axes) > 1 and len(cols) == len(axes) - 1):
            break
        cols.insert(0, i)
        width *= n
    rows = [i for i in range(len(axes)) if i not in cols]
    return rows, cols


def _selected(layout: Layout, cid: str) -> bool:
    return not layout.selected or cid in layout.selected


def place(layout: Layout, recorded: list[str]) -> Heatmap:
    """The heatmap of the combinations with a record (`recorded`, in report order)."""
    have = set(recorded)
    placed: set[str] = set()
    grid = None
    if layout.axes:
        grid = _grid(layout, have, placed)
    rows = []
    for cid in layout.includes:
        if cid in have:
            rows.append(Place(cid, "record"))
            placed.add(cid)
        elif _selected(layout, cid):
            rows.append(Place(cid, "missing"))
    rows += [Place(cid, "record") for cid in recorded if cid not in placed]  # strays
    return Heatmap(grid, rows)


def _grid(layout: Layout, have: set[str], placed: set[str]) -> Grid | None:
    row_idx, col_idx = split_axes(layout.axes)
    at: dict[tuple[str, ...], str] = {}
    for cid, values in layout.cells.items():
        if len(values) == len(layout.axes):
            at[tuple(values)] = cid
    columns = [tuple(p) for p in _product([layout.axes[i][1] for i in col_idx])]
    rows = []
    for row_values in _product([layout.axes[i][1] for i in row_idx]):
        cells = []
        for col_values in columns:
            point = [""] * len(layout.axes)
            for i, v in zip(row_idx, row_values):
                point[i] = v
            for i, v in zip(col_idx, col_values):
                point[i] = v
            cid = at.get(tuple(point), "")
            if cid and cid in have:
                cells.append(Place(cid, "record"))
                placed.add(cid)
            elif cid and _selected(layout, cid):
                cells.append(Place(cid, "missing"))
            elif cid:
                cells.append(Place("", "unselected"))
            else:
                cells.append(Place("", "absent"))
        if any(c.state not in ("absent", "unselected") for c in cells):  # none in this run: gone
            rows.append((tuple(row_values), cells))
    if not rows:
        return None
    keep = [j for j in range(len(columns))
            if any(r[1][j].state not in ("absent", "unselected") for r in rows)]
    return Grid([layout.axes[i][0] for i in row_idx], [layout.axes[i][0] for i in col_idx],
                [columns[j] for j in keep], [(v, [c[j] for j in keep]) for v, c in rows])


def _product(choices: list[list[str]]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for values in choices:
        out = [prefix + [v] for prefix in out for v in values]
    return out
