"""locate_grid on real pictures: rendered puzzles with known corners, newspaper photos, and no grid at all."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from vlm_sudoku.runtime import grid_locate
from vlm_sudoku.runtime.grid_locate import locate_grid
from vlm_sudoku.tools.render import sample

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos_train"
TOLERANCE = 0.03  # of the grid's side: the renders' corners are exact, the fit is good to ~0.5%
PHOTO_TOLERANCE = 0.04  # the photo outlines are clicked by hand, a little outside the border line


def _error(found, truth) -> float:
    """Largest corner distance over the mean side length of the true grid."""
    assert found is not None, "no grid found"
    t = np.asarray(truth, dtype=float)
    side = float(np.mean(np.hypot(*(np.roll(t, -1, axis=0) - t).T)))
    return float(np.max(np.hypot(*(np.asarray(found, dtype=float) - t).T))) / side


@pytest.mark.parametrize(
    ("seed", "style", "kinds"),
    [
        (0, "newspaper", "classic"), (5, "newspaper", "all"), (2, "newspaper", "all"),
        (0, "book", "classic"), (6, "book", "all"), (22, "book", "all"),
        (1, "app", "classic"), (4, "app", "all"),
        (3, "app", "all"), (7, "app", "all"), (9, "app", "all"),  # dark themes: light lines on dark
    ],
)
def test_rendered_corners(seed: int, style: str, kinds: str) -> None:
    item = sample(seed, sizes=(4, 6, 9, 16), kinds=kinds, styles=(style,))
    assert _error(locate_grid(item.image), item.corners) < TOLERANCE


def test_a_border_too_faint_to_be_ink_is_where_the_lines_crossing_it_end() -> None:
    # an app screen photographed blurred: the grid's right border fades into the phone's bright edge and is no
    # ink anywhere along it, while the rows' lines run up to it (it was "no grid" before)
    item = sample(10**9 + 74, sizes=(4, 6, 9, 16), kinds="all")
    assert _error(locate_grid(item.image), item.corners) < TOLERANCE


def _grid_apart_from_its_border(gap: int) -> Image.Image:
    """A 9x9 grid whose inner lines stop ``gap`` pixels short of its outer border, as blur and grey paper leave
    them: the border and the lines inside it are then two components, neither of which looks like a grid."""
    img = Image.new("RGB", (420, 420), (235, 235, 228))
    d = ImageDraw.Draw(img)
    x0, side, ink = 60, 300, (40, 40, 40)
    d.rectangle([x0 - 2, x0 - 2, x0 + side + 2, x0 + side + 2], outline=ink, width=4)
    for i in range(1, 9):
        p, w = x0 + i * side / 9, 3 if i % 3 == 0 else 1
        d.line([(p, x0 + 2 + gap), (p, x0 + side - 2 - gap)], fill=ink, width=w)
        d.line([(x0 + 2 + gap, p), (x0 + side - 2 - gap, p)], fill=ink, width=w)
    return img


def test_lines_come_apart_from_the_border_are_bridged_when_nothing_else_is_found(monkeypatch) -> None:
    image = _grid_apart_from_its_border(2)
    truth = [(60.0, 60.0), (361.0, 60.0), (361.0, 361.0), (60.0, 361.0)]
    assert _error(locate_grid(image), truth) < TOLERANCE
    monkeypatch.setattr(grid_locate, "BRIDGED_GAPS", (0,))
    assert locate_grid(image) is None  # the plain ink alone: no component looks like a grid


def test_corner_order_is_top_left_clockwise() -> None:
    item = sample(0, sizes=(9,), styles=("app",))
    (tl, tr, br, bl) = locate_grid(item.image)
    assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]


def _photo_rows() -> list[dict[str, str]]:
    if not (PHOTOS / "outlines.csv").is_file():
        pytest.skip(f"no photos at {PHOTOS}")
    with open(PHOTOS / "outlines.csv", newline="") as f:
        return list(csv.DictReader(f))


# image1049: the grid's lines touch a header above and a column of boxes beside it, so its ink component spans
# all three and its first quad does too; the quad is peeled back to the grid.
@pytest.mark.parametrize("name", ["image1.jpg", "image10.jpg", "image100.jpg", "image1000.jpg", "image1031.jpg",
                                  "image1049.jpg"])
def test_newspaper_photos(name: str) -> None:
    rows = {Path(r["filepath"]).name: r for r in _photo_rows()}
    row = rows[name]
    with Image.open(PHOTOS / name) as im:
        # the outlines were drawn on the EXIF-rotated picture
        image = ImageOps.exif_transpose(im).convert("RGB")
    truth = [(float(row[f"p{i}_x"]), float(row[f"p{i}_y"])) for i in range(1, 5)]
    assert _error(locate_grid(image), truth) < PHOTO_TOLERANCE


def test_a_piece_of_a_neighbouring_grid_is_not_taken_for_the_grid() -> None:
    """A book page: the puzzle's grid, and beside it part of the next one, cut off by the picture's edge. That
    part scores poorly as a whole; peeling it would find one of its boxes, which looks like a grid, so a peeled
    quad whose inner lines run on past a moved side is refused and the puzzle's grid is found."""
    item = sample(7_000_155, sizes=(4, 6, 9, 16), kinds="all")
    assert item.style == "book"
    assert _error(locate_grid(item.image), item.corners) < TOLERANCE


def test_huge_image_maps_back_to_input_pixels() -> None:
    item = sample(0, sizes=(9,), styles=("book",))
    big = item.image.resize((item.image.width * 5, item.image.height * 5), Image.Resampling.BILINEAR)
    truth = [(x * 5, y * 5) for x, y in item.corners]
    assert _error(locate_grid(big), truth) < TOLERANCE


def test_no_grid() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    blank = Image.new("RGB", (640, 480), "white")
    text = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(text)
    for y in range(10, 470, 14):
        draw.text((10, y), "Place the digits 1-9 once in every row, column and box. " * 2, fill="black")
    frame = Image.new("RGB", (640, 480), "white")
    ImageDraw.Draw(frame).rectangle([100, 80, 500, 420], outline="black", width=4)
    for image in (noise, blank, text, frame, Image.new("L", (1, 1))):
        assert locate_grid(image) is None


def test_tiny_and_grey_images_do_not_crash() -> None:
    item = sample(1, sizes=(9,), styles=("newspaper",))
    grey = item.image.convert("L")
    found = locate_grid(grey)
    assert found is not None and all(math.isfinite(v) for p in found for v in p)
