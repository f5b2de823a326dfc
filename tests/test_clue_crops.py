"""Clue crops (runtime/clue_crops.py): where a printed clue number is cut from the picture, how the marks map's
numbers are found and replaced, the training's clue drill, and the pipeline's questions."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlm_sudoku.runtime.clue_crops import CONFIG_KEY, Clue, ClueCrops, clue_answer, clues_of, with_numbers
from vlm_sudoku.runtime.engine import Generation
from vlm_sudoku.runtime.grid_view import Viewed
from vlm_sudoku.runtime.marks_map import map_text, read_map
from vlm_sudoku.runtime.model_config import ModelFolderError
from vlm_sudoku.solver.constraints.sums import Killer, LittleKiller, Sandwich
from vlm_sudoku.solver.puzzle import Puzzle
from vlm_sudoku.tools.render.puzzles import sample_puzzle

from .model_helpers import default_model_declaring

CELL = 60


def _colour(r: int, c: int) -> tuple[int, int, int]:
    return (20 + 20 * (r + 1), 20 + 20 * (c + 1), 200)


def _painted_grid(n: int = 9) -> Image.Image:
    """A picture whose every cell of an n x n grid, and of the ring of places around it, is one flat colour of
    its own; the grid's top-left corner at (CELL * 2, CELL * 2)."""
    side = (n + 4) * CELL
    pixels = np.zeros((side, side, 3), dtype=np.uint8)
    for r in range(-1, n + 1):
        for c in range(-1, n + 1):
            y, x = (r + 2) * CELL, (c + 2) * CELL
            pixels[y:y + CELL, x:x + CELL] = _colour(r, c)
    return Image.fromarray(pixels)


def _corners(n: int = 9) -> list[tuple[float, float]]:
    lo, hi = 2.0 * CELL, (n + 2.0) * CELL
    return [(lo, lo), (hi, lo), (hi, hi), (lo, hi)]


def _pixel_at(image: Image.Image, x: float, y: float) -> tuple[int, ...]:
    return image.getpixel((int(x * image.width), int(y * image.height)))


def test_a_cage_sum_is_cut_from_its_cells_top_left_corner_and_an_outside_clue_from_its_ring_place() -> None:
    crops = ClueCrops(size=84)
    picture = _painted_grid()
    cage = crops.crop(picture, _corners(), 9, Clue("killer", 3, 5, 17))
    assert cage.size == (84, 84) and ClueCrops().crop(picture, _corners(), 9, Clue("killer", 3, 5, 17)).size == (168, 168)
    assert _pixel_at(cage, 0.4, 0.4) == _colour(3, 5)  # the cell's top-left part fills most of the crop ...
    assert _pixel_at(cage, 0.05, 0.05) == _colour(2, 4)  # ... with a sliver of the cells before it
    assert _pixel_at(cage, 0.95, 0.95) == _colour(3, 5)
    above = crops.crop(picture, _corners(), 9, Clue("outside", 0, 4, 12))  # the map's row 0 is the ring above
    assert _pixel_at(above, 0.5, 0.5) == _colour(-1, 3)
    right = crops.crop(picture, _corners(), 9, Clue("outside", 6, 10, 3))  # place 10 is the ring's right side
    assert _pixel_at(right, 0.5, 0.5) == _colour(5, 9)


def test_the_crop_follows_the_grid_through_a_turned_picture() -> None:
    """The picture turned a quarter round (the grid's top-left corner now at the bottom-left): the crop is
    the same place of the grid, turned upright."""
    crops = ClueCrops(size=84)
    picture = _painted_grid()
    side = picture.width
    turned = picture.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: (x, y) -> (y, side - x)
    corners = [(y, side - x) for x, y in _corners()]
    for clue in (Clue("killer", 7, 1, 9), Clue("outside", 10, 5, 20)):
        upright, seen = crops.crop(picture, _corners(), 9, clue), crops.crop(turned, corners, 9, clue)
        assert _pixel_at(seen, 0.5, 0.5) == _pixel_at(upright, 0.5, 0.5)
        assert _pixel_at(seen, 0.9, 0.9) == _pixel_at(upright, 0.9, 0.9)


