"""The views' joint belief about each cell (runtime/digit_belief.py), on digits answers tokenized by the embedded
model's real tokenizer with per-token choices as the engine gives them (test_reading_check._answer)."""

from __future__ import annotations

import math

import pytest

from vlm_sudoku.runtime.digit_belief import UNSEEN_P, DigitBelief, belief_of, combine_beliefs
from vlm_sudoku.runtime.reading_check import readings_of
from vlm_sudoku.runtime.tokenizer import Tokenizer
from vlm_sudoku.solver.grid_text import parse_grid

from .test_reading_check import CLASSIC, _answer, _with, tok  # noqa: F401 (tok: the fixture)


def _belief(tok: Tokenizer, grid: str, doubts: dict) -> DigitBelief:  # noqa: F811
    text, tokens, choices = _answer(tok, grid, doubts)
    return belief_of(text, tokens, choices, tok, 9)


def test_one_answer_states_its_reading_and_each_cell_choices(tok: Tokenizer) -> None:  # noqa: F811
    belief = _belief(tok, CLASSIC, {(0, 1): [("3", 0.6), ("8", 0.3), ("\n", 0.05)]})
    assert belief.grid == parse_grid(CLASSIC).givens and belief.views == 1
    assert belief.probs[(0, 1)] == pytest.approx({3: 0.6, 8: 0.3})  # the newline is no symbol of the grid
    assert belief.p((0, 0), 5) == pytest.approx(0.99) and belief.p((0, 0), 6) == 0.0


def test_two_views_outvote_a_third_one_misreading(tok: Tokenizer) -> None:  # noqa: F811
    misread = _with(CLASSIC, (0, 1), "8")
    views = [_belief(tok, misread, {(0, 1): [("8", 0.7), ("3", 0.25)]}),
             _belief(tok, CLASSIC, {(0, 1): [("3", 0.9), ("8", 0.08)]}),
             _belief(tok, CLASSIC, {(0, 1): [("3", 0.8)]})]  # the third never considered an 8
    joint = combine_beliefs(views)
    assert joint.views == 3 and joint.grid == parse_grid(CLASSIC).givens
    assert joint.probs[(0, 1)][3] == pytest.approx((0.25 * 0.9 * 0.8) ** (1 / 3))
    assert joint.probs[(0, 1)][8] == pytest.approx((0.7 * 0.08 * UNSEEN_P) ** (1 / 3))
    assert list(joint.probs[(0, 1)]) == [3, 8]  # most believed first
    # the reading check's alternatives come from the joint belief: the 8 is now far behind (32:1, from 7:10)
    (alt,) = readings_of(joint)[(0, 1)].alternatives
    assert alt.value == 8 and alt.loss > math.log(30)
    # a digit every view reads as certain stays so
    assert joint.p((4, 4), joint.grid[4][4]) == pytest.approx(0.99)


def test_views_that_disagree_evenly_keep_the_first_view_reading_and_the_doubt(tok: Tokenizer) -> None:  # noqa: F811
    misread = _with(CLASSIC, (0, 1), "8")
    first = _belief(tok, misread, {(0, 1): [("8", 0.5), ("3", 0.5)]})
    second = _belief(tok, CLASSIC, {(0, 1): [("3", 0.5), ("8", 0.5)]})
    joint = combine_beliefs([first, second])
    assert joint.grid[0][1] == 8
    (alt,) = readings_of(joint)[(0, 1)].alternatives
    assert (alt.value, alt.rank) == (3, 2) and alt.loss == pytest.approx(0.0)


def test_a_cell_without_choices_counts_as_certain_in_its_view() -> None:
    """A character inside a multi-character token has no choices: its view stands by what it wrote."""
    grid = parse_grid(CLASSIC).givens
    sure = DigitBelief(grid, {})
    other = _with(CLASSIC, (0, 0), "6")
    doubting = DigitBelief(parse_grid(other).givens, {(0, 0): {6: 0.6, 5: 0.4}})
    joint = combine_beliefs([doubting, sure])
    assert joint.grid == grid
    assert joint.probs[(0, 0)] == pytest.approx({5: math.sqrt(0.4), 6: math.sqrt(0.6 * UNSEEN_P)})
    assert combine_beliefs([sure]) is sure
    with pytest.raises(ValueError):
        combine_beliefs([])


def test_where_the_first_views_digits_answer_does_not_read_the_next_view_that_reads_is_taken() -> None:
    """A digits answer of the first grid view that breaks down (a row of 6 symbols) no longer makes the picture
    unreadable when another view read the grid; where none reads, the first view's error is the one reported."""
    import random

    from vlm_sudoku.runtime.cli import default_model_dir
    from vlm_sudoku.runtime.engine import Generation
    from vlm_sudoku.runtime.pipeline import Outcome, Pipeline, Reading
    from vlm_sudoku.solver.errors import ModelOutputError
    from vlm_sudoku.tools.render import digits_answer, rules_answer
    from vlm_sudoku.tools.render.puzzles import sample_puzzle

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=True)

    puzzle = sample_puzzle(random.Random(7), kinds=("classic",), sizes=(9,))[0]
    broken = "..3.5.\n" + "\n".join(digits_answer(puzzle).splitlines()[1:])
    pipeline = Pipeline.load(default_model_dir(), provider="cpu", views=3)
    reading = Reading([], {"rules": said(rules_answer(puzzle)), "digits": said(broken)}, 0, 0.0,
                      more_digits=[said("garbled"), said(digits_answer(puzzle))])
    out = Outcome("render")
    pipeline.settle(reading, out)
    assert out.puzzle is not None and out.puzzle.givens == puzzle.givens
    nothing = Reading([], {"rules": said(rules_answer(puzzle)), "digits": said(broken)}, 0, 0.0,
                      more_digits=[said("garbled")])
    with pytest.raises(ModelOutputError, match="row 1 of the model's digits answer has 6 symbols"):
        pipeline.settle(nothing, Outcome("render"))
