"""Text crops: the lines of words printed around a puzzle's grid, each cut out at a size the model can read, and
asked which rules it states.

Why: some rules leave no mark in the grid and are only said in words (anti-knight, anti-king, non-consecutive,
disjoint groups: rules_check.WORDS_ONLY). The default model sees the words only in its context view, where a line
of rule text is about 12 pixels high, under half of one 28-pixel vision token; there it names these rules from
priors (run 21: anti-king read as anti-knight in 8 of 18 renders, disjoint as non-consecutive) and a read-out
taught to find them in the context view's tokens did not learn to (run 25: average precision 0.02-0.15). A line
cut out and scaled so that its letters are a token high shows the words as a cell's digit shows in the grid view.

Where the lines are: the picture is looked at in the frame of its grid (the grid's unit square, through the
located corners), so the lines of a page photographed at a slant come out level. In that frame dark (or, on a
dark page, light) ink is smeared along the rows, the grid is blanked, and each connected run of words is a line;
a run two lines high is split at the emptiest row between them, and pieces of one line far apart (a large title's
words) are joined. Lines as high as rule text come first, nearest the grid first: rules are printed beside, above
or below their grid, a newspaper page's columns further away and in smaller type.

Like the clue crops, the text crops are part of a model's recipe: a model trained to read them says so in
``preprocessor_config.json`` under ``vlm_sudoku_text_crops``; other models (a real Qwen2-VL included) are never
asked. Training (tools/train/data.py) finds and cuts its lines with this module, so the two cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageFilter

from ..solver.constraints.base import RULES
from ..solver.puzzle import Puzzle
from .grid_locate import _label_runs, _runs
from .grid_view import Point, Quad, in_picture, perspective_coefficients, warped
from .model_config import ModelFolderError
from .rules_check import WORDS_ONLY

CONFIG_KEY = "vlm_sudoku_text_crops"
QUESTION = "text"  # the question's name (prompts.question_text)
NONE = "none"  # the answer for a line that states none of WORDS_ONLY

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in the grid's unit square (the grid's side is 1)

# The search frame: this much of the page around the grid, in grid sides (renders put rule text up to 1.5 sides
# above, 0.75 below and 0.6 to the right of their grid), looked at with a grid side of SEARCH_PX pixels.
SEARCH_BOX: Box = (-1.0, -1.6, 2.0, 2.0)
SEARCH_PX = 200
BLANK_BOX: Box = (-0.02, -0.02, 1.02, 1.02)  # the grid (rule text may begin 0.05 from its side)
INK_MARGIN = 10  # grey levels darker (lighter on a dark page) than the local mean that count as ink
SMEAR = 0.025  # grid sides: ink this close along a row is one line (a word gap is 0.3 of the letters' height)
LINE_HEIGHT = (0.02, 0.16)  # grid sides: a line's height (renders: rules 0.04-0.08, titles up to 0.14)
NEAR = 0.1  # grid sides: lines this much nearer the grid come first
RULE_HEIGHT = 0.036  # grid sides: lines at least this high come first (rule text; the page's filler is smaller)
MIN_LENGTH = 3.0  # a line is at least this many times as long as it is high
JOIN_GAP = 0.8  # of the taller piece's height: two pieces of one line this close are joined
SPLIT_BELOW = 0.35  # a row of a component with less ink than this share of its fullest row may part two lines


@dataclass(frozen=True)
class TextLine:
    """One line of words found around the grid: its box in the grid's unit square and how far it is from it."""

    box: Box
    distance: float  # from the grid's square, in grid sides

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class TextCrops:
    """Crops ``height`` pixels high (the letters about 0.6 of it), as long as the line at that scale up to
    ``max_width``; at most ``lines`` lines a picture, nearest the grid first."""

    height: int = 56  # 2 rows of 28-pixel merged tokens
    max_width: int = 1120  # 40 tokens a row
    lines: int = 12  # (renders: every stated rule is on one of the first 8 lines in 95% of pictures, 12 in 98%)

    @classmethod
    def from_preprocessor_config(cls, raw: Mapping[str, Any]) -> "TextCrops | None":
        spec = raw.get(CONFIG_KEY)
        if spec is None:
            return None
        try:
            crops = cls(height=int(spec["height"]), max_width=int(spec["max_width"]), lines=int(spec["lines"]))
        except (TypeError, KeyError, ValueError):
            raise ModelFolderError(f"preprocessor_config.json: {CONFIG_KEY} needs integers 'height', 'max_width' "
                                   f"and 'lines', got {spec!r}") from None
        if not (28 <= crops.height <= 112 and crops.height <= crops.max_width <= 2240 and 1 <= crops.lines <= 32):
            raise ModelFolderError(f"preprocessor_config.json: {CONFIG_KEY} {spec!r} is out of range (height "
                                   "28-112, max_width height-2240, lines 1-32)")
        return crops

    def to_dict(self) -> dict[str, int]:
        return {"height": self.height, "max_width": self.max_width, "lines": self.lines}

    def find(self, picture: Image.Image, corners: Sequence[Point]) -> list[TextLine]:
        """The lines to ask about in ``picture``, whose grid has ``corners``: the nearest ``lines`` of them."""
        return find_lines(picture, corners)[:self.lines]

    def crop(self, picture: Image.Image, corners: Sequence[Point], line: TextLine) -> Image.Image:
        """``line`` cut out of ``picture`` level, with a margin of a third of its height, scaled to ``height``."""
        width, source = self.source(corners, line)
        return warped(picture, (width, self.height), self.rectangle(width), source)

    def source(self, corners: Sequence[Point], line: TextLine) -> tuple[int, Quad]:
        """The width of ``line``'s crop, and where the crop's corners lie in the picture whose grid has ``corners``."""
        x0, y0, x1, y1 = padded(line.box)
        width = min(self.max_width, max(self.height, 28 * round(self.height * (x1 - x0) / (y1 - y0) / 28)))
        return width, in_picture(corners, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))  # type: ignore[return-value]

    def rectangle(self, width: int) -> Quad:
        """A crop of ``width``'s own corners."""
        return _rectangle(width, self.height)


