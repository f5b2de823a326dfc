"""The training-image renderer: determinism, every size and variant, labels, corners, CLI."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from vlm_sudoku.solver.constraints.cells import Quadruple
from vlm_sudoku.solver.generate import GENERATED_KINDS
from vlm_sudoku.solver.puzzle import Puzzle
from vlm_sudoku.solver.rules_json import dumps_rules, loads_rules
from vlm_sudoku.tools.render import STYLES, UnsupportedMarking, digits_answer, render, rules_answer, sample
from vlm_sudoku.tools.render.__main__ import main as cli
from vlm_sudoku.tools.render.fonts import BUILTIN, PRINTED, Font, FontSet
from vlm_sudoku.tools.render.labels import parse_digits_answer
from vlm_sudoku.tools.render.puzzles import canonical, kinds_of, sample_puzzle
from vlm_sudoku.tools.render.text import must_explain

RULE_OF_KIND = {"odd_even": ("odd", "even"), "kropki_negative": ("kropki_negative",), "xv_negative": ("xv_negative",)}


def _puzzle_with(kind: str, seed: int = 0, size: int = 9) -> Puzzle:
    """A sampled puzzle that carries the rules of ``kind``."""
    wanted = RULE_OF_KIND.get(kind, (kind,))
    for s in range(seed, seed + 50):
        puzzle, _ = sample_puzzle(random.Random(s), sizes=(size,), kinds=(kind,))
        if any(c.rule in wanted for c in puzzle.constraints):
            return puzzle
    raise AssertionError(f"no {kind} puzzle in 50 seeds")


def _inside(item) -> bool:
    w, h = item.image.size
    return all(0 <= x <= w and 0 <= y <= h for x, y in item.corners)


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_pixels(style: str) -> None:
    a = sample(11, sizes=(9,), kinds="all", styles=(style,))
    b = sample(11, sizes=(9,), kinds="all", styles=(style,))
    c = sample(12, sizes=(9,), kinds="all", styles=(style,))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.corners == b.corners and a.rules_answer == b.rules_answer
    assert a.image.tobytes() != c.image.tobytes()


@pytest.mark.parametrize("size", [4, 6, 9, 16])
@pytest.mark.parametrize("style", STYLES)
def test_every_size_and_style(size: int, style: str) -> None:
    item = sample(size * 7 + len(style), sizes=(size,), kinds="all", styles=(style,))
    assert item.puzzle.size == size and item.style == style
    assert item.image.mode == "RGB"
    assert 320 <= max(item.image.size) <= 1280
    assert _inside(item), item.corners


@pytest.mark.parametrize("kind", GENERATED_KINDS)
def test_every_variant_renders(kind: str) -> None:
    puzzle = _puzzle_with(kind)
    for k, style in enumerate(STYLES):
        item = render(puzzle, random.Random(k), style=style)
        assert _inside(item)
        if must_explain(puzzle):  # a rule with no mark in the grid must be written next to it
            assert item.details["rules_text"], (kind, style)


def test_jigsaw_and_16x16_letters() -> None:
    for seed in range(40):
        puzzle, _ = sample_puzzle(random.Random(seed), sizes=(16,), kinds=("classic",))
        if puzzle.box is None:
            break
    else:
        pytest.fail("no jigsaw 16x16 in 40 seeds")
    item = render(puzzle, random.Random(1), style="app")
    assert '"regions"' in item.rules_answer
    assert set(item.digits_answer) <= set("123456789ABCDEFG.\n")


def test_labels_round_trip() -> None:
    for seed in range(30):
        puzzle, solution = sample_puzzle(random.Random(seed), kinds=("classic", *GENERATED_KINDS))
        back = loads_rules(rules_answer(puzzle))
        assert back.size == puzzle.size and back.regions == puzzle.regions and back.box == puzzle.box
        assert back.constraints == puzzle.constraints  # sampled puzzles are already in canonical order
        assert parse_digits_answer(digits_answer(puzzle), puzzle.size) == puzzle.givens
        assert len(digits_answer(puzzle).split("\n")) == puzzle.size


def test_rules_answer_does_not_depend_on_rule_order() -> None:
    puzzle = _puzzle_with("killer")
    shuffled = list(puzzle.constraints)
    random.Random(3).shuffle(shuffled)
    assert rules_answer(puzzle.with_constraints(shuffled)) == rules_answer(puzzle) == dumps_rules(canonical(puzzle))


def test_undrawable_rule_is_an_error() -> None:
    puzzle = Puzzle.create(9, constraints=[Quadruple(((0, 0), (0, 1), (1, 0), (1, 1)), (1, 2))])
    with pytest.raises(UnsupportedMarking, match="quadruple"):
        render(puzzle, random.Random(0))


def test_builtin_font_fallback() -> None:
    fonts = FontSet([Font(BUILTIN, PRINTED, "Pillow built-in", None)])
    assert fonts.builtin_only
    puzzle = _puzzle_with("killer", size=6)
    for style in STYLES:
        item = render(puzzle, random.Random(2), style=style, fonts=fonts)
        assert item.font == BUILTIN and _inside(item)


def test_kinds_of_names_jigsaw() -> None:
    puzzle = _puzzle_with("thermo")
    assert "thermo" in kinds_of(puzzle)


def test_cli_writes_images_and_labels(tmp_path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["--out", str(out), "--count", "5", "--seed", "4", "--sizes", "4,9",
                                      "--kinds", "classic,killer,antiknight", "--workers", "1"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and len(list(out.glob("*.jpg"))) == 5
    for rec in lines:
        assert (out / rec["file"]).exists()
        assert rec["size"] in (4, 9) and rec["style"] in STYLES
        assert loads_rules(rec["rules"]).size == rec["size"]
        assert len(rec["corners"]) == 4
    again = sample(lines[0]["seed"], sizes=(4, 9), kinds=("classic", "killer", "antiknight"))
    assert again.rules_answer == lines[0]["rules"] and again.digits_answer == lines[0]["digits"]


def test_cli_rejects_bad_options(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "--kinds", "sudokuX"])
    assert result.exit_code == 2 and "unknown puzzle kind" in result.output
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "--sizes", "5"])
    assert result.exit_code == 2


def test_open_four_is_open_at_the_top() -> None:
    # The stroke 4 of DIN-like faces: ink along the cross bar and down the stem, paper between the top of the
    # left stroke and the top of the stem, where a font's closed 4 has its diagonal.
    import numpy as np
    from PIL import Image, ImageDraw

    from vlm_sudoku.tools.render.draw import OpenFour
    from vlm_sudoku.tools.render.fonts import discover

    font = discover().pick(random.Random(0)).get(120)
    left, top, right, bottom = font.getbbox("4")
    w, h = right - left, bottom - top
    img = Image.new("L", (200, 200), 255)
    OpenFour(apex=0.1, bar=0.7, stem=0.7, stem_top=0.4, stroke=0.1).draw(ImageDraw.Draw(img), 100, 100, font, 0)
    ink = np.asarray(img) < 128
    x0, y0 = 100 - w / 2, 100 - h / 2
    assert ink[int(y0 + 0.7 * h), int(x0 + 0.1 * w):int(x0 + 0.9 * w)].all()  # the bar
    assert ink[int(y0 + 0.5 * h):int(y0 + 0.95 * h), int(x0 + 0.7 * w)].all()  # the stem
    assert not ink[int(y0 + 0.02 * h):int(y0 + 0.25 * h), int(x0 + 0.35 * w):int(x0 + 0.95 * w)].any()  # open
    # the font's own 4 in the same box is closed there: its diagonal crosses that region
    closed = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(closed).text((100, 100), "4", font=font, fill=0, anchor="mm")
    assert (np.asarray(closed) < 128)[int(y0):int(y0 + 0.5 * h), int(x0 + 0.2 * w):int(x0 + 0.8 * w)].any()


def test_open_fours_are_drawn_for_a_share_of_sans_grids() -> None:
    from vlm_sudoku.tools.render.fonts import discover
    from vlm_sudoku.tools.render.scene import grid_look

    fonts = discover()
    puzzle = sample_puzzle(random.Random(0), sizes=(9,))[0]
    looks = [grid_look(random.Random(i), fonts, puzzle, paper=(255, 255, 255), ink=(0, 0, 0), given=(0, 0, 0),
                       handwriting=0.1, thin=(0.02, 0.04)) for i in range(400)]
    opened = [look for look in looks if look.open_four is not None]
    assert 0.1 < len(opened) / len(looks) < 0.3
    assert all(look.digit_font.kind == PRINTED and not look.digit_font.is_serif_like() for look in opened)


@pytest.mark.parametrize("kind", ["killer", "thermo", "kropki", "kropki_negative", "little_killer", "odd_even"])
def test_fewer_clues_keeps_one_or_two_of_each_marking_and_the_rules_that_speak_for_all(kind: str) -> None:
    """The one-rule curriculum's puzzles: each marking cut to 1-2 clues, the global rules, the "all dots are
    given" rules and their dots whole, the givens as they were; the cut puzzle still renders and reads back."""
    from collections import Counter

    from vlm_sudoku.tools.render.puzzles import fewer_clues

    puzzle = _puzzle_with(kind)
    rng = random.Random(4)
    cut = fewer_clues(puzzle, rng)
    before, after = Counter(c.rule for c in puzzle.constraints), Counter(c.rule for c in cut.constraints)
    assert set(after) == set(before) and cut.givens == puzzle.givens and cut.regions == puzzle.regions
    for rule, n in before.items():
        whole = rule.endswith("_negative") or f"{rule}_negative" in before or n == 1
        assert after[rule] == n if whole else 1 <= after[rule] <= 2, (rule, n, after[rule])
    assert set(cut.constraints) <= set(puzzle.constraints) and cut == canonical(cut)
    if kind in ("kropki_negative", "odd_even"):  # odd/even: one rule over many cells, so nothing to cut
        assert after == before
    else:
        assert sum(after.values()) < sum(before.values())
    drawn = render(cut, random.Random(0), style="app")
    assert loads_rules(rules_answer(cut)) == cut.with_givens([[0] * cut.size] * cut.size)
    assert drawn.image.size[0] > 0


