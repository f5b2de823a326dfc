"""eval_reader's scoring: rules read exactly, overall and where every rule is drawn on the grid."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vlm_sudoku.runtime.answers import parse_rules_answer
from vlm_sudoku.tools.eval_reader import Item, Score, retaken_photo_items, rules_drawn, score_item, table
from vlm_sudoku.tools.render import digits_answer, rules_answer

from .paths import PHOTOS

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
    from vlm_sudoku.tools.eval_reader import by_kind_items
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


def test_rules_given_in_words_only_are_tallied_as_read() -> None:
    """Each reading of a puzzle with a rule given in words only, or naming one, is counted under (the truth's such
    rules, the reading's): anti-king read as anti-knight, as itself, as nothing, or not readable; a kropki puzzle
    read with anti-king added counts too, and one read right does not."""
    antiking, kropki = parse_rules_answer(ANTIKING), parse_rules_answer(KROPKI)
    score = Score()
    blank = Image.new("RGB", (8, 8))
    readings = [(antiking, ANTIKING.replace("antiking", "antiknight")), (antiking, ANTIKING),
                (antiking, '{"size":4,"rules":[]}'), (antiking, "not json"), (kropki, KROPKI),
                (kropki, KROPKI.replace('"rules":[', '"rules":[{"type":"antiking"},'))]
    for truth, read in readings:
        score_item(Item("x", blank, truth), {"rules": read, "digits": digits_answer(truth)}, score)
    row = score.row("rendered-by-kind")
    assert row["words_only"] == {"antiking -> antiking": 1, "antiking -> antiknight": 1, "antiking -> none": 1,
                                 "antiking -> unreadable": 1, "none -> antiking": 1}
    assert "| antiking | antiknight | 1 |" in table([row])


def test_marked_cells_count_places_apart_from_kinds_and_counts() -> None:
    """A thermometer read in its place scores F1 1 against the truth and 0 against the truth turned half round;
    one read of the right length elsewhere scores 0 against the truth; half its cells right, 0.5. A puzzle with
    no marked cells (anti-king) is not counted; an unreadable answer scores 0."""
    thermo = '{"size":4,"rules":[{"type":"thermo","cells":["r1c1","r1c2","r2c2","r2c3"]}]}'
    truth = parse_rules_answer(thermo)
    elsewhere = thermo.replace('"r1c1","r1c2","r2c2","r2c3"', '"r4c1","r4c2","r3c2","r3c3"')
    half = thermo.replace('"r1c1","r1c2","r2c2","r2c3"', '"r1c1","r1c2","r3c2","r3c3"')
    turned = thermo.replace('"r1c1","r1c2","r2c2","r2c3"', '"r4c4","r4c3","r3c3","r3c2"')
    blank = Image.new("RGB", (8, 8))
    rows = []
    for read in (thermo, elsewhere, half, turned, "not json"):
        score = Score()
        score_item(Item("x", blank, truth), {"rules": read, "digits": digits_answer(truth)}, score)
        antiking = parse_rules_answer(ANTIKING)
        score_item(Item("y", blank, antiking), {"rules": ANTIKING, "digits": digits_answer(antiking)}, score)
        rows.append(score.row("set"))
    assert [r["marked"] for r in rows] == [1] * 5
    assert [r["marked_cells_f1"] for r in rows] == [1.0, 0.0, 0.5, 0.0, 0.0]
    assert [r["marked_cells_f1_rotated"] for r in rows] == [0.0, 0.5, 0.5, 1.0, 0.0]
    assert "| 1.00 (0.00) of 1 |" in table(rows[:1])


def test_few_clue_puzzles_have_one_or_two_clues_of_one_marking_kind_each() -> None:
    from collections import Counter

    from vlm_sudoku.tools.eval_reader import few_clue_items

    items = list(few_clue_items(10))
    assert len({item.name for item in items}) == 10
    kinds = []
    for item in items:
        rules = Counter(c.rule for c in item.puzzle.constraints)
        assert item.puzzle.size == 9 and rules and max(rules.values()) <= 2
        kinds.append(frozenset(rules) - {"even"} if "odd" in rules else frozenset(rules))
        assert item.image.size[0] > 100
    assert len(set(kinds)) == 10  # a different kind each, in turn


def test_published_style_classic_puzzles_have_one_solution_and_24_to_36_givens() -> None:
    """The rendered-classic-unique set is what the reading check presumes (one solution), on its own seeds."""
    from vlm_sudoku.solver.solve import SOLVED, solve
    from vlm_sudoku.tools.eval_reader import SETS, unique_classic_items

    items = list(unique_classic_items(3))
    assert len({item.name for item in items}) == 3 and "rendered-classic-unique" in SETS
    for item in items:
        givens = sum(v != 0 for row in item.puzzle.givens for v in row)
        assert item.puzzle.size == 9 and not item.puzzle.constraints and 24 <= givens <= 36
        assert solve(item.puzzle).status == SOLVED and item.image.size[0] > 100
    assert [item.puzzle.givens for item in unique_classic_items(1)] == [items[0].puzzle.givens]  # seeded


def test_a_reading_is_scored_as_the_pipeline_settles_it(monkeypatch) -> None:
    """The digits scored "as read" are the views' joint reading (what vlm-solve takes), and "after the check"
    what the check made of it: a misreading of the first view only is right as read with three views; with
    one view it is wrong as read and right after the check."""
    from vlm_sudoku.runtime.cli import default_model_dir
    from vlm_sudoku.runtime.image_io import load_image
    from vlm_sudoku.runtime.pipeline import Pipeline
    from vlm_sudoku.tools.eval_reader import settled_givens

    from .test_reading_check import EXAMPLE, _misreading

    truth, _cell, _wrong = _misreading(monkeypatch)
    item = Item(EXAMPLE.name, load_image(EXAMPLE), truth, check_rules=False)
    rows = {}
    for views in (3, 1):
        pipe = Pipeline.load(default_model_dir(), provider="cpu", views=views)
        reading = pipe.read_image(item.image)
        read, checked, ruled = settled_givens(pipe, reading, 9)
        assert ruled is None
        score = Score(checked=True)
        score_item(item, reading.texts(), score, checked, read)
        rows[views] = score.row("photo")
    assert (rows[3]["grid_exact"], rows[3]["grid_exact_checked"], rows[3]["corrected"]) == (1.0, 1.0, 0)
    assert (rows[1]["grid_exact"], rows[1]["grid_exact_checked"], rows[1]["corrected"]) == (0.0, 1.0, 1)
    assert rows[1]["cell_accuracy"] == 80 / 81


def test_each_misread_image_is_named_with_its_wrong_cells() -> None:
    """The images still wrong, by name and cell (true->read), and the unreadable ones with the parser's reason:
    the list a session starts from when it asks what is left."""
    from vlm_sudoku.solver.grid_text import parse_grid
    from vlm_sudoku.tools.eval_reader import misread_lines

    truth = parse_grid("1234341221434321")
    score = Score()
    blank = Image.new("RGB", (8, 8))
    # the second reads r4c3's 2 as 3; the third is no grid at all
    for name, digits in [("right", "1234\n3412\n2143\n4321"), ("wrong", "1234\n3412\n2143\n4331"), ("garbled", "12")]:
        score_item(Item(name, blank, truth, check_rules=False), {"digits": digits}, score)
    row = score.row("set")
    assert [m["image"] for m in row["misread"]] == ["wrong", "garbled"]
    assert row["misread"][0] == {"image": "wrong", "cells": ["r4c3 2->3"]}
    lines = misread_lines([row]).splitlines()
    assert lines[0] == "set wrong: r4c3 2->3" and lines[1].startswith("set garbled: unreadable: ")
    assert misread_lines([Score().row("empty")]) == "no image read with a wrong digit"


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos_train is not checked out")
def test_retaken_photos_are_new_pictures_of_the_validation_puzzles_and_the_same_every_run() -> None:
    from vlm_sudoku.tools.train.photos import VALIDATION_PHOTOS, load_photos, split

    _train, val = split(load_photos(PHOTOS))
    first = list(retaken_photo_items(len(val) + 2, PHOTOS))
    again = list(retaken_photo_items(3, PHOTOS))
    assert len(first) == len(val) + 2
    assert {item.name.split("#")[0] for item in first} == set(VALIDATION_PHOTOS)
    assert [item.name for item in first[-2:]] == [f"{val[0].path.name}#1", f"{val[1].path.name}#1"]
    assert [item.puzzle for item in first[:3]] == [p.puzzle for p in val[:3]]
    for a, b in zip(first, again):
        assert a.name == b.name and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    # a re-take of the same photo is another picture
    assert not np.array_equal(np.asarray(first[0].image.resize((64, 64))), np.asarray(first[len(val)].image.resize((64, 64))))


def test_readings_with_marks_maps_are_scored_with_them_and_without() -> None:
    """For a model that declares a marks map, the rules scored are the rules answer's with each map's rules in
    place (as vlm-solve reads them); the rules answer alone and each layer's map are scored beside them."""
    from vlm_sudoku.runtime.marks_map import map_text

    truth = parse_rules_answer('{"size":4,"rules":[{"type":"thermo","cells":["r2c2","r3c3","r4c4"]}]}')
    misplaced = '{"size":4,"rules":[{"type":"thermo","cells":["r1c1","r1c2","r1c3"]}]}'
    score = Score()
    blank = Image.new("RGB", (8, 8))
    right_map, misplaced_map = map_text(truth, "thermo"), map_text(parse_rules_answer(misplaced), "thermo")
    not_a_map = "....\n.6.5\n....\n...."  # (it steps off the lines: vlm-solve keeps the rules answer's thermo)
    for rules, thermo_map in ((misplaced, right_map), (misplaced, not_a_map), (rules_answer(truth), not_a_map),
                              (rules_answer(truth), misplaced_map)):
        score_item(Item("x", blank, truth), {"rules": rules, "digits": digits_answer(truth), "map:thermo": thermo_map},
                   score)
    classic = parse_rules_answer('{"size":4,"rules":[]}')  # no map asked: the same either way
    score_item(Item("x", blank, classic), {"rules": rules_answer(classic), "digits": digits_answer(classic)}, score)
    row = score.row("set")
    assert (row["rules_exact"], row["rules_exact_without_maps"]) == (3 / 5, 3 / 5)  # readings 1, 3, 5 / 3, 4, 5
    assert (row["rules_types"], row["rules_types_without_maps"]) == (5 / 5, 5 / 5)
    assert row["maps_by_layer"] == {"thermo": {"maps": 4, "exact": 1 / 4}}
    assert "| thermo | 4 | 25% |" in table([row])


def test_grids_read_exactly_are_also_counted_by_the_size_of_their_cells() -> None:
    """Each rendered image counts under the bin of its grid's cell size in the picture (the narrowest side over
    the size), read exactly or not; images with no known grid (the photos) count in no bin."""
    from vlm_sudoku.solver.grid_text import parse_grid
    from vlm_sudoku.tools.eval_reader import cell_px_bin, grid_cell_px, rendered_items

    assert [cell_px_bin(px) for px in (5, 19.9, 20, 35, 40, 300)] == ["<20", "<20", "20-30", "30-40", ">=40", ">=40"]
    # a 4x4 grid 100 px wide but foreshortened to 60 px at its right side
    assert grid_cell_px(((0, 0), (100, 20), (100, 80), (0, 100)), 4) == 15.0
    truth = parse_grid("1234341221434321")
    score = Score()
    blank = Image.new("RGB", (8, 8))
    for px, digits in [(12, "1234\n3412\n2143\n4321"), (15, "1234\n3412\n2143\n4331"), (50, "1234\n3412\n2143\n4321"),
                       (None, "1234\n3412\n2143\n4331"), (25, "12")]:
        score_item(Item("x", blank, truth, check_rules=False, cell_px=px), {"digits": digits}, score)
    row = score.row("set")
    assert row["grid_exact_by_cell_px"] == {"<20": {"images": 2, "grid_exact": 0.5},
                                            "20-30": {"images": 1, "grid_exact": 0.0},
                                            ">=40": {"images": 1, "grid_exact": 1.0}}
    assert "<20 px 1 of 2, 20-30 px 0 of 1, >=40 px 1 of 1" in table([row])
    # a render's size is its true grid's, as drawn
    item = next(rendered_items("classic", 1, (9,)))
    assert item.cell_px is not None and 5 < item.cell_px < max(item.image.size) / 9
