"""The rules check (runtime/rules_check.py): a rule type the model named that the digits rule out is left out, or a
rule given in words only is taken for another, only where exactly one such change gives the digits exactly one
solution, and vlm-solve says so; anything else leaves the reading alone."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from vlm_sudoku.runtime.cli import default_model_dir
from vlm_sudoku.runtime.rules_check import check_rules
from vlm_sudoku.solver.constraints.base import rule_from_json
from vlm_sudoku.solver.grid_text import parse_grid
from vlm_sudoku.solver.puzzle import Puzzle
from vlm_sudoku.solver.constraints.base import RULES
from vlm_sudoku.solver.solve import MULTIPLE, NO_SOLUTION, SOLVED, solve
from vlm_sudoku.tools.render.puzzles import sample_puzzle

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
    assert check is not None and check.dropped == "disjoint" and check.instead is None
    assert check.tried == 4  # left out, or taken for anti-knight, anti-king or non-consecutive
    assert check.result.status == SOLVED and check.result.solutions == solve(puzzle).solutions
    assert check.puzzle.constraints == () and check.read_puzzle is misread
    assert check.line().startswith("rules check: the rules as read have no solution; without the disjoint rule the model "
                                   "named, the digits have exactly one, so the puzzle is solved without it")


def _unique_anti_knight(seed: int) -> Puzzle:
    """A generated anti-knight puzzle with givens of its solution added until it has exactly one solution (the
    generator's puzzles need not: its renders are for reading)."""
    puzzle, solution = sample_puzzle(random.Random(seed), sizes=(9,), kinds=("antiknight",))
    assert [c.rule for c in puzzle.constraints] == ["antiknight"]
    empty = [(r, c) for r in range(9) for c in range(9) if not puzzle.givens[r][c]]
    random.Random(seed).shuffle(empty)
    while solve(puzzle).status != SOLVED:
        r, c = empty.pop()
        puzzle = puzzle.with_givens([[solution[i][j] if (i, j) == (r, c) else v for j, v in enumerate(row)]
                                     for i, row in enumerate(puzzle.givens)])
    return puzzle


@pytest.mark.parametrize("seed, status", [(0, NO_SOLUTION), (2, MULTIPLE)])
def test_a_rule_given_in_words_read_as_another_is_replaced_where_that_alone_gives_one_solution(seed: int,
                                                                                               status: str) -> None:
    """Run 21 read anti-knight renders as anti-king: the digits of such a reading have no solution, or several;
    with anti-knight in its place, and with no other change tried, exactly one."""
    puzzle = _unique_anti_knight(seed)
    misread = replace(puzzle, constraints=(RULES["antiking"](),))
    as_read = solve(misread)
    assert as_read.status == status
    check = check_rules(misread, as_read)
    assert check is not None and (check.dropped, check.instead) == ("antiking", "antiknight")
    assert check.puzzle == puzzle and check.result.solutions == solve(puzzle).solutions
    assert check.tried == (4 if status == NO_SOLUTION else 3)  # (several solutions: no rule is left out)
    how = "no solution" if status == NO_SOLUTION else "several solutions"
    assert check.line().startswith(f"rules check: the rules as read have {how}; with antiknight in place of the "
                                   "antiking rule the model named")


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
    several = _with(sparse, {"type": "odd", "cells": ["r1c1"]})
    result = solve(several)
    assert result.status == MULTIPLE and check_rules(several, result) is None  # a rule is never added


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


def test_vlm_solve_solves_with_the_rule_put_in_place_and_says_so() -> None:
    from vlm_sudoku.runtime.engine import Generation
    from vlm_sudoku.runtime.pipeline import Outcome, Pipeline, Reading, outcome_json

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=True)

    puzzle = _unique_anti_knight(0)
    rows = "\n".join("".join(str(v) if v else "." for v in row) for row in puzzle.givens)
    reading = Reading(encoded=[], prefix_tokens=0, prefix_s=0.0, answers={
        "rules": said('{"size":9,"rules":[{"type":"antiking"}]}'), "digits": said(rows)})
    pipeline = Pipeline.load(default_model_dir(), provider="cpu", views=1)
    out = Outcome("x.png", reading=reading)
    pipeline.settle(reading, out)
    obj = outcome_json(out)
    assert out.result.status == SOLVED and out.result.solutions == solve(puzzle).solutions and out.exit_code == 0
    assert obj["rules"]["rules"] == [{"type": "antiknight"}] and "rule_left_out" not in obj
    assert obj["rule_replaced"]["type"] == "antiking" and obj["rule_replaced"]["by"] == "antiknight"
    assert obj["rule_replaced"]["status_as_read"] == NO_SOLUTION and obj["rule_replaced"]["why"].startswith("rules check")


def test_eval_reader_counts_the_rules_exact_after_the_rules_check_as_vlm_solve_reports_them() -> None:
    from vlm_sudoku.tools.eval_reader import Score, score_rules_check, table

    truth = _classic()
    misread = _with(truth, {"type": "disjoint"})
    check = check_rules(misread, solve(misread))
    score = Score(checked=True)
    score.rules_checked = 3
    score_rules_check(check, False, truth, score)  # read with a rule too many, which the check left out
    score_rules_check(None, True, truth, score)  # read right, nothing to check
    score_rules_check(None, False, truth, score)  # read wrong, the check found nothing to do
    assert (score.rules_left_out, score.rules_left_out_right, score.rules_replaced) == (1, 1, 0)
    assert score.row("x")["rules_exact_checked"] == pytest.approx(2 / 3)
    assert Score().row("x")["rules_exact_checked"] is None  # (no check ran: a backend without one)
    assert "rules exact after the rules check (as vlm-solve reports them): x 66.7%" in table([score.row("x")])
