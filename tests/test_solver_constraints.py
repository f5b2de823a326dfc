"""Every variant rule: the CNF encoding agrees with the rule's plain definition.

Two independent implementations per rule: ``encode`` (clauses) and
``satisfied`` (a direct check written from the rule text). The property tests
hold them against each other on random grids, so a wrong encoding shows up
as a grid one accepts and the other rejects.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlm_sudoku.solver import NO_SOLUTION, SOLVED, Puzzle, PuzzleFormatError, loads_rules, solve, violated
from vlm_sudoku.solver.constraints import RULES
from vlm_sudoku.solver.generate import GENERATED_KINDS, GLOBAL_KINDS, clues_for, generate, random_solution

BOX_KINDS = {"windoku", "disjoint"}  # need standard boxes
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def variant_puzzles(draw: st.DrawFn) -> tuple[Puzzle, tuple, random.Random]:
    size = draw(st.sampled_from([4, 6, 9]))
    kinds = draw(st.lists(st.sampled_from(GENERATED_KINDS), min_size=1, max_size=3, unique=True))
    jigsaw = draw(st.booleans()) and not (set(kinds) & BOX_KINDS)
    seed = draw(st.integers(0, 10**6))
    return size, tuple(kinds), jigsaw, seed


@SETTINGS
@given(variant_puzzles())
def test_generated_puzzles_solve_to_their_solution(case) -> None:
    size, kinds, jigsaw, seed = case
    try:
        puzzle, solution = generate(size, kinds, seed=seed, jigsaw=jigsaw, max_checks=30)
    except PuzzleFormatError:  # e.g. global rules that no grid of this size satisfies
        return
    result = solve(puzzle)
    assert result.status == SOLVED
    assert result.solution == solution
    assert violated(puzzle, result.solution) == []


@SETTINGS
@given(variant_puzzles())
def test_encoding_accepts_exactly_the_grids_the_definition_accepts(case) -> None:
    """Clues come from one grid; a second random grid is then pinned completely.

    SAT must say 'solvable' exactly when every rule's own check accepts the grid.
    """
    size, kinds, jigsaw, seed = case
    rng = random.Random(seed)
    try:
        puzzle, solution = generate(size, kinds, seed=seed, jigsaw=jigsaw, max_checks=0)
    except PuzzleFormatError:
        return
    bare = replace(puzzle, constraints=(), givens=tuple(tuple(0 for _ in r) for r in puzzle.givens))
    for grid in (solution, random_solution(bare, rng)):
        expected = all(c.satisfied(grid, puzzle) for c in puzzle.constraints)
        pinned = solve(puzzle.with_givens(grid), check_unique=False)
        assert (pinned.status == SOLVED) == expected, [c.rule for c in puzzle.constraints if not c.satisfied(grid, puzzle)]


def test_every_rule_type_is_generated_or_tested_by_hand() -> None:
    generated = {"killer", "thermo", "arrow", "whisper", "renban", "kropki", "kropki_negative", "xv", "xv_negative",
                 "odd", "even", "little_killer", "sandwich", *GLOBAL_KINDS}
    by_hand = {"palindrome", "between", "extra_region", "maximum", "minimum", "quadruple", "clone"}
    assert {cls.rule for cls in RULES.values()} == generated | by_hand


# -- rules the generator does not draw: small hand-made puzzles ---------------------------

SOLVED_4x4 = ((1, 2, 3, 4), (3, 4, 1, 2), (2, 1, 4, 3), (4, 3, 2, 1))


def _check_rule(rule: dict, holds: bool, grid=SOLVED_4x4) -> None:
    puzzle = loads_rules(f'{{"size":4,"rules":[{__import__("json").dumps(rule)}]}}')
    (con,) = puzzle.constraints
    assert con.satisfied(grid, puzzle) is holds
    pinned = solve(puzzle.with_givens(grid), check_unique=False)
    assert (pinned.status == SOLVED) is holds


@pytest.mark.parametrize(
    "rule, holds",
    [
        ({"type": "palindrome", "cells": ["r1c1", "r2c2", "r3c2"]}, True),  # 1 4 1
        ({"type": "palindrome", "cells": ["r1c1", "r1c2"]}, False),
        ({"type": "between", "cells": ["r1c1", "r1c2", "r1c4"]}, True),  # 1 < 2 < 4
        ({"type": "between", "cells": ["r1c1", "r1c3", "r1c2"]}, False),  # 3 not between 1 and 2
        ({"type": "extra_region", "cells": ["r1c1", "r2c2", "r3c3", "r4c4"]}, False),  # 1 4 4 1
        ({"type": "extra_region", "cells": ["r1c1", "r2c2", "r3c1"]}, True),  # 1 4 2
        ({"type": "maximum", "cells": ["r2c2"]}, True),  # 4 beats its neighbours 2, 1, 3, 1
        ({"type": "minimum", "cells": ["r1c1"]}, True),
        ({"type": "minimum", "cells": ["r2c2"]}, False),
        ({"type": "quadruple", "cells": ["r1c1", "r1c2", "r2c1", "r2c2"], "digits": [3, 4]}, True),
        ({"type": "quadruple", "cells": ["r1c1", "r1c2", "r2c1", "r2c2"], "digits": [1, 1]}, False),
        ({"type": "clone", "cells": ["r1c1", "r1c2"], "clone": ["r4c4", "r4c3"]}, True),
        ({"type": "clone", "cells": ["r1c1"], "clone": ["r2c1"]}, False),
    ],
)
def test_hand_made_rules(rule: dict, holds: bool) -> None:
    _check_rule(rule, holds)


@pytest.mark.parametrize(
    "rule, holds",
    [
        ({"type": "killer", "cells": ["r1c1", "r1c2"], "sum": 3}, True),
        ({"type": "killer", "cells": ["r1c1", "r1c2"], "sum": 4}, False),
        ({"type": "arrow", "bulb": ["r1c4"], "line": ["r1c1", "r2c1"]}, True),  # 4 = 1 + 3
        ({"type": "arrow", "bulb": ["r1c3"], "line": ["r1c1", "r3c2"]}, False),  # 3 != 1 + 1
        ({"type": "arrow", "bulb": ["r1c1", "r1c2"], "line": ["r2c2", "r3c3", "r4c4", "r1c4"]}, False),  # 12 != 13
        ({"type": "arrow", "bulb": ["r1c1", "r1c2"], "line": ["r2c2", "r3c3", "r1c4"]}, True),  # 12 = 4+4+4
        ({"type": "thermo", "cells": ["r1c1", "r1c2", "r1c3", "r1c4"]}, True),
        ({"type": "thermo", "cells": ["r2c1", "r2c2", "r2c3"]}, False),
        ({"type": "kropki", "color": "white", "cells": ["r1c1", "r1c2"]}, True),
        ({"type": "kropki", "color": "black", "cells": ["r1c1", "r1c2"]}, True),
        ({"type": "kropki", "color": "black", "cells": ["r1c3", "r1c4"]}, False),
        ({"type": "kropki", "color": "white", "value": 2, "cells": ["r1c1", "r1c3"]}, True),
        ({"type": "xv", "cells": ["r1c1", "r1c4"], "sum": 5}, True),
        ({"type": "xv", "cells": ["r1c1", "r1c2"], "sum": 5}, False),
        ({"type": "odd", "cells": ["r1c1", "r1c3"]}, True),
        ({"type": "even", "cells": ["r1c1"]}, False),
        ({"type": "little_killer", "clue": "r0c0", "direction": "DR", "sum": 10}, True),  # 1+4+4+1
        ({"type": "little_killer", "clue": "r0c0", "direction": "DR", "sum": 9}, False),
        ({"type": "little_killer", "clue": "r0c5", "direction": "DL", "sum": 10}, True),  # 4+1+1+4
        ({"type": "sandwich", "row": 1, "sum": 5}, True),  # 1 [2 3] 4
        ({"type": "sandwich", "row": 2, "sum": 0}, True),  # 3 4 1 2: 4 and 1 adjacent
        ({"type": "sandwich", "col": 1, "sum": 5}, True),  # 1 3 2 4
        ({"type": "sandwich", "col": 1, "sum": 4}, False),
        ({"type": "diagonal-"}, False),
        ({"type": "diagonal+"}, False),
        ({"type": "whisper", "cells": ["r1c1", "r2c2"]}, True),  # |1-4| >= 2
        ({"type": "whisper", "cells": ["r1c1", "r1c2"]}, False),
        ({"type": "renban", "cells": ["r1c1", "r1c2", "r2c1"]}, True),  # 1 2 3
        ({"type": "renban", "cells": ["r1c1", "r2c2"]}, False),  # 1 4
        ({"type": "antiknight"}, False),
        ({"type": "antiking"}, False),
        ({"type": "nonconsecutive"}, False),
        ({"type": "disjoint"}, True),  # each box position holds 1-4 once across the boxes
        ({"type": "windoku"}, False),
    ],
)
def test_generated_rules_on_a_fixed_grid(rule: dict, holds: bool) -> None:
    _check_rule(rule, holds)


def test_negative_constraints_exempt_marked_pairs() -> None:
    # 1 2 in r1c1-r1c2 are consecutive: with a white dot there, the negative rule allows it.
    base = '{"size":4,"rules":[%s]}'
    dot = '{"type":"kropki","color":"white","cells":["r1c1","r1c2"]}'
    for extra, holds in [('{"type":"nonconsecutive"}', False), ('{"type":"kropki_negative","color":"white"}', False)]:
        puzzle = loads_rules(base % f"{dot},{extra}")
        grid = ((1, 2, 4, 3), (3, 4, 1, 2), (2, 1, 3, 4), (4, 3, 2, 1))
        assert all(c.satisfied(grid, puzzle) for c in puzzle.constraints) is holds
    # a grid where the only consecutive side pair is the dotted one does pass
    puzzle = loads_rules(base % f'{dot},{{"type":"kropki_negative","color":"white"}}')
    grid = SOLVED_4x4
    free_consecutive = [
        (a, b) for a, b in [((r, c), (r, c + 1)) for r in range(4) for c in range(3)] + [((r, c), (r + 1, c)) for r in range(3) for c in range(4)]
        if abs(grid[a[0]][a[1]] - grid[b[0]][b[1]]) == 1 and {a, b} != {(0, 0), (0, 1)}
    ]
    assert puzzle.constraints[1].satisfied(grid, puzzle) is (not free_consecutive)


def test_clues_for_unknown_kind_names_it() -> None:
    with pytest.raises(PuzzleFormatError, match="'spiral'"):
        clues_for("spiral", SOLVED_4x4, random.Random(0))


def test_contradictory_rules_report_no_solution() -> None:
    puzzle = loads_rules('{"size":4,"rules":[{"type":"thermo","cells":["r1c1","r1c2"]},{"type":"thermo","cells":["r1c2","r1c1"]}]}')
    result = solve(puzzle)
    assert result.status == NO_SOLUTION and result.reason
