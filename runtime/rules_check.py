"""A solver-checked rules reading: a rule the model named that the puzzle's own digits rule out.

Why: a model can name a rule that is not printed (run 18 named disjoint groups on one re-taken classic photo
of 100, and a kropki dot on another), and then the reading has no solution, though the digits alone have
exactly one. When the reading has no solution and the digit check (reading_check.py) found no change that
gives one, leave out each rule type the reading names in turn: if exactly one of them leaves a puzzle with
exactly one solution, that rule is taken as misread and the puzzle is solved without it, and every output
says so. A true rule is rarely such a type: a variant puzzle's givens need their rules to be unique, so leaving
one out gives several solutions, not one. Where no type, or more than one, would do, the reading stands.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ..solver.puzzle import Puzzle
from ..solver.solve import NO_SOLUTION, SOLVED, SolveResult, solve


@dataclass(frozen=True)
class RulesCheck:
    """The rule type left out, the puzzle without it and its (unique) solution, and the reading as given."""

    dropped: str
    puzzle: Puzzle
    result: SolveResult
    read_puzzle: Puzzle
    read_result: SolveResult
    tried: int  # rule types tried
    seconds: float

    def line(self) -> str:
        """One line for people: what was left out and why."""
        count = sum(c.rule == self.dropped for c in self.read_puzzle.constraints)
        what = f"the {self.dropped} rule" if count == 1 else f"the {count} {self.dropped} rules"
        return (f"rules check: the rules as read have no solution; without {what} the model named, the digits have "
                f"exactly one, so the puzzle is solved without {'it' if count == 1 else 'them'} ({self.tried} rule "
                f"type{'s' if self.tried > 1 else ''} tried in {1000 * self.seconds:.0f} ms)")


def check_rules(puzzle: Puzzle, result: SolveResult) -> RulesCheck | None:
    """The reading with the one rule type that keeps it from having a unique solution left out; None where the
    reading has a solution, or where no rule type, or several, would leave exactly one."""
    if result.status != NO_SOLUTION:
        return None
    start = time.perf_counter()
    types = list(dict.fromkeys(c.rule for c in puzzle.constraints))
    unique = []
    for rule in types:
        without = replace(puzzle, constraints=tuple(c for c in puzzle.constraints if c.rule != rule))
        solved = solve(without)
        if solved.status == SOLVED:
            unique.append((rule, without, solved))
    if len(unique) != 1:
        return None
    rule, without, solved = unique[0]
    return RulesCheck(rule, without, solved, puzzle, result, len(types), time.perf_counter() - start)