def padded(box: Box) -> Box:
    """A line's box with the margin a crop shows around it."""
    x0, y0, x1, y1 = box
    m = (y1 - y0) / 3
    return x0 - m, y0 - m, x1 + m, y1 + m


def _rectangle(width: float, height: float) -> Quad:
    return (0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))


def search_view(picture: Image.Image, corners: Sequence[Point]) -> tuple[np.ndarray, np.ndarray]:
    """The page around the grid in the grid's frame (SEARCH_BOX at SEARCH_PX pixels a grid side): its grey levels
    and where the picture covers it."""
    x0, y0, x1, y1 = SEARCH_BOX
    w, h = round((x1 - x0) * SEARCH_PX), round((y1 - y0) * SEARCH_PX)
    coeffs = perspective_coefficients(_rectangle(w, h), in_picture(corners, ((x0, y0), (x1, y0), (x1, y1), (x0, y1))))
    gray = picture.convert("L").transform((w, h), Image.PERSPECTIVE, coeffs, resample=Image.BILINEAR, fillcolor=0)
    covered = Image.new("L", picture.size, 255).transform((w, h), Image.PERSPECTIVE, coeffs, fillcolor=0)
    return np.asarray(gray, dtype=np.int16), np.asarray(covered) > 128


def _ink(gray: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Ink against the local mean, dark on a light page and light on a dark one (the page's median decides)."""
    radius = max(3, round(SMEAR * SEARCH_PX))
    median = int(np.median(gray[covered])) if covered.any() else 0
    page = np.where(covered, gray, median)
    mean = np.asarray(Image.fromarray(page.astype(np.uint8)).filter(ImageFilter.BoxBlur(radius)), dtype=np.int16)
    dark_page = covered.any() and median < 110
    ink = (page - mean > INK_MARGIN) if dark_page else (page - mean < -INK_MARGIN)
    inner = np.asarray(Image.fromarray(covered.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(5))) > 128
    return ink & inner  # (the picture's own edge is not ink)


def _smear(mask: np.ndarray, reach: int) -> np.ndarray:
    """``mask`` with every gap of at most ``reach`` pixels along a row filled."""
    if reach <= 0:
        return mask
    h, w = mask.shape
    idx = np.where(mask, np.arange(w)[None, :], -(10 ** 9))
    last = np.maximum.accumulate(idx, axis=1)  # the nearest ink at or left of each pixel
    idx2 = np.where(mask, np.arange(w)[None, :], 10 ** 9)
    nxt = np.minimum.accumulate(idx2[:, ::-1], axis=1)[:, ::-1]  # ... at or right of it
    return mask | ((nxt - last) <= reach + 1)


def find_lines(picture: Image.Image, corners: Sequence[Point]) -> list[TextLine]:
    """Every line of words around the grid with ``corners`` in ``picture``: those at least RULE_HEIGHT high first,
    each kind nearest the grid first."""
    gray, covered = search_view(picture, corners)
    ink = _ink(gray, covered)
    sx0, sy0 = SEARCH_BOX[0], SEARCH_BOX[1]
    b = [round((v - o) * SEARCH_PX) for v, o in zip(BLANK_BOX, (sx0, sy0, sx0, sy0))]
    ink[max(0, b[1]):b[3], max(0, b[0]):b[2]] = False
    smeared = _smear(ink, round(SMEAR * SEARCH_PX))
    row, start, end = _runs(smeared)
    if len(row) == 0:
        return []
    label = _label_runs(row, start, end, smeared.shape[1])
    pieces = []
    for comp in np.unique(label):
        sel = label == comp
        r, s, e = row[sel], start[sel], end[sel]
        for top, bottom in _split_rows(r, s, e):
            keep = (r >= top) & (r < bottom)
            pieces.append((int(s[keep].min()), top, int(e[keep].max()), bottom))
    lines = [line for line in (_line_of(box, sx0, sy0) for box in _joined(pieces)) if line is not None]
    # a block of lines in reading order: their distances differ by a pixel or two
    return sorted(lines, key=lambda ln: (ln.height < RULE_HEIGHT, round(ln.distance / NEAR), ln.box[1], ln.box[0]))


def _split_rows(r: np.ndarray, s: np.ndarray, e: np.ndarray) -> list[tuple[int, int]]:
    """A component's rows parted into lines at its emptiest rows (two lines whose letters touch are one
    component); (top, one past the bottom) each."""
    top, bottom = int(r.min()), int(r.max()) + 1
    ink = np.bincount(r - top, weights=e - s, minlength=bottom - top)
    low = ink < SPLIT_BELOW * ink.max()
    parts, at = [], top
    min_rows = max(2, round(LINE_HEIGHT[0] * SEARCH_PX))
    i = 0
    while i < len(ink):
        if low[i]:
            j = i
            while j < len(ink) and low[j]:
                j += 1
            cut = top + (i + j) // 2
            if cut - at >= min_rows and bottom - cut >= min_rows:
                parts.append((at, cut))
                at = cut
            i = j
        else:
            i += 1
    parts.append((at, bottom))
    return parts


def _joined(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Pieces of one line joined: boxes side by side on one level, closer than JOIN_GAP of their height (the words
    of a large title are further apart than SMEAR)."""
    out: list[list[int]] = []
    for box in sorted(boxes):
        x0, y0, x1, y1 = box
        for m in out:
            overlap = min(y1, m[3]) - max(y0, m[1])
            height = max(y1 - y0, m[3] - m[1])
            if overlap >= 0.6 * height and x0 - m[2] <= JOIN_GAP * height:  # (one level: of the taller too)
                m[:] = [min(m[0], x0), min(m[1], y0), max(m[2], x1), max(m[3], y1)]
                break
        else:
            out.append(list(box))
    return [(a, b, c, d) for a, b, c, d in out]


def _line_of(box_px: tuple[int, int, int, int], sx0: float, sy0: float) -> TextLine | None:
    """The line a component's box is, in grid sides; None for what is not shaped like a line of words."""
    x0, y0, x1, y1 = (v / SEARCH_PX for v in box_px)
    box = (x0 + sx0, y0 + sy0, x1 + sx0, y1 + sy0)
    height, length = box[3] - box[1], box[2] - box[0]
    if not LINE_HEIGHT[0] <= height <= LINE_HEIGHT[1] or length < MIN_LENGTH * height:
        return None
    dx = max(0.0, -box[2], box[0] - 1.0)
    dy = max(0.0, -box[3], box[1] - 1.0)
    return TextLine(box, float(np.hypot(dx, dy)))


_ANSWER = re.compile(r"^\s*([a-z_ ]+?)\s*$")


def text_answer(text: str) -> tuple[str, ...] | None:
    """The rules a text answer states (WORDS_ONLY; () for "none"), or None where it is not such an answer."""
    m = _ANSWER.match(text)
    if not m:
        return None
    words = m.group(1).split()
    if words == [NONE]:
        return ()
    if not words or any(w not in WORDS_ONLY for w in words) or len(set(words)) != len(words):
        return None
    return tuple(words)


def stated_in(texts: Mapping[str, str]) -> tuple[str, ...] | None:
    """The words-only rules the text crops' answers ("text:<line>" in ``texts``: Reading.texts) state together;
    None where no line was asked, or no answer reads (the rules answer then decides them)."""
    read = [text_answer(t) for q, t in texts.items() if q.startswith(f"{QUESTION}:")]
    said = [r for r in read if r is not None]
    if not said:
        return None
    return tuple(rule for rule in WORDS_ONLY if any(rule in r for r in said))


def with_stated(puzzle: Puzzle, stated: Sequence[str] | None) -> Puzzle:
    """``puzzle`` with the words-only rules the lines of text state in place of those its rules answer named; as
    it is where the lines state none (or none was asked). Disjoint groups are only kept on a grid with boxes (the rule
    needs them).

    Why not take "none" from every line as "no such rule": a line is missed now and then (2% of renders with such a
    rule have it beyond the 12 lines asked), and a reader that has not learnt the crops answers "none" to all (probe
    run 28 read 52% of 25 by-kind renders' rules exactly when "none" took the rules away, 56% since; run 27 without
    crops 60%). A words-only rule named by the rules answer and printed nowhere is left to the rules check, which
    drops it where the reading then solves."""
    if not stated:
        return puzzle
    kept = tuple(c for c in puzzle.constraints if c.rule not in WORDS_ONLY)
    said = tuple(RULES[rule]() for rule in WORDS_ONLY if rule in stated and (rule != "disjoint" or puzzle.box))
    return replace(puzzle, constraints=(*kept, *said))


def text_answer_text(rules: Sequence[str]) -> str:
    """What the model is trained to answer for a line stating ``rules`` (tools/train/data.py)."""
    return " ".join(r for r in WORDS_ONLY if r in rules) or NONE


def load_text_crops(folder) -> "TextCrops | None":
    """The text crops a model or export folder declares (None if it reads none)."""
    from .preprocess import read_preprocessor_config

    return TextCrops.from_preprocessor_config(read_preprocessor_config(folder))
