"""The generator: seeded, reproducible, unique puzzles for every size and kind."""

from __future__ import annotations

import pytest

from vlm_sudoku.solver import SOLVED, solve, violated
from vlm_sudoku.solver.generate import GENERATED_KINDS, generate, random_regions
from vlm_sudoku.solver.rules_json import dumps_rules


@pytest.mark.parametrize("size", [4, 6, 9])
def test_classic_is_reproducible_unique_and_minimal(size: int) -> None:
    a, sol_a = generate(size, seed=42)
    b, sol_b = generate(size, seed=42)
    assert a == b and sol_a == sol_b
    assert generate(size, seed=43)[1] != sol_a
    result = solve(a)
    assert result.status == SOLVED and result.solution == sol_a
    # minimal: every given is needed
    for r in range(size):
        for c in range(size):
            if a.givens[r][c]:
                fewer = [list(row) for row in a.givens]
                fewer[r][c] = 0
                assert solve(a.with_givens(fewer)).status != SOLVED


def test_16x16_with_a_given_budget() -> None:
    puzzle, solution = generate(16, seed=1, max_checks=40)
    assert solve(puzzle).solution == solution


@pytest.mark.parametrize("kind", GENERATED_KINDS)
def test_each_variant_kind(kind: str) -> None:
    puzzle, solution = generate(9, [kind], seed=9, max_checks=40)
    assert puzzle.constraints, kind
    assert violated(puzzle, solution) == []
    assert solve(puzzle).solution == solution
    assert dumps_rules(generate(9, [kind], seed=9, max_checks=40)[0]) == dumps_rules(puzzle)


def test_jigsaw_layouts_are_connected_and_balanced() -> None:
    import random

    for seed in range(5):
        owner = random_regions(9, random.Random(seed))
        assert sorted(sum(row.count(g) for row in owner) for g in range(9)) == [9] * 9
    puzzle, solution = generate(9, seed=3, jigsaw=True)
    assert puzzle.box is None and solve(puzzle).solution == solution
