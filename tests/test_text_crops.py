"""Text crops (runtime/text_crops.py): where the lines of words around a grid are found and how they are cut,
what their answers say, how they set the words-only rules, the training's text drill and the pipeline's
questions."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vlm_sudoku.runtime.engine import Generation
from vlm_sudoku.runtime.grid_view import Viewed
from vlm_sudoku.runtime.model_config import ModelFolderError
from vlm_sudoku.runtime.rules_check import WORDS_ONLY
from vlm_sudoku.runtime.text_crops import (CONFIG_KEY, TextCrops, find_lines, stated_in, text_answer,
                                           text_answer_text, with_stated)

from .model_helpers import default_model_declaring

SIDE = 360  # the grid's side in the drawn page, in pixels
ORIGIN = (200, 240)  # its top-left corner
LINES = ("Anti-Knight Sudoku", "Normal sudoku rules apply.", "Cells a chess knight's move apart cannot",
         "contain the same digit.")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # (Pillow < 10.1 has one size)
        return ImageFont.load_default()


def _page() -> tuple[Image.Image, list[tuple[float, float]], list[tuple[float, float, float, float]]]:
    """A drawn page: a 9x9 grid, a block of rule text below it and a column of smaller words to its right. Its
    corners, and where each rule line's words are in the grid's unit square."""
    image = Image.new("RGB", (ORIGIN[0] + SIDE + 300, ORIGIN[1] + SIDE + 320), (245, 243, 236))
    draw = ImageDraw.Draw(image)
    x0, y0 = ORIGIN
    for k in range(10):
        w = 4 if k % 3 == 0 else 1
        draw.line([(x0 + k * SIDE / 9, y0), (x0 + k * SIDE / 9, y0 + SIDE)], fill=(20, 20, 20), width=w)
        draw.line([(x0, y0 + k * SIDE / 9), (x0 + SIDE, y0 + k * SIDE / 9)], fill=(20, 20, 20), width=w)
    boxes = []
    y = y0 + SIDE + 24
    for k, line in enumerate(LINES):
        font = _font(26 if k == 0 else 20)
        draw.text((x0, y), line, font=font, fill=(25, 25, 25))
        a, b, c, d = draw.textbbox((x0, y), line, font=font)
        boxes.append(((a - x0) / SIDE, (b - y0) / SIDE, (c - x0) / SIDE, (d - y0) / SIDE))
        y += 34 if k == 0 else 28
    small = _font(11)
    for k in range(14):  # a newspaper column: smaller words, further from the grid
        draw.text((x0 + SIDE + 60, y0 + 10 + 16 * k), "the council said on sunday", font=small, fill=(40, 40, 40))
    corners = [(x0, y0), (x0 + SIDE, y0), (x0 + SIDE, y0 + SIDE), (x0, y0 + SIDE)]
    return image, [(float(x), float(y)) for x, y in corners], boxes


def _matches(found: tuple[float, float, float, float], drawn: tuple[float, float, float, float]) -> bool:
    """The found box holds the drawn one's middle height and most of its length."""
    overlap = min(found[2], drawn[2]) - max(found[0], drawn[0])
    return found[1] <= (drawn[1] + drawn[3]) / 2 <= found[3] and overlap >= 0.8 * (drawn[2] - drawn[0])


def test_the_rule_lines_under_a_grid_are_found_one_each_before_a_column_of_smaller_words() -> None:
    image, corners, boxes = _page()
    lines = find_lines(image, corners)
    for k, drawn in enumerate(boxes):
        assert _matches(lines[k].box, drawn), (k, lines[k], drawn)  # the rule text first, in reading order
    assert len(lines) > len(boxes)  # the column's lines too, after them
    assert all(ln.box[0] > 1.0 for ln in lines[len(boxes):])
    assert not any(0 < ln.box[0] < 1 and 0 < ln.box[1] < 1 for ln in lines)  # nothing inside the grid


