"""Seeded, reproducible pictures of puzzles for training and evaluating the reader model.

>>> import random
>>> from vlm_sudoku.tools.render import render, sample
>>> item = sample(7, sizes=(4,), styles=("app",))
>>> item.image.mode, item.style
('RGB', 'app')

``render(puzzle, rng)`` draws one puzzle in a random (or given) style: an app
screenshot, a newspaper page or a puzzle-book page, photographed or not. The
same ``random.Random`` state and the same fonts give the same pixels. See
docs/render.md for the styles, the damage, the fonts and measured throughput.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ...solver.errors import VlmSudokuError
from ...solver.puzzle import Puzzle
from .damage import jpeg as jpeg_roundtrip
from .draw import UnsupportedMarking, check_drawable
from .fonts import FontSet, default_fonts
from .labels import digits_answer, rules_answer
from .puzzles import CLASSIC, SIZES, kinds_of, parse_kinds, sample_puzzle
from .scene import STYLES, compose

Point = tuple[float, float]
STYLE_WEIGHTS = {"app": 0.3, "newspaper": 0.45, "book": 0.25}


@dataclass
class Rendered:
    """One picture and what is true about it."""

    image: Image.Image  # RGB
    puzzle: Puzzle
    style: str
    font: str  # the font of the givens
    corners: tuple[Point, Point, Point, Point]  # grid corners in the image: top-left, top-right, bottom-right, bottom-left
    details: dict[str, Any] = field(default_factory=dict)  # layout, theme, effects, rule text shown, clue digits drawn
    seed: int | None = None  # set by :func:`sample`
    jpeg_quality: int | None = None  # the JPEG quality chosen as damage (applied already when render(jpeg=True))

    @property
    def rules_answer(self) -> str:
        return rules_answer(self.puzzle)

    @property
    def digits_answer(self) -> str:
        return digits_answer(self.puzzle)

    def label(self, file: str = "") -> dict[str, Any]:
        """The labels.jsonl record of this picture."""
        return {
            "file": file, "seed": self.seed, "size": self.puzzle.size, "style": self.style,
            "kinds": kinds_of(self.puzzle), "rules": self.rules_answer, "digits": self.digits_answer,
            "corners": [[round(x, 2), round(y, 2)] for x, y in self.corners], "font": self.font,
            "width": self.image.width, "height": self.image.height,
        }


class RenderError(VlmSudokuError):
    """A picture could not be made (unknown style, a rule that cannot be drawn)."""


def render(puzzle: Puzzle, rng: random.Random, *, style: str | None = None, fonts: FontSet | None = None,
           jpeg: bool = True, small: bool = False) -> Rendered:
    """Draw ``puzzle`` in ``style`` (random when None) using only ``rng`` for every choice.

    JPEG compression is part of the damage; with ``jpeg=False`` the image comes back
    uncompressed and ``jpeg_quality`` says at which quality to save it (so a writer
    that saves JPEG files compresses once, not twice). ``small``: a photo style drawn as a small photo
    (scene.compose), which the training draws more of than the styles' own sizes give.
    """
    if style is None:
        style = rng.choices(list(STYLE_WEIGHTS), list(STYLE_WEIGHTS.values()))[0]
    if style not in STYLES:
        raise RenderError(f"unknown style {style!r} (known: {', '.join(STYLES)})")
    check_drawable(puzzle)
    scene = compose(puzzle, rng, style, fonts or default_fonts(), small=small)
    c = scene.corners
    image = scene.image.convert("RGB")
    if jpeg and scene.jpeg_quality is not None:
        image = jpeg_roundtrip(image, scene.jpeg_quality)
    return Rendered(image, puzzle, style, scene.font, (c[0], c[1], c[2], c[3]), scene.details,
                    jpeg_quality=scene.jpeg_quality)


def sample(
    seed: int,
    *,
    sizes: Sequence[int] = SIZES,
    kinds: Sequence[str] | str = (CLASSIC,),
    styles: Sequence[str] = STYLES,
    fonts: FontSet | None = None,
    jpeg: bool = True,
) -> Rendered:
    """A random puzzle and its picture, both from ``seed`` alone (what the CLI writes for each image)."""
    rng = random.Random(seed)
    pool = parse_kinds(kinds)
    puzzle, _solution = sample_puzzle(rng, sizes=sizes, kinds=pool)
    styles = [s for s in styles if s in STYLES] or list(STYLES)
    style = rng.choices(styles, [STYLE_WEIGHTS[s] for s in styles])[0]
    out = render(puzzle, rng, style=style, fonts=fonts, jpeg=jpeg)
    out.seed = seed
    return out


__all__ = [
    "STYLES", "RenderError", "Rendered", "UnsupportedMarking", "digits_answer", "render", "rules_answer", "sample",
]