def _killer_and_outside_puzzle() -> Puzzle:
    for seed in range(50):
        puzzle = sample_puzzle(random.Random(seed), kinds=("killer", "sandwich", "little_killer"), sizes=(9,))[0]
        rules = {c.rule for c in puzzle.constraints}
        if {"killer", "sandwich"} <= rules and map_text(puzzle, "killer") and map_text(puzzle, "outside"):
            return puzzle
    raise AssertionError("no generated puzzle with cages and sandwich clues")


def test_the_clues_of_a_map_are_its_printed_numbers_and_read_back_replaced() -> None:
    puzzle = _killer_and_outside_puzzle()
    cages = [c for c in puzzle.constraints if isinstance(c, Killer) and c.total is not None]
    killer = map_text(puzzle, "killer")
    found = clues_of(killer, "killer")
    assert sorted((c.row, c.col, c.number) for c in found) == sorted((*min(k.cage), k.total) for k in cages)
    outside = map_text(puzzle, "outside")
    ring = [c for c in puzzle.constraints if isinstance(c, (Sandwich, LittleKiller))]
    single = {con.clue for con in ring if sum(other.clue == con.clue for other in ring) == 1}
    assert sorted(c.cell for c in clues_of(outside, "outside")) == sorted(single)

    first = found[0]
    changed = with_numbers(killer, "killer", {(first.row, first.col): first.number + 1})
    totals = {min(k.cage): k.total for k in read_map(changed, "killer", 9)}
    assert totals[(first.row, first.col)] == first.number + 1
    assert sum(a != b for a, b in zip(killer, changed)) >= 1 and len(clues_of(changed, "killer")) == len(found)
    with pytest.raises(ValueError, match="no number"):
        with_numbers(killer, "killer", {(first.row, first.col + 20): 3})
    assert clues_of("DR12+UL7", "outside") == [] and clues_of("1.2\n...", "regions") == []


@pytest.mark.parametrize("text, number", [("17", 17), (" 8\n", 8), ("0", 0), ("S17", None), ("1 7", None), ("", None)])
def test_a_clue_answer_is_a_number_or_nothing(text: str, number: int | None) -> None:
    assert clue_answer(text) == number


def test_a_model_declares_its_crops_in_its_preprocessor_config() -> None:
    assert ClueCrops.from_preprocessor_config({}) is None
    assert ClueCrops.from_preprocessor_config({CONFIG_KEY: {"size": 112}}) == ClueCrops(112)
    for bad in ({"size": "big"}, {"size": 8}, [84]):
        with pytest.raises(ModelFolderError, match=CONFIG_KEY):
            ClueCrops.from_preprocessor_config({CONFIG_KEY: bad})


def _declaring_crops(tmp_path: Path) -> Path:
    """A copy of the default model's export that declares clue crops (whether or not it was trained on them)."""
    return default_model_declaring(tmp_path, {CONFIG_KEY: ClueCrops().to_dict()})


