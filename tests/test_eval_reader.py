"""eval_reader's scoring: rules read exactly, overall and where every rule is drawn on the grid."""

from __future__ import annotations

from PIL import Image

from vlm_sudoku.runtime.answers import parse_rules_answer
from vlm_sudoku.tools.eval_reader import Item, Score, rules_drawn, score_item
from vlm_sudoku.tools.render import digits_answer, rules_answer

ANTIKING = '{"size":4,"rules":[{"type":"antiking"}]}'
KROPKI = '{"size":4,"rules":[{"type":"kropki","color":"white","cells":["r1c1","r1c2"]}]}'


def test_rules_exact_is_also_counted_over_the_puzzles_whose_rules_are_drawn() -> None:
    """A rule stated only in words beside the grid (anti-king) cannot be read from the grid view, so such
    puzzles count in rules_exact but not in rules_exact_drawn; a misread drawn rule counts against both."""
    antiking, kropki = parse_rules_answer(ANTIKING), parse_rules_answer(KROPKI)
    assert not rules_drawn(antiking) and rules_drawn(kropki)
    score = Score()
    blank = Image.new("RGB", (8, 8))
    classic = '{"size":4,"rules":[]}'
    for truth, read in [(antiking, rules_answer(antiking)), (kropki, rules_answer(kropki)), (kropki, classic)]:
        score_item(Item("x", blank, truth), {"rules": read, "digits": digits_answer(truth)}, score)
    row = score.row("set")
    assert (row["rules_exact"], row["rules_drawn"], row["rules_exact_drawn"]) == (2 / 3, 2, 1 / 2)
    assert row["grid_exact"] == 1.0
