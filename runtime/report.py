"""How a solve result is shown: a JSON object for scripts, text for people.

The JSON object is the machine contract of ``vlm-solve --json`` (README):
"status" is one of solved / no_solution / multiple_solutions / error,
"solution" (rows concatenated, in the input's symbols) when solved,
"solutions" (two differing grids) when several exist, and "seconds".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..solver.grid_text import format_grid, pretty_grid
from ..solver.puzzle import Puzzle
from ..solver.solve import MULTIPLE, NO_SOLUTION, SOLVED, SolveResult

if TYPE_CHECKING:
    from .reading_check import ReadingCheck

EXIT_CODES = {SOLVED: 0, NO_SOLUTION: 3, MULTIPLE: 4}


def result_json(puzzle: Puzzle, result: SolveResult) -> dict[str, Any]:
    out: dict[str, Any] = {"status": result.status, "size": puzzle.size, "grid": puzzle.format_grid()}
    if result.status == SOLVED:
        out["solution"] = format_grid(result.solutions[0], puzzle.alphabet)
    elif result.status == MULTIPLE:
        out["solutions"] = [format_grid(g, puzzle.alphabet) for g in result.solutions]
    else:
        out["reason"] = result.reason
    out["seconds"] = round(result.seconds, 6)
    return out


def result_text(puzzle: Puzzle, result: SolveResult) -> str:
    """Human output (stdout); the error line for no solution goes to stderr from the CLI."""
    lines: list[str] = []
    if result.status == SOLVED:
        lines += ["solution:", pretty_grid(result.solutions[0], puzzle)]
    elif result.status == MULTIPLE:
        lines += ["several solutions; two of them:", pretty_grid(result.solutions[0], puzzle), "",
                  pretty_grid(result.solutions[1], puzzle)]
    lines.append(f"solved in {result.seconds * 1000:.1f} ms" if result.status != NO_SOLUTION
                 else f"searched in {result.seconds * 1000:.1f} ms")
    return "\n".join(lines)


def status_message(result: SolveResult) -> str | None:
    """The one-line stderr message for a puzzle that did not come out unique."""
    if result.status == NO_SOLUTION:
        return f"no solution: {result.reason or 'the rules contradict each other'}"
    if result.status == MULTIPLE:
        return "the puzzle has more than one solution (two are shown)"
    return None


def check_lines(check: "ReadingCheck") -> list[str]:
    """The reading check for people: one line per correction, or one saying that nothing was changed (a
    corrected answer always says so, with the model's probabilities, so the reader can judge it)."""
    if check.corrected:
        return [f"{c.describe()}: {check.why()}" for c in check.corrections]
    return [check.summary()]
