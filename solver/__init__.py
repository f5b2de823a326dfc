"""Sudoku solving with SAT (pycosat): classic and variant rules, sizes 4 to 16.

>>> from vlm_sudoku.solver import parse_grid, solve
>>> result = solve(parse_grid("...3..4114..3..."))
>>> result.status, result.solution[0]
('solved', (4, 1, 2, 3))
"""

from .errors import (
    InputError,
    ModelOutputError,
    MultipleSolutions,
    NoSolution,
    PuzzleFormatError,
    UnknownConstraint,
    VlmSudokuError,
)
from .fpuzzles import load_fpuzzles_file, read_fpuzzles, write_fpuzzles
from .grid_text import format_grid, parse_grid, pretty_grid
from .puzzle import Puzzle
from .rules_json import dumps_rules, loads_rules, read_rules, write_rules
from .solve import MULTIPLE, NO_SOLUTION, SOLVED, SolveResult, solve, violated

__all__ = [
    "InputError", "ModelOutputError", "MultipleSolutions", "NoSolution", "PuzzleFormatError",
    "UnknownConstraint", "VlmSudokuError", "Puzzle", "SolveResult", "SOLVED", "NO_SOLUTION", "MULTIPLE",
    "solve", "violated", "parse_grid", "format_grid", "pretty_grid", "read_fpuzzles", "write_fpuzzles",
    "load_fpuzzles_file", "read_rules", "write_rules", "dumps_rules", "loads_rules",
]
