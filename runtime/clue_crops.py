"""Clue crops: each number printed as a clue (a killer cage's sum, a sandwich or little-killer total), cut out
of the picture and enlarged, read by a question of its own.

Why: the default model reads the big digits of the cells well but not the small clue numbers; it writes the
sums its training saw most (S11, S14, H15...). On the 448-pixel grid view a cell is 41 pixels and a cage sum
about 10 pixels high, under one 28-pixel vision token (run 18: killer maps right 0 of 6 renders, sandwich and
little-killer clues 0 of 9). A crop of the place where the marks map says a clue is printed, warped to
``size`` x ``size`` pixels, shows the number larger than a cell's digit; the number the model gives then
replaces the map's. A crop is a few dozen image tokens, so each clue costs one short prompt (about 20-40 ms on
the CPU).

Reading the crops has to be learnt: run 19, taught by the answers alone, answered 10 or 0 whatever a crop
showed, and its vision tokens hardly told the digits apart. Since then the training also labels each token
of a crop with the digit drawn under it (tools/train/data.py ``glyph_labels``), as the read-out head first
taught the tokens of the grid view which digit a cell shows. With that and a larger share of crops, run 21
reads 88% of the printed numbers of the evaluation renders right from the crops (its maps' own: 19%), and the
shipped model declares them (docs/benchmarks.md).

Like the grid view and the marks map, the crops are part of a model's recipe: a model trained to read them
says so in ``preprocessor_config.json`` under ``vlm_sudoku_clue_crops``; other models (a real Qwen2-VL
included) are never asked. Training (tools/train/data.py) cuts its crops with this module, from the same
places, so the two cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from PIL import Image

from .grid_view import Point, Quad, in_picture, warped
from .marks_map import code_rows
from .model_config import ModelFolderError

CONFIG_KEY = "vlm_sudoku_clue_crops"
QUESTION = "clue"  # the question's name (prompts.question_text)
LAYERS = ("killer", "outside")  # the marks-map layers whose codes carry a printed number

# Where a clue sits, in cells from the top-left corner of the cell (or ring place) it belongs to: a cage sum in
# the cell's top-left corner (render/draw.py prints it 0.06 cells in, 0.26 cells high), an outside clue anywhere
# in its place of the ring (a little killer's number in the corner away from the grid).
_BOXES = {"killer": (-0.1, 0.66), "outside": (-0.1, 1.1)}
_NUMBER = re.compile(r"^([A-Z]+)(\d+)$")
_ANSWER = re.compile(r"^\s*(\d{1,3})\s*$")


@dataclass(frozen=True)
class Clue:
    """One printed number of a marks map: the map's row and place, the layer, and the number the map wrote."""

    layer: str
    row: int  # the map's own row and column (the outside map's include the ring: 0 is above the grid)
    col: int
    number: int

    @property
    def cell(self) -> tuple[int, int]:
        """The grid cell (row, column) whose square the clue is printed in; -1 or n for the ring's places."""
        return (self.row - 1, self.col - 1) if self.layer == "outside" else (self.row, self.col)


@dataclass(frozen=True)
class ClueCrops:
    """Crops of ``size`` x ``size`` pixels."""

    size: int = 168  # 6 x 6 image tokens: a clue's digit under one or two of them

    @classmethod
    def from_preprocessor_config(cls, raw: Mapping[str, Any]) -> "ClueCrops | None":
        spec = raw.get(CONFIG_KEY)
        if spec is None:
            return None
        try:
            crops = cls(size=int(spec["size"]))
        except (TypeError, KeyError, ValueError):
            raise ModelFolderError(f"preprocessor_config.json: {CONFIG_KEY} needs an integer 'size', got {spec!r}") from None
        if not 56 <= crops.size <= 448:
            raise ModelFolderError(f"preprocessor_config.json: {CONFIG_KEY} size {crops.size} is out of range (56-448)")
        return crops

    def to_dict(self) -> dict[str, int]:
        return {"size": self.size}

    @property
    def square(self) -> Quad:
        s = float(self.size)
        return (0.0, 0.0), (s, 0.0), (s, s), (0.0, s)

    def source(self, corners: Sequence[Point], n: int, clue: Clue) -> Quad:
        """Where the crop's corners lie in the picture whose n x n grid has ``corners`` (top-left, top-right,
        bottom-right, bottom-left)."""
        lo, hi = _BOXES[clue.layer]
        r, c = clue.cell
        box = [((c + x) / n, (r + y) / n) for x, y in ((lo, lo), (hi, lo), (hi, hi), (lo, hi))]
        return in_picture(corners, box)  # type: ignore[return-value]

    def crop(self, picture: Image.Image, corners: Sequence[Point], n: int, clue: Clue) -> Image.Image:
        """The clue's place in ``picture``, whose n x n grid has ``corners``, warped to a square."""
        return warped(picture, (self.size, self.size), self.square, self.source(corners, n, clue))


def clues_of(text: str, layer: str) -> list[Clue]:
    """The printed numbers of a ``layer`` map answer, in reading order: a cage's sum (killer), a sandwich or
    little-killer total (outside). A place holding two clues ("DR12+UL7") is left out: which number is which
    would be a guess."""
    if layer not in LAYERS:
        return []
    out = []
    for r, row in enumerate(code_rows(text, layer)):
        for c, code in enumerate(row):
            m = _NUMBER.match(code)
            if m:
                out.append(Clue(layer, r, c, int(m.group(2))))
    return out


def with_numbers(text: str, layer: str, numbers: Mapping[tuple[int, int], int]) -> str:
    """The map answer ``text`` with the numbers at the places of ``numbers`` ((row, column) -> number) written
    instead of its own; the rest as it was (rows rebuilt from their codes, chatter before them dropped)."""
    rows = code_rows(text, layer)
    for (r, c), number in numbers.items():
        m = _NUMBER.match(rows[r][c]) if 0 <= r < len(rows) and 0 <= c < len(rows[r]) else None
        if m is None:
            raise ValueError(f"the {layer} map has no number at row {r + 1}, place {c + 1}")
        rows[r][c] = f"{m.group(1)}{number}"
    return "\n".join("".join(row) for row in rows)


def clue_answer(text: str) -> int | None:
    """The number a clue answer gives, or None where it is not one (the map's own number is then kept)."""
    m = _ANSWER.match(text)
    return int(m.group(1)) if m else None


def clue_answer_text(number: int) -> str:
    """What the model is trained to answer for a clue (tools/train/data.py)."""
    return str(number)


def load_clue_crops(folder) -> "ClueCrops | None":
    """The clue crops a model or export folder declares (None if it reads no crops)."""
    from .preprocess import read_preprocessor_config

    return ClueCrops.from_preprocessor_config(read_preprocessor_config(folder))