def test_the_training_drill_asks_one_printed_number_of_a_crop_cut_as_the_runtime_cuts_it(tmp_path: Path) -> None:
    from vlm_sudoku.tools.train.data import CLUE, Mix, SampleMaker, _clues, _mapped_layers

    folder = _declaring_crops(tmp_path) / "hf"
    maker = SampleMaker(folder, seed=5, mix=Mix(photo_rate=0.0, kinds="killer,sandwich,little_killer", sizes=(9,),
                                                 per_picture=4, clue=5.0), photos_dir=None)
    asked = []
    for index in range(24):
        sample = maker(index)
        if sample.question != CLUE:
            continue
        picture = maker._cached_picture(index // 4, 0)
        answer = maker.tok.decode([t for t in sample.labels if t >= 0 and t != maker.tok.specials.im_end])
        assert int(answer) in {clue.number for clue in _clues(picture.puzzle, _mapped_layers(picture.puzzle))}
        assert sample.grid_thw.tolist() == [[1, 12, 12]]  # 168 px: 36 image tokens, each labelled (glyph_labels)
        assert sample.input_ids.count(maker.tok.specials.image_pad) == 36 and sample.token_labels.shape[0] == 36
        asked.append(answer)
    assert len(asked) >= 4
    plain = SampleMaker(folder, seed=5, mix=Mix(photo_rate=0.0, kinds="killer", sizes=(9,)), photos_dir=None)
    assert all(plain(i).question != CLUE for i in range(12))  # (no weight, no drill)


def test_clue_drill_pictures_ask_every_sample_for_a_printed_number_even_where_the_mix_draws_classic(
        tmp_path: Path) -> None:
    """Mix.clue_pictures: a share of pictures are puzzles with clue numbers whose every sample is a crop (the
    mix's kinds, classic here, draw the others); the crops' answers are numbers their puzzle prints."""
    from vlm_sudoku.tools.train.data import CLUE, Mix, SampleMaker, _clues, _mapped_layers

    folder = _declaring_crops(tmp_path) / "hf"
    maker = SampleMaker(folder, seed=3, mix=Mix(photo_rate=0.0, kinds="classic", sizes=(9,), per_picture=2, clue=1.0,
                                                 clue_pictures=0.5), photos_dir=None)
    asked = {}
    for index in range(16):
        sample = maker(index)
        asked.setdefault(index // 2, []).append(sample.question)
        if sample.question == CLUE:
            picture = maker._cached_picture(index // 2, 0)
            answer = maker.tok.decode([t for t in sample.labels if t >= 0 and t != maker.tok.specials.im_end])
            assert int(answer) in {clue.number for clue in _clues(picture.puzzle, _mapped_layers(picture.puzzle))}
    drills = [q for q in asked.values() if CLUE in q]
    assert drills and all(q == [CLUE, CLUE] for q in drills)  # a drill picture asks nothing else
    assert len(drills) < len(asked)  # and the others are the mix's classic pictures, never asked for a crop


def test_a_reading_takes_the_numbers_its_clue_crops_read_over_the_maps() -> None:
    from vlm_sudoku.runtime.pipeline import Reading

    def said(text: str) -> Generation:
        return Generation(tokens=[], text=text, prompt_tokens=0, prefill_s=0.0, decode_s=0.0, stopped=True)

    killer = "H11K\nK.V7\n..K.\n...."
    reading = Reading(encoded=[], prefix_tokens=0, prefix_s=0.0, answers={"map:killer": said(killer)},
                      clues={"killer": {(0, 0): "13", (1, 2): "seven"}})
    assert reading.maps() == {"killer": "H13K\nK.V7\n..K.\n...."}  # an answer that is no number keeps the map's
    assert reading.texts()["clue:killer:0,0"] == "13"


def test_the_pipeline_asks_a_crop_of_every_printed_number_of_a_map_that_reads(tmp_path: Path) -> None:
    from vlm_sudoku.runtime.pipeline import Pipeline, Reading

    puzzle = _killer_and_outside_puzzle()
    pipeline = Pipeline.load(_declaring_crops(tmp_path), provider="cpu", views=1)
    assert pipeline.clue_crops == ClueCrops()
    picture = _painted_grid()
    maps = {"killer": map_text(puzzle, "killer"), "outside": map_text(puzzle, "outside")}
    broken = "H11K\nK.V7"  # a map that does not read is not asked about
    answers = {f"map:{layer}": Generation([], text, 0, 0.0, 0.0, True) for layer, text in maps.items()}
    answers["map:thermo"] = Generation([], broken, 0, 0.0, 0.0, True)
    reading = Reading([], answers, 0, 0.0, Viewed(picture, tuple(_corners()), 0.0))  # type: ignore[arg-type]
    pipeline.read_clues(picture, reading)
    for layer, text in maps.items():
        assert set(reading.clues[layer]) == {(c.row, c.col) for c in clues_of(text, layer)}
    assert reading.clues_s > 0
    no_grid = Reading([], answers, 0, 0.0, Viewed(picture, None, 0.0))
    pipeline.read_clues(picture, no_grid)
    assert no_grid.clues == {}


def test_onnx_and_pytorch_read_a_clue_crop_alike(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from vlm_sudoku.export.torch_backend import TorchPipeline
    from vlm_sudoku.runtime.pipeline import Pipeline

    folder = _declaring_crops(tmp_path)
    crop = ClueCrops().crop(_painted_grid(), _corners(), 9, Clue("killer", 2, 2, 5))
    onnx = Pipeline.load(folder, provider="cpu", views=1).crop_text(crop, "clue")
    assert onnx == TorchPipeline(folder / "hf", device="cpu").crop_text(crop, "clue")


def test_eval_reader_scores_each_crop_and_the_map_it_corrects() -> None:
    from vlm_sudoku.runtime.pipeline import Reading
    from vlm_sudoku.tools.eval_reader import Score, score_clues
    from vlm_sudoku.tools.render import rules_answer

    puzzle = _killer_and_outside_puzzle()
    killer = map_text(puzzle, "killer")
    found = clues_of(killer, "killer")
    wrong = with_numbers(killer, "killer", {(c.row, c.col): c.number + 1 for c in found[:2]})  # the map misreads two
    answers = {"rules": rules_answer(puzzle), "map:killer": wrong, "map:outside": map_text(puzzle, "outside")}
    crops = {(c.row, c.col): str(c.number) for c in found}  # the crops read every number right ...
    crops[(found[-1].row, found[-1].col)] = "x"  # ... but one, which is no number (the map's stands)
    reading = Reading([], {q: Generation([], t, 0, 0.0, 0.0, True) for q, t in answers.items()}, 0, 0.0,
                      clues={"killer": crops})
    score = Score()
    score_clues(reading, puzzle, score)
    assert (score.clues, score.clues_right, score.clues_map_right) == (len(found), len(found) - 1, len(found) - 2)
    assert (score.clue_readings, score.clue_readings_exact, score.clue_readings_exact_without) == (1, 1, 0)


def test_the_renderer_says_where_each_digit_of_a_clue_number_is_drawn() -> None:
    """draw_puzzle records each character of a cage sum, sandwich or little-killer total with its ink box in the
    grid's unit square: the characters make the number, and the box lies in the cell (or ring place) of the clue."""
    from vlm_sudoku.tools.render import render

    puzzle = _killer_and_outside_puzzle()
    drawn = render(puzzle, random.Random(4), style="app")
    glyphs = drawn.details["clue_glyphs"]
    by_cell: dict = {}
    for cell, ch, (x0, y0, x1, y1) in glyphs:
        by_cell[tuple(cell)] = by_cell.get(tuple(cell), "") + ch
        r, c = cell
        assert c / 9 - 0.01 <= x0 < x1 <= (c + 1) / 9 + 0.01 and r / 9 - 0.01 <= y0 < y1 <= (r + 1) / 9 + 0.01
    numbers = {min(k.cage): str(k.total) for k in puzzle.constraints if isinstance(k, Killer) and k.total is not None}
    numbers.update({con.clue: str(con.total) for con in puzzle.constraints if isinstance(con, Sandwich)})
    assert by_cell == numbers


def test_a_clue_crops_tokens_are_labelled_with_the_digit_drawn_under_them(tmp_path: Path) -> None:
    """The read-out labels of a clue sample (tools/train/data.py glyph_labels): the digits under its tokens are
    the number's, read left to right, and every other token says no digit; the other label columns are unused."""
    from vlm_sudoku.tools.train.data import CLUE, IGNORE, Mix, SampleMaker

    maker = SampleMaker(_declaring_crops(tmp_path) / "hf", seed=5,
                        mix=Mix(photo_rate=0.0, kinds="sandwich", sizes=(9,), per_picture=4, clue=5.0), photos_dir=None)
    checked = 0
    for index in range(40):
        sample = maker(index)
        if sample.question != CLUE:
            continue
        answer = maker.tok.decode([t for t in sample.labels if t >= 0 and t != maker.tok.specials.im_end])
        side = ClueCrops().size // 28
        assert sample.token_labels.shape[0] == side * side and (sample.token_labels[:, :-1] == IGNORE).all()
        grid = sample.token_labels[:, -1].reshape(side, side)
        assert {int(v) - 1 for v in grid.ravel() if v > 0} == {int(ch) for ch in answer}, (grid, answer)
        if len(set(answer)) == 2:  # two different digits: the first one's tokens lie left of the second's
            first, second = (np.argwhere(grid == 1 + int(ch))[:, 1] for ch in answer)
            assert first.min() < second.min()
        checked += 1
    assert checked >= 3
