"""Cell references and grid geometry.

Cells are 0-based ``(row, col)`` tuples inside the solver; text formats use the
1-based ``r1c1`` form (our rules JSON) or ``R1C1`` (f-puzzles). Clue cells that
sit outside the grid (little killers, sandwiches) use row/column 0 or n+1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .errors import PuzzleFormatError

Cell = tuple[int, int]

_REF = re.compile(r"^[rR](\d{1,2})[cC](\d{1,2})$")


def parse_ref(ref: object, size: int, *, outside: bool = False) -> Cell:
    """'r3c4' -> (2, 3). With ``outside`` the ring around the grid is allowed."""
    if not isinstance(ref, str):
        raise PuzzleFormatError(f"cell reference {ref!r} is not a string like 'r1c1'")
    m = _REF.match(ref.strip())
    if not m:
        raise PuzzleFormatError(f"cell reference {ref!r} is not of the form 'r1c1'")
    r, c = int(m.group(1)) - 1, int(m.group(2)) - 1
    lo, hi = (-1, size) if outside else (0, size - 1)
    if not (lo <= r <= hi and lo <= c <= hi):
        where = "on or around" if outside else "inside"
        raise PuzzleFormatError(f"cell {ref!r} is not {where} a {size}x{size} grid")
    return r, c


def parse_refs(refs: object, size: int, *, min_len: int = 1, what: str = "cells") -> list[Cell]:
    if not isinstance(refs, list) or len(refs) < min_len:
        raise PuzzleFormatError(f"{what} must be a list of at least {min_len} cell reference(s), got {refs!r}")
    cells = [parse_ref(x, size) for x in refs]
    if len(set(cells)) != len(cells):
        raise PuzzleFormatError(f"{what} lists a cell twice: {refs!r}")
    return cells


def ref(cell: Cell, upper: bool = False) -> str:
    r, c = cell
    return f"R{r + 1}C{c + 1}" if upper else f"r{r + 1}c{c + 1}"


def refs(cells: Iterable[Cell], upper: bool = False) -> list[str]:
    return [ref(c, upper) for c in cells]


def orthogonal_pairs(size: int) -> Iterator[tuple[Cell, Cell]]:
    """Every pair of side-adjacent cells, once."""
    for r in range(size):
        for c in range(size):
            if c + 1 < size:
                yield (r, c), (r, c + 1)
            if r + 1 < size:
                yield (r, c), (r + 1, c)


def move_pairs(size: int, moves: Iterable[tuple[int, int]]) -> Iterator[tuple[Cell, Cell]]:
    """Unordered pairs of cells one of ``moves`` apart (knight, king...), once each."""
    seen: set[frozenset[Cell]] = set()
    for r in range(size):
        for c in range(size):
            for dr, dc in moves:
                rr, cc = r + dr, c + dc
                if 0 <= rr < size and 0 <= cc < size:
                    key = frozenset(((r, c), (rr, cc)))
                    if key not in seen:
                        seen.add(key)
                        yield (r, c), (rr, cc)


KNIGHT = [(1, 2), (2, 1), (-1, 2), (-2, 1), (1, -2), (2, -1), (-1, -2), (-2, -1)]
KING_DIAGONAL = [(1, 1), (1, -1), (-1, 1), (-1, -1)]


def are_adjacent(a: Cell, b: Cell) -> bool:
    return abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1
