"""The grid view: the puzzle's grid, found in the picture and warped to a fixed square.

Why: a model of a few million parameters reads digits well where every grid
looks alike (same place, same size, straight lines) and poorly where it must
first find a bent grid among newspaper text. Warping the located grid to a
fixed square (with a margin that keeps clues written just outside the grid,
e.g. sandwich sums and little-killer arrows) turns a photo into something close
to a clean screenshot, so the model's capacity goes into reading, and every
image costs the same number of vision tokens.

The view is part of a model's recipe, not of Qwen2-VL's processor: a model
trained on grid views says so in its ``preprocessor_config.json`` under
``vlm_sudoku_grid_view`` (transformers ignores the key); models without it, a
real Qwen2-VL-2B included, see the whole picture exactly as transformers would
show it.

The grid view crops away what is printed beside the grid, and some rules exist
only there, in words (anti-king, non-consecutive, "all dots are given"). A model
trained with ``"context": N`` in that key also gets the whole picture, shrunk to
fit N x N pixels, as a first image before the grid view: both questions see both
images (one shared prefix, as before), and Qwen2-VL's processor and chat template
take two images as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from .model_config import ModelFolderError

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]  # top-left, top-right, bottom-right, bottom-left

CONFIG_KEY = "vlm_sudoku_grid_view"

# The zooms the digits are read at when a reading uses several views (Pipeline's ``views``): the located
# corners scaled about their centre, so below 1 the grid fills a little more of the view. Why several: the
# default model's misreadings depend on where the cells fall among its 28-pixel vision tokens (run 11 on 32
# validation photos: 5 photos with a wrong digit at zoom 1.0, 2 at 0.98 and at 0.96, other photos each time),
# so the views' combined belief (runtime/digit_belief.py) is right more often than any one view. Chosen on 100
# rendered classic puzzles outside the evaluation sets (seeds EVAL_SEED_BASE + 2*10^6 + i): one view at any zoom
# from 0.96 to 1.01 read 93-94 grids exactly (1.02: 90), these three combined 96.
ZOOMS = (1.0, 0.98, 0.96)
UNIT_SQUARE: Quad = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


@dataclass(frozen=True)
class GridView:
    """A ``size`` x ``size`` picture with the grid's outer border ``margin`` pixels inside each edge."""

    size: int = 448
    margin: int = 40
    context: int = 0  # the whole picture too, shrunk to fit context x context pixels (0: the grid view alone)

    @classmethod
    def from_preprocessor_config(cls, raw: dict[str, Any]) -> "GridView | None":
        """The view a model was trained on, or None for a model that sees whole pictures."""
        spec = raw.get(CONFIG_KEY)
        if spec is None:
            return None
        try:
            view = cls(size=int(spec["size"]), margin=int(spec["margin"]), context=int(spec.get("context", 0)))
        except (TypeError, KeyError, ValueError, AttributeError):
            raise ModelFolderError(f"preprocessor_config.json: {CONFIG_KEY} needs integer 'size' and 'margin' "
                                   f"(and optionally 'context'), got {spec!r}") from None
        if view.size < 56 or not 0 <= view.margin < view.size // 4 or not (view.context == 0 or view.context >= 56):
            raise ModelFolderError(f"preprocessor_config.json: {CONFIG_KEY} {spec!r} is out of range")
        return view

    def to_dict(self) -> dict[str, int]:
        out = {"size": self.size, "margin": self.margin}
        if self.context:
            out["context"] = self.context
        return out

    def context_of(self, image: Image.Image) -> Image.Image | None:
        """The whole picture shrunk to fit ``context`` x ``context`` (never enlarged), or None without one."""
        if not self.context:
            return None
        picture = image.convert("RGB")
        w, h = picture.size
        k = min(1.0, self.context / max(w, h))
        if k == 1.0:
            return picture
        return picture.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BICUBIC,
                              reducing_gap=2.0)

    @property
    def target(self) -> Quad:
        """Where the grid's corners land in the view."""
        lo, hi = float(self.margin), float(self.size - self.margin)
        return (lo, lo), (hi, lo), (hi, hi), (lo, hi)

    def warp(self, image: Image.Image, corners: Sequence[Point]) -> Image.Image:
        """The view of ``image`` whose grid has ``corners`` (top-left, top-right, bottom-right, bottom-left)."""
        return warped(image, (self.size, self.size), self.target, corners)

    def zoomed(self, image: Image.Image, corners: Sequence[Point], zoom: float) -> Image.Image:
        """The view of ``image`` with the grid's ``corners`` scaled by ``zoom`` about their centre first."""
        cx = sum(x for x, _ in corners) / len(corners)
        cy = sum(y for _, y in corners) / len(corners)
        return self.warp(image, [(cx + (x - cx) * zoom, cy + (y - cy) * zoom) for x, y in corners])

    def whole(self, image: Image.Image) -> Image.Image:
        """The view used when no grid is found: the whole picture, as if it were the grid."""
        w, h = image.size
        return self.warp(image, ((0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))))

    def of(self, image: Image.Image) -> "Viewed":
        """Locate the grid and warp it; the whole picture stands in when no grid is found."""
        from .grid_locate import locate_grid

        start = time.perf_counter()
        corners = locate_grid(image)
        view = self.whole(image) if corners is None else self.warp(image, corners)
        return Viewed(view, corners, time.perf_counter() - start, self.context_of(image))


