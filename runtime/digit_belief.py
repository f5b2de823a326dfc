"""What the model believes each cell holds: its probability for each symbol it considered there.

One digits answer gives these per token: the engine's top choices at the step that wrote the cell
(``Engine.generate(..., alternatives=k)``). Several answers about the same grid, read from views of it framed a
little differently (runtime/grid_view.py, ``GridView.zoomed``), are combined by the mean of their
log-probabilities: a symbol has to be likely in every view to win, so a misreading that one framing of the cells
provokes is outvoted by the others, while a digit every view reads stays as certain as they all make it. The
reading check (runtime/reading_check.py) takes its alternatives from the result, so it weighs the views' joint
doubt, not one view's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..solver.cells import Cell
from ..solver.puzzle import Grid
from ..solver.symbols import default_alphabet
from .answers import locate_digits_answer
from .tokenizer import Tokenizer

# The probability a view is taken to give a symbol that is not among its top choices for the cell (the engine
# keeps four, so the true figure is at most the fourth's, usually far less). A floor rather than zero, so that one
# view's silence weighs heavily against a symbol without ruling it out: two views at 0.9 and one silent give
# 0.9^(2/3) * 1e-4^(1/3) = 0.04, below a symbol all three give 0.3 but above one they all doubt.
UNSEEN_P = 1e-4


@dataclass(frozen=True)
class DigitBelief:
    """Per cell the value most believed (0 = blank) and, for the cells whose character had a token of its own,
    the probability of each value considered there (most likely first)."""

    grid: Grid
    probs: dict[Cell, dict[int, float]]
    views: int = 1  # answers combined

    def p(self, cell: Cell, value: int) -> float:
        """The belief in ``value`` at ``cell``: 1 for a cell read inside a multi-character token (no choices)."""
        spread = self.probs.get(cell)
        if spread is None:
            return 1.0 if value == self.grid[cell[0]][cell[1]] else 0.0
        return spread.get(value, 0.0)


def token_spans(tokens: Sequence[int], tokenizer: Tokenizer, text: str) -> list[tuple[int, int] | None]:
    """Each token's (start, end) character span in ``text``, the decoded answer, or None where it cannot be told.

    Decoding whole prefixes, not tokens one by one, is what gets a byte-level BPE's text right (a character
    may take several tokens, a token may start with a space); a prefix that is not a prefix of ``text`` (a
    character split across tokens) leaves that token unplaced.
    """
    spans: list[tuple[int, int] | None] = []
    end = 0
    for i in range(len(tokens)):
        prefix = tokenizer.decode(tokens[: i + 1])
        if text.startswith(prefix) and len(prefix) >= end:
            spans.append((end, len(prefix)))
            end = len(prefix)
        else:
            spans.append(None)
    return spans


def belief_of(text: str, tokens: Sequence[int], choices: Sequence[Sequence[tuple[int, float]]],
              tokenizer: Tokenizer, size: int) -> DigitBelief:
    """The belief one digits answer states: its reading, and the symbols (or a blank) among each cell's token
    choices with their probabilities. A character written inside a multi-character token ("..." as one token)
    gets no choices. Raises ModelOutputError as parse_digits_answer does for an unreadable answer."""
    located = locate_digits_answer(text, size)
    alphabet = default_alphabet(size)  # the alphabet the answer is parsed in
    where = {at: (r, c) for r, row in enumerate(located.offsets) for c, at in enumerate(row)}
    symbols: dict[int, int | None] = {}  # token id -> the value its text means in this grid, None if none

    def value_of(token: int) -> int | None:
        if token not in symbols:
            piece = tokenizer.decode([token])
            ok = len(piece) == 1 and (piece in alphabet.blanks or piece.upper() in alphabet.symbols)
            symbols[token] = alphabet.value(piece) if ok else None
        return symbols[token]

    probs: dict[Cell, dict[int, float]] = {}
    for token, span, step in zip(tokens, token_spans(tokens, tokenizer, text), choices):
        if span is None or span[1] - span[0] != 1 or span[0] not in where:
            continue
        if not any(t == token for t, _ in step):
            continue  # the token written is not among the step's choices: nothing to weigh it against
        spread: dict[int, float] = {}
        for t, lp in sorted(step, key=lambda s: -s[1]):
            value = value_of(t)
            if value is not None and value not in spread:
                spread[value] = math.exp(lp)
        probs[where[span[0]]] = spread
    return DigitBelief(located.grid, probs)


def combine_beliefs(beliefs: Sequence[DigitBelief]) -> DigitBelief:
    """The beliefs of several answers about one grid, by the mean log-probability of each value over them (a
    value a view did not consider counts as UNSEEN_P there; a view without choices at a cell stands by what it
    wrote). Ties go to the earlier view's reading."""
    if not beliefs:
        raise ValueError("no beliefs to combine")
    if len(beliefs) == 1:
        return beliefs[0]
    first = beliefs[0]
    size = len(first.grid)
    grid = [list(row) for row in first.grid]
    probs: dict[Cell, dict[int, float]] = {}
    for r in range(size):
        for c in range(size):
            cell = (r, c)
            if all(cell not in b.probs for b in beliefs):
                continue
            values = list(dict.fromkeys(v for b in beliefs for v in ([b.grid[r][c]] + list(b.probs.get(cell, ())))))
            mean = {v: math.exp(sum(math.log(max(b.p(cell, v), UNSEEN_P)) for b in beliefs) / len(beliefs))
                    for v in values}
            order = sorted(values, key=lambda v: -mean[v])  # stable: ties keep the first view's order
            probs[cell] = {v: mean[v] for v in order}
            grid[r][c] = order[0]
    return DigitBelief(tuple(tuple(row) for row in grid), probs, sum(b.views for b in beliefs))
