"""Grids as text: the 81-character form (16/36/256 for other sizes).

Accepts '.' or '0' for blanks (0-9A-F 16x16 strings use '.' only), whitespace
and box-drawing separators between symbols, and rejects anything else with a
message that says what was wrong.
"""

from __future__ import annotations

import math
import re

from .errors import PuzzleFormatError
from .puzzle import Grid, Puzzle
from .symbols import Alphabet, detect_alphabet

SIZES = {n * n: n for n in (4, 6, 9, 16)}
RULE_LINE = re.compile(r"^[\s\-+|=]*$")  # a ruled line between boxes ('------+------'), or a blank one
GRID_SYMBOL = re.compile(r"[^\s|]")  # what a grid line's cells are: everything but whitespace and '|'


def clean_grid_text(text: str) -> str:
    """Drop whitespace, '|' separators and ruled lines like '------+------'."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not RULE_LINE.match(ln)]
    return "".join(GRID_SYMBOL.findall("".join(lines)))


def grid_size(length: int) -> int:
    if length not in SIZES:
        root = math.isqrt(length)
        hint = f" ({root}x{root} is not a supported size)" if root * root == length else ""
        raise PuzzleFormatError(
            f"a grid string needs 16, 36, 81 or 256 symbols (4x4, 6x6, 9x9, 16x16), got {length}{hint}"
        )
    return SIZES[length]


def parse_values(text: str, size: int, alphabet: Alphabet) -> Grid:
    s = clean_grid_text(text)
    if len(s) != size * size:
        raise PuzzleFormatError(f"a {size}x{size} grid needs {size * size} symbols, got {len(s)}")
    vals = []
    for i, ch in enumerate(s):
        try:
            vals.append(alphabet.value(ch))
        except PuzzleFormatError as exc:
            raise PuzzleFormatError(f"row {i // size + 1}, column {i % size + 1}: {exc}") from None
    return tuple(tuple(vals[r * size : (r + 1) * size]) for r in range(size))


def parse_grid(text: str) -> Puzzle:
    """A classic puzzle from its grid string."""
    s = clean_grid_text(text)
    if not s:
        raise PuzzleFormatError("the grid string is empty")
    size = grid_size(len(s))
    alphabet = detect_alphabet(size, s)
    return Puzzle.create(size, parse_values(s, size, alphabet), alphabet=alphabet)


def format_grid(grid: Grid, alphabet: Alphabet) -> str:
    """Rows concatenated, '.' for blanks, in ``alphabet``'s symbols."""
    return "".join(alphabet.symbol(v) for row in grid for v in row)


def pretty_grid(grid: Grid, puzzle: Puzzle) -> str:
    """Rows on lines with box separators, for people."""
    n = puzzle.size
    br, bc = puzzle.box or (n, n)
    out = []
    for r, row in enumerate(grid):
        if r and r % br == 0:
            out.append("-+-".join("-" * (2 * bc - 1) for _ in range(n // bc)))
        cells = []
        for c, v in enumerate(row):
            if c and c % bc == 0:
                cells.append("|")
            cells.append(puzzle.alphabet.symbol(v))
        out.append(" ".join(cells))
    return "\n".join(out)
