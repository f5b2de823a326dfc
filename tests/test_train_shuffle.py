"""Training photos with their grid's bands and stacks reordered: the cells move whole, and the givens with them."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vlm_sudoku.runtime.grid_view import UNIT_SQUARE, GridView, apply_perspective, perspective_coefficients
from vlm_sudoku.tools.train.shuffle import line_centres, shuffled_photo

from .paths import PHOTOS

CORNERS = ((112.0, 70.0), (520.0, 95.0), (505.0, 455.0), (95.0, 430.0))


def _photo_of_cells() -> Image.Image:
    """A 9x9 grid seen in perspective whose cell (r, c) is filled with grey 20 + 2 (9 r + c), thick box lines."""
    img = Image.new("L", (640, 520), 235)
    d = ImageDraw.Draw(img)
    coeffs = perspective_coefficients(UNIT_SQUARE, CORNERS)  # unit square -> photo

    def at(u: float, v: float) -> tuple[float, float]:
        x, y = apply_perspective(coeffs, np.array([u]), np.array([v]))
        return float(x[0]), float(y[0])

    for r in range(9):
        for c in range(9):
            d.polygon([at(c / 9, r / 9), at((c + 1) / 9, r / 9), at((c + 1) / 9, (r + 1) / 9), at(c / 9, (r + 1) / 9)],
                      fill=20 + 2 * (9 * r + c))
    for k in range(10):
        width = 5 if k % 3 == 0 else 1
        d.line([at(k / 9, 0), at(k / 9, 1)], fill=0, width=width)
        d.line([at(0, k / 9), at(1, k / 9)], fill=0, width=width)
    return img.convert("RGB")


def test_cells_move_whole_and_the_givens_follow() -> None:
    picture = _photo_of_cells()
    givens = [[9 * r + c for c in range(9)] for r in range(9)]
    changed = 0
    for seed in range(4):
        out, moved = shuffled_photo(picture, CORNERS, givens, (3, 3), random.Random(seed))
        assert sorted(v for row in moved for v in row) == list(range(81))
        for k in range(9):  # each band keeps its rows in order, each stack its columns
            assert moved[k][0] // 9 % 3 == k % 3 and moved[0][k] % 9 % 3 == k % 3
        view = np.asarray(GridView(450, 45).warp(out, CORNERS).convert("L"), dtype=float)
        centre = 45 + (np.arange(9) + 0.5) * 360 / 9
        for r in range(9):
            for c in range(9):
                y, x = int(centre[r]), int(centre[c])
                assert abs(view[y - 3:y + 4, x - 3:x + 4].mean() - (20 + 2 * moved[r][c])) < 3, (seed, r, c)
        changed += moved != givens
        outside = np.asarray(out)[:40, :], np.asarray(picture)[:40, :]  # the picture around the grid is untouched
        assert np.array_equal(*outside)
    assert changed >= 3


def test_line_centres_find_the_darkest_rows_near_where_they_should_be() -> None:
    profile = np.full(400, 200.0)
    for pos in (52, 148, 247, 349):
        profile[pos] = 10
    assert line_centres(profile, 50, 350, 3, 6) == [52, 148, 247, 349]


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos_train is not checked out")
def test_training_photos_are_shuffled_at_the_asked_rate(tiny_qwen2_vl_dir, tmp_path) -> None:
    import json
    import shutil

    from vlm_sudoku.runtime.answers import parse_digits_answer
    from vlm_sudoku.runtime.grid_view import CONFIG_KEY
    from vlm_sudoku.tools.train.data import Mix, SampleMaker

    folder = tmp_path / "model"
    shutil.copytree(tiny_qwen2_vl_dir, folder)
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**pre, CONFIG_KEY: {"size": 224, "margin": 20}}))
    digits_only = (1, 0, 0, 0, 0)
    plain = SampleMaker(folder, seed=2, mix=Mix(photo_rate=1.0, questions=digits_only, photo_questions=digits_only),
                        photos_dir=PHOTOS)
    shuffled = SampleMaker(folder, seed=2, mix=Mix(photo_rate=1.0, photo_shuffle=1.0, questions=digits_only,
                                                   photo_questions=digits_only), photos_dir=PHOTOS)
    differ = 0
    for i in range(4):
        a, b = plain(i), shuffled(i)
        assert a.source == b.source == "photo" and a.question == b.question == "digits"
        grids = [parse_digits_answer(shuffled.tok.decode([t for t in s.labels if t >= 0][:-1]), 9) for s in (a, b)]
        assert sorted(v for row in grids[0] for v in row) == sorted(v for row in grids[1] for v in row)
        differ += grids[0] != grids[1]
    assert differ >= 3
