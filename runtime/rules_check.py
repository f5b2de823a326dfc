"""A solver-checked rules reading: a rule the model named that the puzzle's own digits rule out.

Why: a model can name a rule that is not printed (run 18 named disjoint groups on one re-taken classic photo
of 100, and a kropki dot on another), and then the reading has no solution, though the digits alone have
exactly one. When the reading has no solution and the digit check (reading_check.py) found no change that
gives one, leave out each rule type the reading names in turn: if exactly one of them leaves a puzzle with
exactly one solution, that rule is taken as misread and the puzzle is solved without it, and every output
says so. A true rule is rarely such a type: a variant puzzle's givens need their rules to be unique, so leaving
one out gives several solutions, not one. Where no type, or more than one, would do, the reading stands.

The rules a picture gives in words alone (WORDS_ONLY: anti-knight, anti-king, non-consecutive, disjoint groups)
are also misread for one another: run 21 read all five disjoint-groups renders of eval_reader's by-kind set as
non-consecutive, and two of four anti-knight ones as anti-king. So a reading that does not solve uniquely is
also tried with each such rule it names replaced by each other such rule it does not name, and these tries
count with the ones above: exactly one of them all must give exactly one solution. A rule is only ever left
out or replaced, never added on no evidence: a puzzle read with several solutions is reported so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ..solver.constraints.base import RULES
from ..solver.errors import PuzzleFormatError
from ..solver.puzzle import Puzzle
from ..solver.solve import MULTIPLE, NO_SOLUTION, SOLVED, SolveResult, solve

#: Rule types a picture gives in words alone, with no mark in the grid (tools/render/draw.py UNMARKED's global
#: rules), which a reader takes for one another.
WORDS_ONLY = ("antiknight", "antiking", "nonconsecutive", "disjoint")


@dataclass(frozen=True)
class RulesCheck:
    """The rule type left out (and the one put in its place, if any), the puzzle so changed and its (unique)
    solution, and the reading as given."""

    dropped: str
    puzzle: Puzzle
    result: SolveResult
    read_puzzle: Puzzle
    read_result: SolveResult
    tried: int  # changes tried
    seconds: float
    instead: str | None = None  # the words-only rule type taken in place of ``dropped``

    def line(self) -> str:
        """One line for people: what was changed and why."""
        count = sum(c.rule == self.dropped for c in self.read_puzzle.constraints)
        what = f"the {self.dropped} rule" if count == 1 else f"the {count} {self.dropped} rules"
        how = "no solution" if self.read_result.status == NO_SOLUTION else "several solutions"
        tried = f"({self.tried} change{'s' if self.tried > 1 else ''} tried in {1000 * self.seconds:.0f} ms)"
        if self.instead is not None:
            return (f"rules check: the rules as read have {how}; with {self.instead} in place of {what} the model "
                    f"named (rules given in words only, which read alike), the digits have exactly one, so the "
                    f"puzzle is solved with {self.instead} {tried}")
        return (f"rules check: the rules as read have {how}; without {what} the model named, the digits have "
                f"exactly one, so the puzzle is solved without {'it' if count == 1 else 'them'} {tried}")


def check_rules(puzzle: Puzzle, result: SolveResult) -> RulesCheck | None:
    """The reading with the one change that gives it a unique solution (a rule type left out where it has no
    solution, or a words-only rule replaced by another); None where the reading solves, or where no change, or
    several, would give exactly one."""
    if result.status not in (NO_SOLUTION, MULTIPLE):
        return None
    start = time.perf_counter()
    named = list(dict.fromkeys(c.rule for c in puzzle.constraints))
    changes: list[tuple[str, str | None]] = [(rule, None) for rule in named] if result.status == NO_SOLUTION else []
    changes += [(rule, other) for rule in named if rule in WORDS_ONLY for other in WORDS_ONLY if other not in named]
    unique = []
    for rule, other in changes:
        kept = tuple(c for c in puzzle.constraints if c.rule != rule)
        try:
            changed = replace(puzzle, constraints=kept if other is None else (*kept, RULES[other]()))
            solved = solve(changed)
        except PuzzleFormatError:  # (a rule this grid cannot have: disjoint groups without boxes)
            continue
        if solved.status == SOLVED:
            unique.append((rule, other, changed, solved))
    if len(unique) != 1:
        return None
    rule, other, changed, solved = unique[0]
    return RulesCheck(rule, changed, solved, puzzle, result, len(changes), time.perf_counter() - start, other)
