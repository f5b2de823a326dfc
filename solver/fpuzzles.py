"""f-puzzles JSON (the interchange format of f-puzzles and SudokuPad) <-> Puzzle.

f-puzzles keeps givens and irregular regions per cell (``grid[r][c]`` with
``value``/``given``/``region``, regions only where they differ from the
default boxes), and each rule kind under its own key: lists of items for
placed rules ("killercage", "thermometer"...), ``true`` for global ones
("antiknight"), and "negative" for exhaustive dot sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .constraints import FPUZZLES
from .constraints.base import Constraint
from .constraints.cells import CellSetRule
from .errors import PuzzleFormatError, UnknownConstraint
from .textio import read_text
from .puzzle import MAX_SIZE, MIN_SIZE, Grid, Puzzle, box_regions, default_box

#: Keys that describe the puzzle but carry no rule.
METADATA_KEYS = frozenset(
    {"size", "grid", "title", "author", "ruleset", "solution", "highlightConflicts", "disabledlogic",
     "truecandidatesoptions", "version", "puzzleLink"}
)
#: Drawings whose meaning only the rule text gives; the solver cannot read them.
COSMETIC_KEYS = frozenset({"line", "cage", "text", "circle", "rectangle"})


def read_fpuzzles(data: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> Puzzle:
    """Build a Puzzle. Unknown rule keys are errors; ``ignore`` names keys to drop knowingly."""
    if "fpuzzles" in data and isinstance(data["fpuzzles"], Mapping):
        data = data["fpuzzles"]  # our examples file wraps each puzzle with a label
    ignored = set(ignore)
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise PuzzleFormatError(f"f-puzzles 'size' must be an integer {MIN_SIZE}..{MAX_SIZE}, got {size!r}")
    givens, regions = _read_grid(data.get("grid"), size)
    constraints: list[Constraint] = []
    for key, value in data.items():
        if key in METADATA_KEYS or key in ignored:
            continue
        if key in COSMETIC_KEYS:
            if value:
                raise UnknownConstraint(
                    f"{key} (f-puzzles drawings whose rule only the rule text states; "
                    f"drop them knowingly with --ignore {key})"
                )
            continue
        cls = FPUZZLES.get(key)
        if cls is None:
            raise UnknownConstraint(key, tuple(FPUZZLES))
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, bool) or key == "negative":
                constraints += cls.from_fpuzzles(key, item, size)
            elif isinstance(item, Mapping):
                constraints += cls.from_fpuzzles(key, item, size)
            else:
                raise PuzzleFormatError(f"f-puzzles {key!r} entry {item!r} is not an object")
    return Puzzle.create(size, givens, regions=regions, constraints=_merge_cell_sets(constraints))


def _merge_cell_sets(constraints: list[Constraint]) -> list[Constraint]:
    """f-puzzles lists odd/even/minimum/maximum one cell per item: gather each kind into one rule."""
    merged: dict[type, list] = {}
    out: list[Constraint] = []
    for con in constraints:
        if isinstance(con, CellSetRule):
            if type(con) not in merged:
                merged[type(con)] = []
                out.append(con)  # placeholder keeps the first position
            merged[type(con)] += list(con.where)
        else:
            out.append(con)
    return [type(c)(tuple(merged[type(c)])) if isinstance(c, CellSetRule) else c for c in out]


def _read_grid(grid: object, size: int) -> tuple[Grid, list[list[int]]]:
    if not (isinstance(grid, list) and len(grid) == size and all(isinstance(r, list) and len(r) == size for r in grid)):
        raise PuzzleFormatError(f"f-puzzles 'grid' must be {size} rows of {size} cells")
    default = box_regions(size, default_box(size))
    givens, regions = [], []
    for r, row in enumerate(grid):
        grow, rrow = [], []
        for c, cell in enumerate(row):
            if not isinstance(cell, Mapping):
                raise PuzzleFormatError(f"f-puzzles cell R{r + 1}C{c + 1} is not an object")
            value = cell.get("value")
            # A value counts as a clue unless explicitly marked "given": false (a solver's pencil entry).
            if value not in (None, "", 0) and cell.get("given", True) is not False:
                try:
                    v = int(value)
                except (TypeError, ValueError):
                    raise PuzzleFormatError(f"f-puzzles value {value!r} at R{r + 1}C{c + 1} is not a digit") from None
                if not 1 <= v <= size:
                    raise PuzzleFormatError(f"f-puzzles value {v} at R{r + 1}C{c + 1} is outside 1..{size}")
                grow.append(v)
            else:
                grow.append(0)
            region = cell.get("region", default[r][c])
            if isinstance(region, bool) or not isinstance(region, int) or not 0 <= region < size:
                raise PuzzleFormatError(f"f-puzzles region {region!r} at R{r + 1}C{c + 1} is not 0..{size - 1}")
            rrow.append(region)
        givens.append(tuple(grow))
        regions.append(rrow)
    return tuple(givens), regions


def fpuzzles_solution(data: Mapping[str, Any]) -> Grid | None:
    """The solution some f-puzzles files carry (a flat list of digits), if any."""
    if "fpuzzles" in data and isinstance(data["fpuzzles"], Mapping):
        data = data["fpuzzles"]
    sol, size = data.get("solution"), data.get("size")
    if not isinstance(sol, list) or not isinstance(size, int) or len(sol) != size * size:
        return None
    vals = [int(v) for v in sol]
    return tuple(tuple(vals[r * size : (r + 1) * size]) for r in range(size))


def write_fpuzzles(puzzle: Puzzle, solution: Grid | None = None) -> dict[str, Any]:
    n = puzzle.size
    default = box_regions(n, default_box(n))
    grid = []
    for r in range(n):
        row = []
        for c in range(n):
            cell: dict[str, Any] = {}
            if puzzle.givens[r][c]:
                cell = {"value": puzzle.givens[r][c], "given": True}
            if puzzle.box is None or puzzle.box != default_box(n):
                cell["region"] = puzzle.regions[r][c]
            elif puzzle.regions[r][c] != default[r][c]:
                cell["region"] = puzzle.regions[r][c]
            row.append(cell)
        grid.append(row)
    out: dict[str, Any] = {"size": n, "grid": grid}
    for con in puzzle.constraints:
        for key, item in con.to_fpuzzles(puzzle):
            if item is True:
                out[key] = True
            else:
                lst = out.setdefault(key, [])
                if item not in lst:
                    lst.append(item)
    if solution is not None:
        out["solution"] = [v for row in solution for v in row]
    return out


def load_fpuzzles_file(path: str | Path, *, ignore: Iterable[str] = ()) -> Puzzle:
    """Read an f-puzzles JSON file ('-' for standard input)."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PuzzleFormatError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, Mapping):
        raise PuzzleFormatError(f"{path}: an f-puzzles file holds a JSON object, not {type(data).__name__}")
    return read_fpuzzles(data, ignore=ignore)
