"""The solver against every puzzle collection in ../shared/data/puzzles."""

from __future__ import annotations

import json

import pytest

from vlm_sudoku.solver import MULTIPLE, NO_SOLUTION, SOLVED, UnknownConstraint, parse_grid, solve, violated
from vlm_sudoku.solver.fpuzzles import COSMETIC_KEYS, fpuzzles_solution, read_fpuzzles
from vlm_sudoku.solver.grid_text import format_grid

from .paths import PUZZLES

pytestmark = pytest.mark.skipif(not PUZZLES.is_dir(), reason="../shared/data/puzzles is not checked out")


def _lines(name: str) -> list[str]:
    return [ln.strip() for ln in (PUZZLES / name).read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_magictour_top1465_all_unique_and_valid() -> None:
    lines = _lines("classic_9x9_magictour_top1465.txt")
    assert len(lines) == 1465
    for line in lines:
        puzzle = parse_grid(line)
        result = solve(puzzle)
        assert result.status == SOLVED, line
        assert violated(puzzle, result.solution) == []


@pytest.mark.parametrize("name", ["classic_4x4_with_solutions.txt", "classic_16x16_with_solutions.txt"])
def test_collections_with_solutions(name: str) -> None:
    lines = _lines(name)
    assert len(lines) == 50
    for line in lines:
        grid, expected, solution = line.split(":")
        puzzle = parse_grid(grid)
        result = solve(puzzle)
        assert expected == "unique"
        assert result.status == SOLVED, line
        assert format_grid(result.solution, puzzle.alphabet) == solution


def test_16x16_cases_unique_multiple_invalid() -> None:
    seen = set()
    for line in _lines("classic_16x16_cases.txt"):
        name, expected, grid, solution = line.split(":")
        puzzle = parse_grid(grid)
        assert puzzle.alphabet.symbols == "0123456789ABCDEF"
        result = solve(puzzle)
        if expected == "unique":
            assert result.status == SOLVED, name
            assert format_grid(result.solution, puzzle.alphabet) == solution
        elif expected == "multiple":
            assert result.status == MULTIPLE, name
            a, b = result.solutions
            assert a != b and violated(puzzle, a) == [] and violated(puzzle, b) == []
        else:
            assert expected.startswith("invalid")
            assert result.status == NO_SOLUTION, name
            assert result.reason
        seen.add(expected.split("(")[0])
    assert seen == {"unique", "multiple", "invalid"}


def _fpuzzles_examples() -> list[dict]:
    return [json.loads(line) for line in (PUZZLES / "fpuzzles_examples.jsonl").read_text().splitlines() if line.strip()]


def test_fpuzzles_examples_with_solutions_match() -> None:
    with_solution = [d for d in _fpuzzles_examples() if fpuzzles_solution(d) is not None]
    assert len(with_solution) == 3
    for data in with_solution:
        keys = set(data["fpuzzles"]) & COSMETIC_KEYS
        puzzle = read_fpuzzles(data, ignore=keys)
        result = solve(puzzle)
        if not keys:  # the rules are all machine-readable: the solution must be the one published
            assert result.status == SOLVED, data["label"]
            assert result.solution == fpuzzles_solution(data)
        else:  # rules only stated in text were dropped: the published solution still satisfies what is left
            assert violated(puzzle, fpuzzles_solution(data)) == [], data["label"]


def test_fpuzzles_examples_solve_uniquely_or_name_the_unreadable_rule() -> None:
    solved = 0
    for data in _fpuzzles_examples():
        try:
            puzzle = read_fpuzzles(data)
        except UnknownConstraint as exc:
            assert any(k in str(exc) for k in COSMETIC_KEYS), str(exc)
            continue
        result = solve(puzzle)
        assert result.status == SOLVED, data["label"]
        assert violated(puzzle, result.solution) == []
        solved += 1
    assert solved >= 28