def prompt_images(view: Image.Image, context: Image.Image | None) -> list[Image.Image]:
    """The images of a prompt in order: the context view if any, then the grid view (last, so that the grid's
    tokens and the question keep the distances a grid-view-only model learnt: rotary positions are relative)."""
    return [view] if context is None else [context, view]


@dataclass(frozen=True)
class Viewed:
    """A grid view and where it came from (reported by vlm-solve -v and --json)."""

    image: Image.Image
    corners: Quad | None  # None: no grid found, the whole picture was used
    seconds: float
    context: Image.Image | None = None  # the whole picture, for models trained with a context view

    @property
    def images(self) -> list[Image.Image]:
        """What the model reads, in prompt order (prompt_images)."""
        return prompt_images(self.image, self.context)


def perspective_coefficients(dst: Sequence[Point], src: Sequence[Point]) -> tuple[float, ...]:
    """The 8 coefficients Pillow's PERSPECTIVE transform takes, mapping ``dst`` points (in the
    output) to ``src`` points (in the input): x' = (a x + b y + c) / (g x + h y + 1), y' likewise."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    try:
        solution = np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, dtype=np.float64))
    except np.linalg.LinAlgError:
        raise ValueError(f"degenerate grid corners {list(src)!r}") from None
    return tuple(float(v) for v in solution)


def warped(image: Image.Image, size: tuple[int, int], target: Sequence[Point], source: Sequence[Point]) -> Image.Image:
    """A ``size`` picture whose ``target`` points show ``image``'s ``source`` points (a perspective warp); what lies
    outside ``image`` takes its mean colour, not black, which a model would read as ink."""
    rgb = image.convert("RGB")
    fill = tuple(int(v) for v in rgb.resize((1, 1), Image.BILINEAR).getpixel((0, 0)))
    return rgb.transform(size, Image.PERSPECTIVE, perspective_coefficients(target, source), resample=Image.BICUBIC,
                         fillcolor=fill)


def in_picture(corners: Sequence[Point], points: Sequence[Point]) -> tuple[Point, ...]:
    """``points`` of the grid's unit square (its side is 1) in the picture whose grid has ``corners``."""
    grid = perspective_coefficients(UNIT_SQUARE, corners)
    xs, ys = apply_perspective(grid, *(np.asarray(v, dtype=np.float64) for v in zip(*points)))
    return tuple((float(x), float(y)) for x, y in zip(xs, ys))


def apply_perspective(coeffs: Sequence[float], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map points through :func:`perspective_coefficients`' transform (dst -> src)."""
    a, b, c, d, e, f, g, h = coeffs
    w = g * x + h * y + 1
    return (a * x + b * y + c) / w, (d * x + e * y + f) / w


def load_grid_view(folder: str | Path) -> "GridView | None":
    """The grid view named in a model or export folder's ``preprocessor_config.json`` (None if absent)."""
    from .preprocess import read_preprocessor_config

    return GridView.from_preprocessor_config(read_preprocessor_config(folder))
