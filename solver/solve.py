"""The solver facade: the only place that calls pycosat."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import pycosat

from .constraints.base import Constraint
from .errors import SearchLimit
from .encode import blocking_clause, decode, encode
from .pool import VarPool
from .puzzle import Grid, Puzzle

SOLVED, NO_SOLUTION, MULTIPLE = "solved", "no_solution", "multiple_solutions"


@dataclass(frozen=True)
class SolveResult:
    status: str  # SOLVED | NO_SOLUTION | MULTIPLE
    solutions: tuple[Grid, ...] = ()  # one when solved, two (differing) when multiple
    seconds: float = 0.0
    reason: str | None = None  # why there is no solution, when we can tell
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def solution(self) -> Grid | None:
        return self.solutions[0] if self.status == SOLVED else None


def given_conflicts(puzzle: Puzzle) -> str | None:
    """A human-readable reason when the givens already repeat a digit in a unit."""
    names = (
        [f"row {r + 1}" for r in range(puzzle.size)]
        + [f"column {c + 1}" for c in range(puzzle.size)]
        + [f"region {g + 1}" for g in range(puzzle.size)]
    )
    for name, unit in zip(names, puzzle.units()):
        seen: dict[int, int] = {}
        for r, c in unit:
            v = puzzle.givens[r][c]
            if v:
                seen[v] = seen.get(v, 0) + 1
                if seen[v] == 2:
                    return f"the given {puzzle.alphabet.symbol(v)} appears twice in {name}"
    return None


def violated(puzzle: Puzzle, grid: Grid) -> list[str]:
    """Independent check of a finished grid: which rules (if any) it breaks.

    Used by tests and as a guard before we print a solution: it re-reads the
    rules from their definitions rather than from the CNF.
    """
    n = puzzle.size
    bad: list[str] = []
    if any(not 1 <= v <= n for row in grid for v in row):
        bad.append("grid is not complete")
        return bad
    for r in range(n):
        for c in range(n):
            if puzzle.givens[r][c] and grid[r][c] != puzzle.givens[r][c]:
                bad.append(f"given at r{r + 1}c{c + 1} changed")
    for unit in puzzle.units():
        if len({grid[r][c] for r, c in unit}) != n:
            bad.append(f"unit {unit[0]}..{unit[-1]} repeats a digit")
    for con in puzzle.constraints:
        if not con.satisfied(grid, puzzle):
            bad.append(f"{con.rule} {con.to_rule()}")
    return bad


def solve(puzzle: Puzzle, *, check_unique: bool = True, prop_limit: int = 0) -> SolveResult:
    """Solve, then (optionally) prove uniqueness by blocking the solution and solving again.

    ``prop_limit`` bounds each SAT call (picosat propagations); past it a
    SearchLimit is raised. Users' puzzles never get one: only the generator,
    which would rather skip a puzzle than wait minutes for it, sets it.
    """
    start = time.perf_counter()
    reason = given_conflicts(puzzle)
    if reason:
        return SolveResult(NO_SOLUTION, (), time.perf_counter() - start, reason)
    clauses, pool = encode(puzzle)
    stats = {"clauses": len(clauses), "vars": pool.top}
    grids = _models(clauses, pool, 2 if check_unique else 1, prop_limit)
    seconds = time.perf_counter() - start
    if not grids:
        return SolveResult(NO_SOLUTION, (), seconds, "no grid satisfies every rule", stats)
    return SolveResult(SOLVED if len(grids) == 1 else MULTIPLE, tuple(grids), seconds, None, stats)


def _models(clauses: list, pool: VarPool, limit: int, prop_limit: int = 0) -> list[Grid]:
    """Up to ``limit`` different grids.

    Without auxiliary variables pycosat's own iterator is exact (it blocks every
    variable, and every variable is a cell literal) and copies the clauses in
    once; with auxiliaries it could return the same grid again with other
    auxiliary values, so there we block the cell literals ourselves. The
    iterator cannot tell "no more" from "gave up", so a limited search never uses it.
    """
    if pool.top == pool.num_cell_vars and not prop_limit:
        return [decode(m, pool) for m in itertools.islice(pycosat.itersolve(clauses), limit)]
    grids: list[Grid] = []
    while len(grids) < limit:
        model = pycosat.solve(clauses, prop_limit=prop_limit)
        if model == "UNSAT":
            break
        if model == "UNKNOWN":
            raise SearchLimit(f"the SAT search passed {prop_limit} propagations")
        grids.append(decode(model, pool))
        clauses = [*clauses, blocking_clause(grids[-1], pool)]
    return grids


__all__ = ["Constraint", "MULTIPLE", "NO_SOLUTION", "SOLVED", "SolveResult", "given_conflicts", "solve", "violated"]
