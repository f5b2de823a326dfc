"""A solver-checked reading: settle the model's doubtful digits with the solver.

The model reads most cells right, but one misread given (an 8 read as 9, a digit
read as a blank) is enough to leave a puzzle with no solution or with several,
and the right symbol is usually the model's next choice at that position. So
when the reading as given does not solve uniquely, try the model's own
alternatives, most likely first: every set of 1..``max_changes`` substitutions,
in order of the log-probability they cost, each candidate solved by the real
solver, until one has exactly one solution. A reading that solves as given is
never touched, every change is reported (cell, what was read, what it became,
the model's probability of each), and when nothing within the bounds gives one
solution the reading stands as given.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..solver.cells import Cell
from ..solver.puzzle import Puzzle
from ..solver.solve import MULTIPLE, NO_SOLUTION, SOLVED, SolveResult, given_conflicts, solve
from .digit_belief import DigitBelief, belief_of
from .tokenizer import Tokenizer

# Alternatives the engine keeps per digits token (Engine.generate's ``alternatives``): the read symbol and
# three others. A misread digit's right reading is almost always the second or third choice; a fourth
# alternative beyond that is weaker than MIN_RELATIVE_P anyway.
ALTERNATIVES = 4

# A correction counts only when the model gave it at least this fraction of the probability of the reading as
# given: each alternative at least 2% as likely as the symbol read, and a set of changes jointly too (the product
# of its ratios; a total log-probability loss of at most ln(50) = 3.9). A misread symbol is one the model
# hesitated over, and its right reading keeps a share of a few percent or more. Below that, one solution stops
# telling right from wrong. Measured on the 32 validation photos: with no floor the check changed 10 readings,
# 5 rightly and 5 wrongly, 9 of the 10 through a symbol the model gave under 1% (a reading with five misread
# digits, three of them certain, can come out unique after two "fixes"); with the 2% floor per alternative
# only, 2 changes, one wrong (three changes jointly 0.01% as likely); with the joint floor too, 1, right.
MIN_RELATIVE_P = 0.02

# Bounds of the search. One candidate is one solve() (encode + SAT + the uniqueness check): about 1 ms for a
# 9x9 with one solution or none, 5 ms with several (measured on this project's 2-core CPU). 200 candidates are
# then at most ~1 s on a 9x9, within the 2 s a whole puzzle may take on such a CPU; 2 s bounds larger grids
# and variant rules, whose solves cost more. Three changes cover the photos that have a few misread digits; a
# reading with more wrong than that is not one the solver can vouch for.
MAX_CHANGES = 3
MAX_CANDIDATES = 200
MAX_SECONDS = 2.0


@dataclass(frozen=True)
class Alternative:
    """One symbol the model considered for a cell instead of what it read."""

    value: int  # 1..n, 0 for a blank
    loss: float  # log p(what was read) - log p(this): >= 0, what taking it costs
    p: float  # the model's probability of this symbol at that position
    rank: int  # where it stood among the symbols the model considered for the cell, 1-based (2: its second choice)


@dataclass(frozen=True)
class CellReading:
    """A cell of the digits answer that came from one single-character token, and its alternatives."""

    cell: Cell
    value: int  # as read
    p: float  # the model's probability of what it read
    alternatives: tuple[Alternative, ...]  # most likely first, only those above the floor (MIN_RELATIVE_P)


@dataclass(frozen=True)
class Correction:
    """One given the check changed."""

    cell: Cell
    read: str  # the symbol as read ('.' for a blank)
    taken: str  # the symbol it became
    read_p: float  # the model's probability of each
    taken_p: float
    rank: int  # the model's choice ``taken`` was (2: its second choice)

    @property
    def where(self) -> str:
        return f"r{self.cell[0] + 1}c{self.cell[1] + 1}"

    def describe(self) -> str:
        """E.g. ``r3c5 read as 9 (64%), taken as 8 (the model's second choice, 31%)``."""
        return (f"{self.where} read as {_name(self.read)} ({_percent(self.read_p)}), taken as {_name(self.taken)} "
                f"(the model's {_ordinal(self.rank)} choice, {_percent(self.taken_p)})")

    def as_json(self) -> dict[str, object]:
        return {"cell": self.where, "read": self.read, "taken": self.taken, "read_p": round(self.read_p, 4),
                "taken_p": round(self.taken_p, 4), "choice": self.rank}


@dataclass(frozen=True)
class ReadingCheck:
    """What the check did. With corrections, ``puzzle``/``result`` are the corrected reading and its (unique)
    solution; without, they are the reading as given and its result, unchanged."""

    puzzle: Puzzle
    result: SolveResult
    corrections: tuple[Correction, ...]
    read_puzzle: Puzzle  # the reading as given
    read_result: SolveResult
    candidates: int = 0  # candidate puzzles solved
    seconds: float = 0.0
    stopped_by: str | None = None  # "candidates" or "seconds" when a bound ended the search, else None
    max_changes: int = MAX_CHANGES  # the search's limits, for the summary
    floor: float = MIN_RELATIVE_P

    @property
    def read_status(self) -> str:
        return self.read_result.status

    @property
    def corrected(self) -> bool:
        return bool(self.corrections)

    def why(self) -> str:
        """Why the check ran: what was wrong with the reading as given."""
        if self.read_status == NO_SOLUTION:
            reason = self.read_result.reason
            return "the reading as given had no solution" + (f" ({reason})" if reason else "")
        if self.read_status == MULTIPLE:
            return "the reading as given had several solutions"
        return "the reading as given solved"

    def summary(self) -> str:
        """One line for people when nothing was corrected."""
        if self.read_status == SOLVED:
            return "reading check: the reading as given solved; nothing to check"
        bound = f", stopped at its {self.stopped_by} bound" if self.stopped_by else ""
        return (f"reading check: no change of up to {self.max_changes} digits at least {_percent(self.floor)} as "
                f"likely as the reading gives one solution ({self.candidates} tried in {1000 * self.seconds:.0f} ms"
                f"{bound}); the reading stands as given")


def readings_of(belief: DigitBelief, floor: float = MIN_RELATIVE_P) -> dict[Cell, CellReading]:
    """The cells of ``belief`` that have alternatives worth trying: values at least ``floor`` times as likely
    as the one believed, keyed by cell (a cell without choices, read inside a multi-character token, stays)."""
    min_loss = -math.log(floor)
    out: dict[Cell, CellReading] = {}
    for cell, spread in belief.probs.items():
        read = belief.grid[cell[0]][cell[1]]
        read_p = spread.get(read, 0.0)
        if read_p <= 0.0:
            continue
        best = []
        for rank, (value, p) in enumerate(spread.items(), start=1):
            loss = math.log(read_p) - math.log(p) if p > 0.0 else math.inf
            if value != read and loss <= min_loss:
                best.append(Alternative(value, max(loss, 0.0), p, rank))
        if best:
            out[cell] = CellReading(cell, read, read_p, tuple(best))
    return out


def cell_readings(text: str, tokens: Sequence[int], choices: Sequence[Sequence[tuple[int, float]]],
                  tokenizer: Tokenizer, size: int, floor: float = MIN_RELATIVE_P) -> dict[Cell, CellReading]:
    """The cells of one digits answer that have alternatives worth trying (readings_of its belief_of). Raises
    ModelOutputError as parse_digits_answer does for an unreadable answer."""
    return readings_of(belief_of(text, tokens, choices, tokenizer, size), floor)


def settle(puzzle: Puzzle, readings: Mapping[Cell, CellReading], result: SolveResult | None = None, *,
           max_changes: int = MAX_CHANGES, max_candidates: int = MAX_CANDIDATES, max_seconds: float = MAX_SECONDS,
           floor: float = MIN_RELATIVE_P) -> ReadingCheck:
    """The most likely correction of ``puzzle``'s givens, from ``readings``' alternatives, that has exactly one
    solution; or the puzzle as given when it solves already or no correction within the bounds does.

    Best-first: the single substitutions are sorted by loss and the sets of up to ``max_changes`` of them come
    off a heap in order of total loss (each set is reached from exactly one parent: its last index one lower,
    or that index dropped when it follows the one before), so the first candidate with one solution is the
    most likely reading the solver accepts, and the search ends at the first set less than ``floor`` times as
    likely as the reading as given. A candidate is skipped without a solve when its givens repeat a digit in a
    unit, or when it cannot help by monotony: only removing givens from an ambiguous reading, or only adding
    givens to an unsolvable one.
    """
    t0 = time.perf_counter()
    result = result if result is not None else solve(puzzle)
    candidates, stopped_by = 0, None

    def done(final: Puzzle, final_result: SolveResult, fixes: tuple[Correction, ...] = ()) -> ReadingCheck:
        return ReadingCheck(final, final_result, fixes, puzzle, result, candidates, time.perf_counter() - t0,
                            stopped_by, max_changes, floor)

    if result.status == SOLVED:
        return done(puzzle, result)
    max_loss = -math.log(floor)
    subs = sorted(((alt.loss, cell, alt) for cell, reading in readings.items() for alt in reading.alternatives
                   if alt.value != puzzle.givens[cell[0]][cell[1]]), key=lambda s: (s[0], s[1], s[2].value))
    heap: list[tuple[float, tuple[int, ...]]] = [(subs[0][0], (0,))] if subs and max_changes > 0 else []
    while heap:
        if time.perf_counter() - t0 > max_seconds:
            stopped_by = "seconds"
            break
        cost, picked = heapq.heappop(heap)
        if cost > max_loss:
            break  # every set still on the heap costs at least as much
        last = picked[-1]
        if last + 1 < len(subs):
            if len(picked) < max_changes:
                heapq.heappush(heap, (cost + subs[last + 1][0], (*picked, last + 1)))
            heapq.heappush(heap, (cost - subs[last][0] + subs[last + 1][0], (*picked[:-1], last + 1)))
        chosen = [subs[i] for i in picked]
        if len({cell for _, cell, _ in chosen}) < len(chosen):
            continue  # two values for one cell
        if _cannot_help(result.status, [(puzzle.givens[r][c], alt.value) for _, (r, c), alt in chosen]):
            continue
        givens = [list(row) for row in puzzle.givens]
        for _, (r, c), alt in chosen:
            givens[r][c] = alt.value
        candidate = puzzle.with_givens(givens)
        if given_conflicts(candidate):
            continue
        if candidates >= max_candidates:
            stopped_by = "candidates"
            break
        candidates += 1
        outcome = solve(candidate)
        if outcome.status == SOLVED:
            sym = puzzle.alphabet.symbol
            fixes = tuple(Correction((r, c), sym(puzzle.givens[r][c]), sym(alt.value), readings[(r, c)].p, alt.p,
                                     alt.rank) for _, (r, c), alt in sorted(chosen, key=lambda s: s[1]))
            return done(candidate, outcome, fixes)
    return done(puzzle, result)


def _cannot_help(status: str, changes: list[tuple[int, int]]) -> bool:
    """Givens only taken away never make an ambiguous puzzle unique; givens only added never make an
    unsolvable one solvable. ``changes``: (value as read, value taken) per changed cell."""
    if status == MULTIPLE:
        return all(taken == 0 for _read, taken in changes)
    if status == NO_SOLUTION:
        return all(read == 0 for read, _taken in changes)
    return False


def check_reading(puzzle: Puzzle, result: SolveResult, digits_text: str, tokens: Sequence[int],
                  choices: Sequence[Sequence[tuple[int, float]]] | None, tokenizer: Tokenizer, *,
                  max_changes: int = MAX_CHANGES, max_candidates: int = MAX_CANDIDATES,
                  max_seconds: float = MAX_SECONDS, floor: float = MIN_RELATIVE_P) -> ReadingCheck | None:
    """The check for one digits answer (its text, tokens and per-token choices, as Engine.generate gives them
    with ``alternatives``); None when the answer carries no choices (a backend that does not offer them)."""
    if choices is None:
        return None
    t0 = time.perf_counter()
    if result.status == SOLVED:
        return settle(puzzle, {}, result)
    belief = belief_of(digits_text, tokens, choices, tokenizer, puzzle.size)
    check = check_belief(puzzle, result, belief, max_changes=max_changes, max_candidates=max_candidates,
                         max_seconds=max_seconds - (time.perf_counter() - t0), floor=floor)
    return replace(check, seconds=time.perf_counter() - t0)  # the whole check, finding the alternatives too


def check_belief(puzzle: Puzzle, result: SolveResult, belief: DigitBelief, *, max_changes: int = MAX_CHANGES,
                 max_candidates: int = MAX_CANDIDATES, max_seconds: float = MAX_SECONDS,
                 floor: float = MIN_RELATIVE_P) -> ReadingCheck:
    """The check of ``puzzle`` (whose givens are ``belief``'s grid) with ``belief``'s alternatives: one
    answer's, or several views' combined (runtime/digit_belief.py)."""
    t0 = time.perf_counter()
    check = settle(puzzle, readings_of(belief, floor), result, max_changes=max_changes,
                   max_candidates=max_candidates, max_seconds=max_seconds, floor=floor)
    return replace(check, seconds=time.perf_counter() - t0)


def _name(symbol: str) -> str:
    return "a blank" if symbol == "." else symbol


def _percent(p: float) -> str:
    return f"{100 * p:.0f}%" if p >= 0.01 else f"{100 * p:.1f}%"


def _ordinal(rank: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(rank, f"#{rank}")


__all__ = ["ALTERNATIVES", "Alternative", "CellReading", "Correction", "MAX_CANDIDATES", "MAX_CHANGES",
           "MAX_SECONDS", "MIN_RELATIVE_P", "ReadingCheck", "cell_readings", "check_belief", "check_reading",
           "readings_of", "settle"]
