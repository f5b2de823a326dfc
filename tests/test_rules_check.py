"""The rules check (runtime/rules_check.py): a rule type the model named that the digits rule out is left out only
where the digits then have exactly one solution, and vlm-solve says so; anything else leaves the reading alone."""

from __future__ import annotations

from dataclasses import replace

from vlm_sudoku.runtime.cli import default_model_dir
from vlm_sudoku.runtime.rules_check import check_rules
from vlm_sudoku.solver.constraints.base import rule_from_json
from vlm_sudoku.solver.grid_text import parse_grid
from vlm_sudoku.solver.puzzle import Puzzle
from vlm_sudoku.solver.solve import MULTIPLE, NO_SOLUTION, SOLVED, solve

# examples/image162.jpg's newspaper puzzle: exactly one solution
CLASSIC = ("1....2.9...9.....6...98..3.5.3..7..17..213..46..4..3.8.3..71...4.....5...2.59...3"
           .replace(".", "0"))


def _with(puzzle: Puzzle, *rules: dict) -> Puzzle:
    return replace(puzzle, constraints=tuple(rule_from_json(r, puzzle.size) for r in rules))


def _classic() -> Puzzle:
    puzzle = parse_grid(CLASSIC)
    assert solve(puzzle).status == SOLVED
    return puzzle


def test_a_named_rule_the_digits_rule_out_is_left_out_where_they_then_have_one_solution() -> None:
    puzzle = _classic()
    misread = _with(puzzle, {"type": "disjoint"})
    as_read = solve(misread)
    assert as_read.status == NO_SOLUTION  # (the newspaper's solution breaks disjoint groups)
    check = check_rules(misread, as_read)
    assert check is not None and check.dropped == "disjoint" and check.tried == 1
    assert check.result.status == SOLVED and check.result.solutions == solve(puzzle).solutions
    assert check.puzzle.constraints == () and check.read_puzzle is misread
    assert check.line().startswith("rules check: the rules as read have no solution; without the disjoint rule the model "
                                   "named, the digits have exactly one, so the puzzle is solved without it")


def test_the_reading_stands_where_no_rule_type_or_several_would_do() -> None:
    puzzle = _classic()
    assert check_rules(puzzle, solve(puzzle)) is None  # it solves
    two = _with(puzzle, {"type": "disjoint"}, {"type": "antiknight"})
    result = solve(two)
    assert result.status == NO_SOLUTION
    assert check_rules(two, result) is None  # leaving out either one still leaves the other broken
    sparse = replace(puzzle, givens=tuple(tuple(v if r < 2 else 0 for v in row) for r, row in enumerate(puzzle.givens)))
    clash = _with(sparse, {"type": "odd", "cells": ["r1c1"]}, {"type": "even", "cells": ["r1c1"]})
    result = solve(clash)
    assert result.status == NO_SOLUTION
    assert solve(replace(clash, constraints=clash.constraints[:1])).status == MULTIPLE
    assert check_rules(clash, result) is None  # without either, many solutions: no rule is blamed


def test_vlm_solve_solves_without_the_rule_and_says_so() -> None:
    from vlm_sudoku.runtime.engine import Generation
    from vlm_sudoku.runtime.pipeline import Outcome, Pipeline, Reading, outcome_json

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=True)

    rows = "\n".join(CLASSIC[9 * r:9 * r + 9].replace("0", ".") for r in range(9))
    reading = Reading(encoded=[], prefix_tokens=0, prefix_s=0.0, answers={
        "rules": said('{"size":9,"rules":[{"type":"disjoint"}]}'), "digits": said(rows)})
    for check in (True, False):
        pipeline = Pipeline.load(default_model_dir(), provider="cpu", check_reading=check, views=1)
        out = Outcome("x.png", reading=reading)
        pipeline.settle(reading, out)
        obj = outcome_json(out)
        if check:
            assert out.rules_check is not None and out.result.status == SOLVED and out.exit_code == 0
            assert obj["status"] == "solved" and not obj["rules"].get("rules")
            assert obj["rule_left_out"]["type"] == "disjoint" and obj["rule_left_out"]["status_as_read"] == NO_SOLUTION
            assert "rules_check" in out.timings
        else:
            assert out.rules_check is None and out.result.status == NO_SOLUTION and "rule_left_out" not in obj