def test_the_lines_are_found_and_cut_level_in_a_picture_turned_and_seen_at_a_slant() -> None:
    image, corners, boxes = _page()
    w, h = image.size
    # the page seen at a slant: the output's corners come from these points of the page
    src = [(40.0, 10.0), (w - 10.0, 60.0), (w - 60.0, h - 20.0), (0.0, h - 40.0)]
    from vlm_sudoku.runtime.grid_view import apply_perspective, perspective_coefficients

    out = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    coeffs = perspective_coefficients(out, src)  # output -> page
    slanted = image.transform((w, h), Image.PERSPECTIVE, coeffs, resample=Image.BICUBIC, fillcolor=(90, 70, 50))
    back = perspective_coefficients(src, out)  # page -> output
    xs, ys = apply_perspective(back, np.array([p[0] for p in corners]), np.array([p[1] for p in corners]))
    seen = [(float(x), float(y)) for x, y in zip(xs, ys)]
    lines = find_lines(slanted, seen)
    for drawn in boxes:
        assert any(_matches(ln.box, drawn) for ln in lines[:len(boxes) + 1]), drawn
    crops = TextCrops()
    crop = crops.crop(slanted, seen, lines[0])
    assert crop.height == crops.height and crop.width % 28 == 0 and crop.width <= crops.max_width
    dark = (np.asarray(crop.convert("L")) < 100).mean(axis=1)
    third = crops.height // 3
    assert dark[third:-third].mean() > 4 * max(dark[:4].mean(), dark[-4:].mean())  # the words in the middle, level


def test_a_crop_is_as_long_as_its_line_up_to_the_widest_and_a_picture_without_words_has_no_lines() -> None:
    image, corners, _ = _page()
    line = find_lines(image, corners)[0]
    long = TextCrops(height=56, max_width=112).crop(image, corners, line)
    assert long.size == (112, 56)
    blank = Image.new("RGB", image.size, (245, 243, 236))
    ImageDraw.Draw(blank).rectangle([ORIGIN, (ORIGIN[0] + SIDE, ORIGIN[1] + SIDE)], outline=(0, 0, 0), width=3)
    assert find_lines(blank, corners) == []


def test_a_model_declares_its_text_crops_in_its_preprocessor_config() -> None:
    assert TextCrops.from_preprocessor_config({}) is None
    spec = {"height": 56, "max_width": 560, "lines": 6}
    assert TextCrops.from_preprocessor_config({CONFIG_KEY: spec}) == TextCrops(56, 560, 6)
    assert TextCrops.from_preprocessor_config({CONFIG_KEY: TextCrops().to_dict()}) == TextCrops()
    for bad in ({"height": 56}, {"height": 8, "max_width": 560, "lines": 6}, {"height": 56, "max_width": 560,
                                                                              "lines": 0}, [56]):
        with pytest.raises(ModelFolderError, match=CONFIG_KEY):
            TextCrops.from_preprocessor_config({CONFIG_KEY: bad})


@pytest.mark.parametrize("text, rules", [("none", ()), (" antiknight ", ("antiknight",)),
                                         ("antiking disjoint", ("antiking", "disjoint")),
                                         ("antiknight antiknight", None), ("knight", None), ("12", None), ("", None)])
def test_a_text_answer_names_words_only_rules_or_none(text: str, rules: tuple[str, ...] | None) -> None:
    assert text_answer(text) == rules
    if rules is not None:
        assert text_answer(text_answer_text(rules)) == tuple(r for r in WORDS_ONLY if r in rules)


def test_the_lines_answers_set_the_words_only_rules_and_leave_the_others() -> None:
    from vlm_sudoku.solver.rules_json import read_rules

    read = read_rules({"size": 9, "rules": [{"type": "antiking"}, {"type": "diagonal+"}]})
    answers = {"rules": "{}", "text:0": "none", "text:1": "antiknight", "text:2": "a cat"}
    assert stated_in(answers) == ("antiknight",)
    assert stated_in({"rules": "{}"}) is None and stated_in({"text:0": "nonsense"}) is None
    changed = with_stated(read, stated_in(answers))
    assert sorted(c.rule for c in changed.constraints) == ["antiknight", "diagonal+"]
    assert with_stated(read, None) is read
    assert with_stated(read, ()) is read  # every line says none: the rules answer's words-only rules stand


def test_disjoint_groups_are_only_stated_on_a_grid_with_boxes() -> None:
    from vlm_sudoku.solver.rules_json import read_rules

    jigsaw = read_rules({"size": 4, "rules": [], "regions": ["1112", "1222", "3334", "3444"]})
    assert jigsaw.box is None
    assert [c.rule for c in with_stated(jigsaw, ("disjoint", "antiking")).constraints] == ["antiking"]


