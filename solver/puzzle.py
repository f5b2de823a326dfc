"""The puzzle model every reader produces and every writer and encoder consumes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .cells import Cell
from .errors import PuzzleFormatError
from .symbols import Alphabet, default_alphabet

if TYPE_CHECKING:
    from .constraints.base import Constraint

MIN_SIZE, MAX_SIZE = 1, 16

Grid = tuple[tuple[int, ...], ...]


def default_box(size: int) -> tuple[int, int]:
    """(rows, cols) of a standard box: 6 -> 2x3, 9 -> 3x3, 12 -> 3x4.

    Prime sizes get 1 x n "boxes" (the rows again), which is also what
    f-puzzles assumes before its per-cell region overrides.
    """
    rows = max(d for d in range(1, math.isqrt(size) + 1) if size % d == 0)
    return rows, size // rows


def box_regions(size: int, box: tuple[int, int]) -> Grid:
    br, bc = box
    per_row = size // bc
    return tuple(tuple((r // br) * per_row + c // bc for c in range(size)) for r in range(size))


@dataclass(frozen=True)
class Puzzle:
    """Size, givens, regions and the variant constraints of one puzzle.

    ``box`` is set when the regions are the standard rectangles (so writers can
    say "box 2x3" instead of listing every cell); ``regions`` is always the full
    per-cell region map.
    """

    size: int
    givens: Grid
    regions: Grid
    box: tuple[int, int] | None = None
    constraints: tuple["Constraint", ...] = ()
    alphabet: Alphabet = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = self.size
        if not isinstance(n, int) or not MIN_SIZE <= n <= MAX_SIZE:
            raise PuzzleFormatError(f"grid size {n!r} is not supported ({MIN_SIZE} to {MAX_SIZE})")
        if self.alphabet is None:
            object.__setattr__(self, "alphabet", default_alphabet(n))
        _check_square(self.givens, n, "givens")
        for row in self.givens:
            for v in row:
                if not (isinstance(v, int) and 0 <= v <= n):
                    raise PuzzleFormatError(f"given {v!r} is outside 1..{n}")
        _check_square(self.regions, n, "regions")
        counts: dict[int, int] = {}
        for row in self.regions:
            for g in row:
                counts[g] = counts.get(g, 0) + 1
        if len(counts) != n or any(k != n for k in counts.values()):
            sizes = ", ".join(f"{k}" for k in sorted(counts.values()))
            raise PuzzleFormatError(f"regions must be {n} groups of {n} cells each (got sizes {sizes})")

    @classmethod
    def create(
        cls,
        size: int,
        givens: Sequence[Sequence[int]] | None = None,
        *,
        box: tuple[int, int] | None = None,
        regions: Sequence[Sequence[int]] | None = None,
        constraints: Sequence["Constraint"] = (),
        alphabet: Alphabet | None = None,
    ) -> "Puzzle":
        """Build a puzzle; standard boxes unless ``regions`` (jigsaw) is given."""
        if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise PuzzleFormatError(f"grid size {size!r} is not supported ({MIN_SIZE} to {MAX_SIZE})")
        if regions is None:
            box = box or default_box(size)
            if box[0] * box[1] != size:
                raise PuzzleFormatError(f"box {box[0]}x{box[1]} does not tile a {size}x{size} grid")
            region_grid = box_regions(size, box)
        else:
            region_grid = _renumber(regions)
            std = default_box(size)
            box = std if region_grid == _renumber(box_regions(size, std)) else None
        g = givens if givens is not None else [[0] * size for _ in range(size)]
        return cls(
            size=size,
            givens=tuple(tuple(int(v) for v in row) for row in g),
            regions=region_grid,
            box=box,
            constraints=tuple(constraints),
            alphabet=alphabet or default_alphabet(size),
        )

    # -- views -------------------------------------------------------------
    @property
    def cells(self) -> list[Cell]:
        return [(r, c) for r in range(self.size) for c in range(self.size)]

    def rows(self) -> list[list[Cell]]:
        return [[(r, c) for c in range(self.size)] for r in range(self.size)]

    def cols(self) -> list[list[Cell]]:
        return [[(r, c) for r in range(self.size)] for c in range(self.size)]

    def region_cells(self) -> list[list[Cell]]:
        groups: dict[int, list[Cell]] = {}
        for r, row in enumerate(self.regions):
            for c, g in enumerate(row):
                groups.setdefault(g, []).append((r, c))
        return [groups[k] for k in sorted(groups)]

    def units(self) -> list[list[Cell]]:
        """Rows, columns and regions: each holds every digit once."""
        return self.rows() + self.cols() + self.region_cells()

    @property
    def is_classic(self) -> bool:
        return not self.constraints and self.box is not None

    @property
    def num_givens(self) -> int:
        return sum(1 for row in self.givens for v in row if v)

    def with_givens(self, givens: Sequence[Sequence[int]]) -> "Puzzle":
        return replace(self, givens=tuple(tuple(int(v) for v in row) for row in givens))

    def with_constraints(self, constraints: Sequence["Constraint"]) -> "Puzzle":
        return replace(self, constraints=tuple(constraints))

    def format_grid(self, grid: Sequence[Sequence[int]] | None = None) -> str:
        """Rows concatenated in this puzzle's alphabet, '.' for blanks."""
        g = self.givens if grid is None else grid
        return "".join(self.alphabet.symbol(v) for row in g for v in row)


def _check_square(grid: object, n: int, what: str) -> None:
    if not (isinstance(grid, tuple) and len(grid) == n and all(isinstance(r, tuple) and len(r) == n for r in grid)):
        raise PuzzleFormatError(f"{what} must be {n} rows of {n} entries")


def _renumber(regions: Sequence[Sequence[int]]) -> Grid:
    """Region ids in order of first appearance, so equal layouts compare equal."""
    mapping: dict[object, int] = {}
    out = []
    for row in regions:
        out_row = []
        for g in row:
            if g not in mapping:
                mapping[g] = len(mapping)
            out_row.append(mapping[g])
        out.append(tuple(out_row))
    return tuple(out)
