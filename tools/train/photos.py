"""The newspaper photos (../shared/data/photos_train, CC-BY-4.0, B. Wicht): labels, the fixed
validation split, and augmentation for fine-tuning.

The split is fixed by file name (every fifth photo in numeric order is held
out), so every run and every report uses the same 32 validation photos.
"""

from __future__ import annotations

import csv
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter

from ...runtime.image_io import load_image, stale_orientation
from ...solver.puzzle import Grid, Puzzle

DEFAULT_DIR = Path(os.environ.get("VLM_SUDOKU_PHOTOS") or
                   Path(__file__).resolve().parents[2].parent / "shared" / "data" / "photos_train")
#: The fixed validation split, by name. The 160 photos show only 63 different puzzles (the same
#: newspaper grid photographed up to 14 times), so the split is by puzzle: the 12 puzzles that come
#: 4th, 9th, 14th... in numeric photo order, 32 photos, none of whose grids appears in training.
VALIDATION_PHOTOS = frozenset({
    "image10.jpg",
    "image36.jpg",
    "image37.jpg",
    "image40.jpg",
    "image41.jpg",
    "image42.jpg",
    "image43.jpg",
    "image77.jpg",
    "image79.jpg",
    "image80.jpg",
    "image81.jpg",
    "image93.jpg",
    "image94.jpg",
    "image95.jpg",
    "image96.jpg",
    "image97.jpg",
    "image139.jpg",
    "image160.jpg",
    "image161.jpg",
    "image162.jpg",
    "image163.jpg",
    "image164.jpg",
    "image178.jpg",
    "image194.jpg",
    "image202.jpg",
    "image1000.jpg",
    "image1007.jpg",
    "image1022.jpg",
    "image1040.jpg",
    "image1055.jpg",
    "image1070.jpg",
    "image1081.jpg",
})


@dataclass(frozen=True)
class Photo:
    path: Path
    givens: Grid
    corners: tuple[tuple[float, float], ...]  # TL, TR, BR, BL in stored pixels

    @property
    def puzzle(self) -> Puzzle:
        return Puzzle.create(9, self.givens)


def _number(path: Path) -> int:
    return int(re.sub(r"\D", "", path.stem) or 0)


def read_dat(path: Path) -> Grid:
    """A .dat file: camera, resolution, then nine rows of nine digits (0 = blank)."""
    rows = [ln.split() for ln in path.read_text().splitlines()[2:] if ln.strip()]
    if len(rows) != 9 or any(len(r) != 9 for r in rows):
        raise ValueError(f"{path}: expected 9 rows of 9 digits")
    return tuple(tuple(int(v) for v in r) for r in rows)


def load_photos(folder: Path = DEFAULT_DIR) -> list[Photo]:
    corners: dict[str, tuple[tuple[float, float], ...]] = {}
    with (folder / "outlines.csv").open() as f:
        for row in csv.DictReader(f):
            pts = tuple((float(row[f"p{i}_x"]), float(row[f"p{i}_y"])) for i in range(1, 5))
            corners[Path(row["filepath"]).name] = pts
    photos = []
    for jpg in sorted(folder.glob("*.jpg"), key=_number):
        photos.append(Photo(jpg, read_dat(jpg.with_suffix(".dat")), _as_loaded(jpg, corners.get(jpg.name, ()))))
    return photos


def _as_loaded(path: Path, corners: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    """The outline in the pixels ``load_image`` gives. The outlines were drawn on EXIF-rotated
    pictures, and ``load_image`` does not rotate the photos whose tag is stale (their pixels are
    upright already), so for those the corners are turned back into the stored frame."""
    if len(corners) != 4:
        return corners
    with Image.open(path) as im:
        orientation = im.getexif().get(0x0112, 1)
        if orientation not in (6, 8) or not stale_orientation(im):
            return corners
        w, h = im.size
    if orientation == 6:  # shown turned 90 degrees clockwise
        pts = [(y, h - 1 - x) for x, y in corners]
    else:
        pts = [(w - 1 - y, x) for x, y in corners]
    return (min(pts, key=lambda p: p[0] + p[1]), max(pts, key=lambda p: p[0] - p[1]),
            max(pts, key=lambda p: p[0] + p[1]), min(pts, key=lambda p: p[0] - p[1]))


def split(photos: list[Photo]) -> tuple[list[Photo], list[Photo]]:
    """(train, validation) by the fixed list of validation photo names."""
    val = [p for p in photos if p.path.name in VALIDATION_PHOTOS]
    train = [p for p in photos if p.path.name not in VALIDATION_PHOTOS]
    return train, val


def copy_training_split(dest: Path, folder: Path = DEFAULT_DIR) -> int:
    """The training photos (no validation photo), their .dat labels and outlines.csv copied into ``dest``, the
    folder a training run on the GPU machine is sent (docs/training.md): the whole folder passes one transfer's
    64 MiB beside the checkout, and the validation photos must not reach training. Returns the photos copied."""
    train, _val = split(load_photos(folder))
    dest.mkdir(parents=True, exist_ok=True)
    for photo in train:
        for source in (photo.path, photo.path.with_suffix(".dat")):
            shutil.copy2(source, dest / source.name)
    shutil.copy2(folder / "outlines.csv", dest / "outlines.csv")
    return len(train)


def augment(photo: Photo, rng: random.Random) -> Image.Image:
    """A plausible re-take of the photo: small rotation, zoom/crop that keeps the grid,
    light, contrast, blur and JPEG changes. Stale EXIF tags are handled by load_image."""
    img = load_image(photo.path)
    w, h = img.size
    if photo.corners and rng.random() < 0.7:
        xs = [p[0] for p in photo.corners]
        ys = [p[1] for p in photo.corners]
        margin = 0.04 * max(w, h)
        left = rng.uniform(0, max(0.0, min(xs) - margin))
        top = rng.uniform(0, max(0.0, min(ys) - margin))
        right = w - rng.uniform(0, max(0.0, w - max(xs) - margin))
        bottom = h - rng.uniform(0, max(0.0, h - max(ys) - margin))
        if right - left > 0.3 * w and bottom - top > 0.3 * h:
            img = img.crop((int(left), int(top), int(right), int(bottom)))
    if rng.random() < 0.8:  # after the crop, and expanding, so the grid's corners stay in view
        fill = tuple(int(v) for v in img.resize((1, 1)).getpixel((0, 0)))
        img = img.rotate(rng.uniform(-6, 6), resample=Image.BICUBIC, expand=True, fillcolor=fill)
    if rng.random() < 0.3:
        scale = rng.uniform(0.5, 1.0)
        img = img.resize((max(64, int(img.width * scale)), max(64, int(img.height * scale))), Image.BILINEAR)
    return retake(img, rng)


def retake(img: Image.Image, rng: random.Random) -> Image.Image:
    """Light, contrast, colour, blur and JPEG changes: what another camera or lamp would do."""
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.3))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.6, 1.4))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.5:
        from io import BytesIO

        buf = BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(40, 90))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    return img


if __name__ == "__main__":  # python -m vlm_sudoku.tools.train.photos DEST
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m vlm_sudoku.tools.train.photos DEST (copies the training split there)")
    print(f"{copy_training_split(Path(sys.argv[1]))} training photos copied into {sys.argv[1]}")
