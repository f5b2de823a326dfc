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


def test_rule_types_count_apart_from_the_cells_and_per_kind() -> None:
    """A kropki dot between the wrong cells has the right rule types but is not exact; a kropki puzzle read
    as XV has neither; each is tallied under its true kinds. The by-kind set cycles through the kinds."""
    from vlm_sudoku.tools.eval_reader import by_kind_items, table
    from vlm_sudoku.tools.render.puzzles import VARIANT_KINDS

    kropki = parse_rules_answer(KROPKI)
    elsewhere = KROPKI.replace('"r1c1","r1c2"', '"r3c1","r3c2"')
    as_xv = '{"size":4,"rules":[{"type":"xv","cells":["r1c1","r1c2"],"sum":5}]}'
    score = Score()
    blank = Image.new("RGB", (8, 8))
    for read in (KROPKI, elsewhere, as_xv, "not json"):
        score_item(Item("x", blank, kropki), {"rules": read, "digits": digits_answer(kropki)}, score)
    row = score.row("rendered-by-kind")
    assert (row["rules_exact"], row["rules_types"]) == (1 / 4, 2 / 4)
    assert row["rules_by_kind"] == {"kropki": {"images": 4, "types": 0.5, "exact": 0.25}}
    assert "| kropki | 4 | 50% | 25% |" in table([row])
    items = list(by_kind_items(2))
    assert [item.puzzle.size for item in items] == [9, 9]
    first = {c.rule for c in items[0].puzzle.constraints}
    assert first == {VARIANT_KINDS[0]} and {c.rule for c in items[1].puzzle.constraints} == {VARIANT_KINDS[1]}
