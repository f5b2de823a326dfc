"""The two training targets of a rendered puzzle, written in one place.

``rules_answer`` is what the model emits for "which rules?" and ``digits_answer``
what it emits for "which givens?". Both are plain functions of the puzzle, so the
training data, the evaluation and the runtime's parser agree by construction.
"""

from __future__ import annotations

from ...solver.errors import PuzzleFormatError
from ...solver.puzzle import Grid, Puzzle
from ...solver.rules_json import dumps_rules
from .puzzles import canonical


def rules_answer(puzzle: Puzzle) -> str:
    """Compact rules JSON (``solver.rules_json.dumps_rules``) with the rules in canonical order."""
    return dumps_rules(canonical(puzzle))


def digits_answer(puzzle: Puzzle) -> str:
    """One line per row: the givens in the puzzle's alphabet, '.' for a blank; rows joined by newlines."""
    sym = puzzle.alphabet.symbol
    return "\n".join("".join(sym(v) for v in row) for row in puzzle.givens)


def parse_digits_answer(text: str, puzzle_or_size: Puzzle | int) -> Grid:
    """The givens back from :func:`digits_answer` text (strict: n lines of n symbols)."""
    from ...solver.symbols import default_alphabet

    if isinstance(puzzle_or_size, Puzzle):
        n, alphabet = puzzle_or_size.size, puzzle_or_size.alphabet
    else:
        n, alphabet = puzzle_or_size, default_alphabet(puzzle_or_size)
    rows = text.strip("\n").split("\n")
    if len(rows) != n or any(len(r) != n for r in rows):
        raise PuzzleFormatError(f"digits answer must be {n} lines of {n} symbols, got {[len(r) for r in rows]}")
    return tuple(tuple(alphabet.value(ch) for ch in row) for row in rows)