def test_a_weighted_kind_is_drawn_more_often_and_a_bad_weight_is_refused() -> None:
    """parse_kinds("all,disjoint*3"): disjoint groups stand three times in the pool, so puzzles with them are drawn
    about three times as often (never the rule twice on one puzzle); a plain pool is the kinds once each."""
    import collections

    from vlm_sudoku.solver.errors import PuzzleFormatError
    from vlm_sudoku.tools.render.puzzles import CLASSIC, VARIANT_KINDS, parse_kinds

    assert parse_kinds("all") == (CLASSIC, *VARIANT_KINDS)
    pool = parse_kinds("all,disjoint*3")
    assert pool == (CLASSIC, *VARIANT_KINDS, "disjoint", "disjoint")
    drawn = collections.Counter()
    for seed in range(600):
        rules = [c.rule for c in sample_puzzle(random.Random(seed), sizes=(9,), kinds=pool)[0].constraints]
        assert rules.count("disjoint") <= 1
        drawn.update(set(rules))
    plain = collections.Counter()
    for seed in range(600):
        plain.update({c.rule for c in sample_puzzle(random.Random(seed), sizes=(9,), kinds=parse_kinds("all"))[0].constraints})
    assert drawn["disjoint"] > 2 * plain["disjoint"]
    for bad in ("disjoint*1", "classic*2", "disjoint*x", "teleport*2"):
        with pytest.raises(PuzzleFormatError):
            parse_kinds(bad)