def test_the_pipeline_asks_each_line_nearest_the_grid_and_a_reading_names_their_answers(tmp_path: Path) -> None:
    from vlm_sudoku.runtime.pipeline import Pipeline, Reading

    pipeline = Pipeline.load(default_model_declaring(tmp_path, {CONFIG_KEY: TextCrops(lines=3).to_dict()}),
                             provider="cpu", views=1)
    assert pipeline.text_crops == TextCrops(lines=3)
    image, corners, _ = _page()
    reading = Reading([], {"rules": Generation([], "{}", 0, 0.0, 0.0, True)}, 0, 0.0,
                      Viewed(image, tuple(corners), 0.0))  # type: ignore[arg-type]
    pipeline.read_lines(image, reading)
    assert len(reading.lines) == 3 and reading.lines_s > 0
    assert [k for k in reading.texts() if k.startswith("text:")] == ["text:0", "text:1", "text:2"]
    no_grid = Reading([], {}, 0, 0.0, Viewed(image, None, 0.0))
    pipeline.read_lines(image, no_grid)
    assert no_grid.lines == []
    plain = Pipeline.load(default_model_declaring(tmp_path / "plain", {}), provider="cpu", views=1)
    assert plain.text_crops is None  # (a model that declares none is never asked)


def test_onnx_and_pytorch_read_a_text_crop_alike(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from vlm_sudoku.export.torch_backend import TorchPipeline
    from vlm_sudoku.runtime.pipeline import Pipeline

    folder = default_model_declaring(tmp_path, {CONFIG_KEY: TextCrops().to_dict()})
    image, corners, _ = _page()
    crop = TextCrops().crop(image, corners, find_lines(image, corners)[0])
    onnx = Pipeline.load(folder, provider="cpu", views=1).crop_text(crop, "text")
    assert onnx == TorchPipeline(folder / "hf", device="cpu").crop_text(crop, "text")


def test_a_render_notes_every_word_where_it_is_drawn_and_its_rule_lines_against_its_own_grid() -> None:
    """Book pages with a neighbouring puzzle partly in view: the rule lines are noted in the frame of the picture's
    own grid (the neighbour's grid used to be taken for it), and the words of each are found where noted."""
    from vlm_sudoku.tools.render import render
    from vlm_sudoku.tools.render.puzzles import sample_puzzle
    from vlm_sudoku.tools.render.text import stated
    from vlm_sudoku.tools.train.data import line_rules

    checked = neighbours = 0
    for seed in range(40):
        rng = random.Random(seed)
        puzzle, _ = sample_puzzle(rng, sizes=(9,), kinds=("antiknight",))
        drawn = render(puzzle, rng, style="book")
        neighbours += drawn.details["second_grid"]
        words = drawn.details["texts"]
        assert all(" " not in w for w, _ in words)
        said = [box for w, box in words if stated(w)]
        if not said:
            continue
        checked += 1
        for _groups, box in drawn.details["rule_lines"]:
            assert -1.6 < box[1] and box[3] < 2.0 and -0.6 < box[0] and box[2] < 2.1  # beside its own grid
        found = find_lines(drawn.image, drawn.corners)
        assert "antiknight" in {r for line in found for r in line_rules(line.box, words)}, seed
    assert checked >= 10 and neighbours >= 1


def test_the_text_drill_asks_lines_found_as_the_runtime_finds_them_and_labels_the_words_that_state_a_rule(
        tmp_path: Path) -> None:
    from vlm_sudoku.tools.train.data import (IGNORE, LABEL_COLUMNS, TEXT, TEXT_COLUMNS, TEXT_GROUPS, Mix,
                                             SampleMaker)

    folder = default_model_declaring(tmp_path, {CONFIG_KEY: TextCrops().to_dict()}) / "hf"
    maker = SampleMaker(folder, seed=4, mix=Mix(photo_rate=0.0, kinds="classic", sizes=(9,), per_picture=4,
                                                 text_pictures=0.5), photos_dir=None)
    answers = []
    for index in range(48):
        sample = maker(index)
        if sample.question != TEXT:
            continue
        answer = maker.tok.decode([t for t in sample.labels if t >= 0 and t != maker.tok.specials.im_end])
        said = text_answer(answer)
        assert said is not None
        assert sample.grid_thw[0, 1] * 14 == TextCrops().height
        # the tokens over the words that state a rule are labelled with it (line_token_labels), no others
        tokens = sample.input_ids.count(maker.tok.specials.image_pad)
        assert sample.token_labels.shape == (tokens, LABEL_COLUMNS)
        bits = {rule: sample.token_labels[:, TEXT_COLUMNS.start + TEXT_GROUPS.index(rule)] for rule in WORDS_ONLY}
        assert all(set(np.unique(b)) <= {0, 1} for b in bits.values())
        assert {rule for rule, b in bits.items() if b.any()} == set(said)
        assert (sample.token_labels[:, :TEXT_COLUMNS.start] == IGNORE).all()
        answers.append(answer)
    assert len(answers) >= 8 and any(a != "none" for a in answers) and "none" in answers
    plain = SampleMaker(folder, seed=4, mix=Mix(photo_rate=0.0, kinds="classic", sizes=(9,)), photos_dir=None)
    assert all(plain(i).question != TEXT for i in range(8))  # (no share, no drill)


def test_vlm_solve_reports_the_text_crops_it_asked(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    folder = default_model_declaring(tmp_path, {CONFIG_KEY: TextCrops(lines=2).to_dict()})
    image, _, _ = _page()
    image.save(tmp_path / "page.png")
    proc = subprocess.run([sys.executable, "-m", "vlm_sudoku.runtime.cli", str(tmp_path / "page.png"), "--model",
                           str(folder), "--provider", "cpu", "--views", "1", "-v", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr
    assert "text crops: 2 lines of words read in" in proc.stderr, proc.stderr
    assert "lines" in json.loads(proc.stdout.splitlines()[0])["timings"]


def test_the_model_card_says_a_model_reads_text_crops(tmp_path: Path) -> None:
    from vlm_sudoku.tools.train.model_card import card

    folder = default_model_declaring(tmp_path, {CONFIG_KEY: TextCrops(lines=10).to_dict()}) / "hf"
    assert "text crops (runtime/text_crops.py): declares them (`vlm_sudoku_text_crops`), so the 10 lines" in card(folder)


def test_every_rule_sentence_and_title_states_its_own_words_only_rule_and_no_other() -> None:
    from vlm_sudoku.tools.render import text as T
    from vlm_sudoku.tools.render.puzzles import VARIANT_KINDS, sample_puzzle

    seen = set()
    for i in range(600):
        rng = random.Random(i)
        puzzle, _ = sample_puzzle(rng, sizes=(4, 6, 9, 16), kinds=(VARIANT_KINDS[i % len(VARIANT_KINDS)],))
        for group, sentence in T.rule_sentences(puzzle, rng):
            seen.add(group)
            assert T.stated(sentence) == ((group,) if group in WORDS_ONLY else ()), sentence
    assert set(WORDS_ONLY) <= seen
    for group, names in T.TITLES.items():
        for name in names:
            assert T.stated(f"{name} Sudoku") == ((group,) if group in WORDS_ONLY else ()), name
    assert not any(T.stated(word) for word in T.WORDS)  # the filler never states one
    # a sentence wrapped: only the words that say the rule carry it
    assert T.stating_words("Diagonally touching cells cannot".split()) == [("antiking",), ("antiking",), (), ()]
    assert T.stating_words(["contain", "the", "same", "digit."]) == [(), (), (), ()]


def test_eval_reader_scores_each_line_asked_against_the_words_drawn_in_it(tmp_path: Path) -> None:
    from vlm_sudoku.runtime.pipeline import Pipeline, Reading
    from vlm_sudoku.runtime.text_crops import TextLine
    from vlm_sudoku.tools.eval_reader import Score, evaluate, score_lines, table

    words = [("Cells", (0.0, 1.1, 0.1, 1.15)), ("a", (0.11, 1.1, 0.13, 1.15)), ("knight's", (0.14, 1.1, 0.3, 1.15)),
             ("Normal", (0.0, 1.2, 0.15, 1.25)), ("rules.", (0.16, 1.2, 0.3, 1.25))]
    stating, plain = TextLine((-0.01, 1.09, 0.31, 1.16), 0.09), TextLine((-0.01, 1.19, 0.31, 1.26), 0.19)
    reading = Reading([], {}, 0, 0.0, None, lines=[(stating, "antiknight"), (plain, "antiking"), (plain, "none"),
                                                    (stating, "a knight")])
    score = Score()
    score_lines(reading, words, score)
    assert (score.text_lines, score.text_lines_right, score.stating_lines, score.stating_lines_right) == (4, 2, 2, 1)
    assert score.row("x")["text_crops"] == {"lines": 4, "right": 2, "stating": 2, "stating_right": 1}
    assert Score().row("x")["text_crops"] is None  # (a model without text crops: no tally)

    pipeline = Pipeline.load(default_model_declaring(tmp_path, {CONFIG_KEY: TextCrops(lines=2).to_dict()}),
                             provider="cpu", views=1)
    rows = evaluate(pipeline, ["rendered-few-clues"], 2, progress=False)
    tally = rows[0]["text_crops"]
    assert tally is not None and tally["lines"] >= 2 and tally["lines"] <= 4
    assert "rendered-few-clues: text crops:" in table(rows)
