"""Puzzle -> CNF. The classic part is written so unit propagation does the work:
every cell holds exactly one digit and every unit holds every digit exactly once
(both directions of the exactly-one), and givens are unit clauses.

Before writing the classic clauses we strike the digits the givens already rule
out (a single elimination pass, what a human does first). That keeps the
formula about a third of its full size, and pycosat's cost is mostly copying
clauses in: on the hardest 9x9 sets it halves the time per puzzle.
"""

from __future__ import annotations

from .cardinality import Clause, at_most_one
from .pool import VarPool
from .puzzle import Grid, Puzzle


def candidates(puzzle: Puzzle) -> list[list[set[int]]]:
    """Digits each cell may still take once the givens' units are struck out."""
    n = puzzle.size
    digits = set(range(1, n + 1))
    cand = [[({v} if (v := puzzle.givens[r][c]) else set(digits)) for c in range(n)] for r in range(n)]
    for unit in puzzle.units():
        placed = {puzzle.givens[r][c] for r, c in unit} - {0}
        for r, c in unit:
            if not puzzle.givens[r][c]:
                cand[r][c] -= placed
    return cand


def encode(puzzle: Puzzle) -> tuple[list[Clause], VarPool]:
    n = puzzle.size
    pool = VarPool(n)
    cell = pool.cell
    cand = candidates(puzzle)
    clauses: list[Clause] = []
    for r in range(n):
        for c in range(n):
            ds = sorted(cand[r][c])
            lits = [cell(r, c, d) for d in ds]
            clauses.append(lits)  # empty when nothing is left: UNSAT, as it should be
            clauses += at_most_one(lits)
            clauses += [[-cell(r, c, d)] for d in range(1, n + 1) if d not in cand[r][c]]
    for unit in puzzle.units():
        placed = {puzzle.givens[r][c] for r, c in unit}
        for d in range(1, n + 1):
            if d in placed:  # the given is a unit clause and its peers lost d above
                continue
            lits = [cell(r, c, d) for r, c in unit if d in cand[r][c]]
            clauses.append(lits)
            clauses += at_most_one(lits)
    for constraint in puzzle.constraints:
        clauses += constraint.encode(puzzle, pool)
    return clauses, pool


def decode(model: list[int], pool: VarPool) -> Grid:
    """Read the grid from a satisfying assignment (cell variables are 1..n^3)."""
    n = pool.size
    grid = [[0] * n for _ in range(n)]
    for lit in model[: pool.num_cell_vars]:
        if lit > 0:
            q, d = divmod(lit - 1, n)
            r, c = divmod(q, n)
            grid[r][c] = d + 1
    return tuple(tuple(row) for row in grid)


def blocking_clause(grid: Grid, pool: VarPool) -> Clause:
    """Forbid exactly this grid: only cell literals, never auxiliaries (see product.md)."""
    return [-pool.cell(r, c, v) for r, row in enumerate(grid) for c, v in enumerate(row)]
