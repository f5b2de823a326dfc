"""Layouts around the grid: an app screenshot, a newspaper page, a puzzle-book page.

A layout is planned in *units* (one unit = one cell of the puzzle) before any
pixel exists: the grid sits at (0, 0)-(n, n), and headers, rule text, page text
columns and buttons go around it. The camera is chosen on that plan (it must
keep the grid, the outside clues and any rule text that the model needs in view),
then the canvas is drawn at the resolution the camera asks for and only where
the camera looks, so a render costs about what its output pixels cost.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ...solver.constraints.cells import Even, Odd
from ...solver.constraints.groups import ExtraRegion, Windoku
from ...solver.puzzle import Puzzle
from . import text as T
from .damage import Camera, Damage, jpeg_quality, make_camera, photo_effects
from .draw import Ink, Look, OpenFour, draw_puzzle, needs_ring
from .fonts import HANDWRITING, Font, FontSet

Box = tuple[float, float, float, float]
Point = tuple[float, float]
RGB = tuple[int, int, int]
STYLES = ("app", "newspaper", "book")


# -- drawing in units ------------------------------------------------------------------


class Canvas:
    """Pixels of the part of a plan that the camera sees: px = (unit - origin) * scale."""

    def __init__(self, box: Box, scale: float, background: RGB) -> None:
        self.x0, self.y0 = box[0], box[1]
        self.scale = scale
        w = max(1, int(math.ceil((box[2] - box[0]) * scale)))
        h = max(1, int(math.ceil((box[3] - box[1]) * scale)))
        self.img = Image.new("RGB", (w, h), background)
        self.draw = ImageDraw.Draw(self.img)
        self.box = (box[0], box[1], box[0] + w / scale, box[1] + h / scale)
        self.camera: Camera | None = None  # units -> photo pixels, for culling what the photo cannot show
        # what the vision read-out is taught about the words (train/data.py text_labels), in canvas pixels: the grid's
        # top-left and side, and each line of text that names rules, with the rule groups it names
        self.grid_px: tuple[float, float, float] | None = None
        self.rule_lines: list[tuple[tuple[str, ...], Box]] = []
        self.texts: list[tuple[str, Box]] = []  # every word drawn (not the filler strips'): what text crops are taught

    def rows_in_view(self, x0: float, x1: float, ys: list[float], height: float) -> list[bool]:
        """Which text rows (x0..x1, y..y+height) the camera sees; all of those on the canvas without a camera."""
        if not ys:
            return []
        on_canvas = [self.sees((x0, y, x1, y + height)) for y in ys]
        if self.camera is None:
            return on_canvas
        w, h = self.camera.size
        pts = [(x, y + dy) for y in ys for x in (x0, x1) for dy in (0, height)]
        q = np.asarray(self.camera.forward_flat(pts)).reshape(len(ys), 4, 2)
        m = 8.0  # pixels of slack (the paper's bend is not in forward_flat)
        lo_x, hi_x = q[:, :, 0].min(1), q[:, :, 0].max(1)
        lo_y, hi_y = q[:, :, 1].min(1), q[:, :, 1].max(1)
        seen = (hi_x > -m) & (lo_x < w + m) & (hi_y > -m) & (lo_y < h + m)
        return [bool(a and b) for a, b in zip(on_canvas, seen)]

    def px(self, x: float, y: float) -> Point:
        return (x - self.x0) * self.scale, (y - self.y0) * self.scale

    def sees(self, b: Box) -> bool:
        return b[0] < self.box[2] and b[2] > self.box[0] and b[1] < self.box[3] and b[3] > self.box[1]

    def rect(self, b: Box, fill: RGB | None = None, outline: RGB | None = None, width: float = 0) -> None:
        (x0, y0), (x1, y1) = self.px(b[0], b[1]), self.px(b[2], b[3])
        wpx = max(1, int(round(width * self.scale))) if outline else 0
        self.draw.rectangle((x0, y0, x1, y1), fill=fill, outline=outline, width=wpx)

    def rounded(self, b: Box, radius: float, fill: RGB | None = None, outline: RGB | None = None, width: float = 0) -> None:
        (x0, y0), (x1, y1) = self.px(b[0], b[1]), self.px(b[2], b[3])
        wpx = max(1, int(round(width * self.scale))) if outline else 0
        self.draw.rounded_rectangle((x0, y0, x1, y1), radius=radius * self.scale, fill=fill, outline=outline, width=wpx)

    def ellipse(self, b: Box, fill: RGB | None = None, outline: RGB | None = None, width: float = 0) -> None:
        (x0, y0), (x1, y1) = self.px(b[0], b[1]), self.px(b[2], b[3])
        wpx = max(1, int(round(width * self.scale))) if outline else 0
        self.draw.ellipse((x0, y0, x1, y1), fill=fill, outline=outline, width=wpx)

    def line(self, pts: list[Point], fill: RGB, width: float) -> None:
        flat = [v for p in pts for v in self.px(*p)]
        self.draw.line(flat, fill=fill, width=max(1, int(round(width * self.scale))))

    def text(self, x: float, y: float, s: str, font: Font, size: float, fill: RGB, anchor: str = "la",
             groups: Sequence[str] = ()) -> None:
        """``groups``: the rule groups the words name (text.TEXT_GROUPS), noted with where they are drawn."""
        px = size * self.scale
        if px < 3:  # too small to rasterise: a grey smudge is what a camera sees (and no words to learn)
            w = text_width(font, s, size)
            self.rect((x, y + size * 0.25, x + w, y + size * 0.75), fill=_mix(fill, (200, 200, 200), 0.5))
            return
        self.draw.text(self.px(x, y), s, font=font.get(px), fill=fill, anchor=anchor)
        w = text_width(font, s, size)
        x0 = x - {"l": 0.0, "m": 0.5, "r": 1.0}[anchor[0]] * w
        y0 = y - {"a": 0.0, "t": 0.0, "m": 0.5, "s": 0.8, "b": 1.0, "d": 1.0}[anchor[1]] * size
        (a, b), (c, d) = self.px(x0, y0), self.px(x0 + w, y0 + size)
        for word in re.finditer(r"\S+", s):  # each word where it is: a line of text may be found in pieces
            left = x0 + text_width(font, s[:word.start()], size)
            (e, _), (f, _) = self.px(left, y0), self.px(left + text_width(font, word.group(), size), y0)
            self.texts.append((word.group(), (e, b, f, d)))
        if groups:
            self.rule_lines.append((tuple(groups), (a, b, c, d)))

    def _in_grid(self, box: Box) -> Box:
        assert self.grid_px is not None
        gx, gy, side = self.grid_px
        a, b, c, d = box
        return (a - gx) / side, (b - gy) / side, (c - gx) / side, (d - gy) / side

    def rule_lines_in_grid(self) -> list[tuple[tuple[str, ...], Box]]:
        """The noted lines of rule text with their boxes in the grid's unit square (the grid's side is 1), the frame
        a camera's perspective maps through the grid's corners; empty without a grid drawn."""
        if self.grid_px is None:
            return []
        return [(groups, self._in_grid(box)) for groups, box in self.rule_lines]

    def texts_in_grid(self) -> list[tuple[str, Box]]:
        """Every word drawn (not the filler columns' strips), in the order drawn, with its box in the grid's unit
        square; empty without a grid drawn."""
        if self.grid_px is None:
            return []
        return [(text, self._in_grid(box)) for text, box in self.texts]


def text_width(font: Font, s: str, size: float) -> float:
    return font.get(48).getlength(s) * size / 48


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


@dataclass
class Op:
    box: Box
    paint: Callable[[Canvas], None]


@dataclass
class Plan:
    """Everything placed around one grid, in units, before any pixel exists."""

    n: int
    background: RGB  # outside the page (table, desk, bezel)
    page: Box
    paper: RGB
    ops: list[Op] = field(default_factory=list)
    focus: Box = (0.0, 0.0, 0.0, 0.0)
    must_see: list[Point] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, box: Box, paint: Callable[[Canvas], None]) -> None:
        self.ops.append(Op(box, paint))

    def paint(self, canvas: Canvas) -> None:
        canvas.rect(self.page, fill=self.paper)
        for op in self.ops:
            if canvas.sees(op.box):
                op.paint(canvas)


def _union(*boxes: Box) -> Box:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _corners(b: Box) -> list[Point]:
    return [(b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3])]


# -- grid looks ---------------------------------------------------------------------------


@dataclass
class LookSpec:
    """A grid look with line widths as shares of a cell; :meth:`at` turns it into pixels."""

    thin: float
    thick: float
    outer: float
    ink: Ink
    digit_font: Font
    clue_font: Font
    digit_scale: float
    jitter: float
    cage_inset: float
    dash: float
    line_scale: float
    xv_box: bool
    open_four: OpenFour | None = None
    fills: tuple = ()
    pencil: tuple = ()

    def at(self, cell: float) -> Look:
        thin = max(1, int(round(self.thin * cell)))
        thick = max(thin + 1, int(round(self.thick * cell)))
        outer = max(thick, int(round(self.outer * cell)))
        return Look(cell=cell, thin=thin, thick=thick, outer=outer, ink=self.ink, digit_font=self.digit_font,
                    clue_font=self.clue_font, digit_scale=self.digit_scale, jitter=self.jitter,
                    cage_inset=self.cage_inset, cage_width=max(1, int(round(cell * 0.02))), dash=self.dash,
                    line_scale=self.line_scale, xv_box=self.xv_box, open_four=self.open_four, fills=self.fills,
                    pencil=self.pencil)


def _digit_scale(rng: random.Random, digit_font: Font, puzzle: Puzzle) -> float:
    """Glyph height as a share of the cell. Newspapers print small digits in big cells (about a third of the
    cell in the validation photos the model misread most), so printed grids up to 9x9 range down to 0.3;
    one draw either way, so the rest of a sample's look is what the same seed drew before this range."""
    u = rng.random()
    if digit_font.kind != HANDWRITING and puzzle.size <= 9:
        return 0.3 + 0.4 * u
    return 0.5 + 0.2 * u


def _digit_font(rng: random.Random, fonts: FontSet, handwriting: float) -> Font:
    return fonts.pick(rng, HANDWRITING if rng.random() < handwriting else "printed")


def _shading_rules(puzzle: Puzzle) -> bool:
    return any(isinstance(c, (Windoku, Odd, Even, ExtraRegion)) for c in puzzle.constraints)


def grid_look(rng: random.Random, fonts: FontSet, puzzle: Puzzle, *, paper: RGB, ink: RGB, given: RGB,
              handwriting: float, thin: tuple[float, float]) -> LookSpec:
    base = Ink()
    grey = _mix(paper, ink, rng.uniform(0.13, 0.2))  # odd/even shapes: lighter than thermometers
    colours = Ink(
        paper=paper, line=_mix(ink, paper, rng.uniform(0.0, 0.45)), border=ink, given=given, clue=ink, cage=ink,
        thermo=_mix(paper, (128, 128, 128), rng.uniform(0.5, 0.75)), arrow=_mix(paper, (90, 90, 90), rng.uniform(0.5, 0.8)),
        whisper=_mix(base.whisper, paper, rng.uniform(0.0, 0.25)), renban=_mix(base.renban, paper, rng.uniform(0.0, 0.25)),
        palindrome=_mix(paper, (128, 128, 128), 0.45), between=_mix(base.between, paper, 0.1),
        shade=grey if rng.random() < 0.7 else _mix(paper, (120, 150, 200), 0.35),
        window=_mix(paper, rng.choice(((128, 128, 128), (110, 150, 210), (230, 170, 90))), rng.uniform(0.2, 0.35)),
        region=_mix(paper, (150, 190, 120), 0.3),
        diagonal=rng.choice((ink, (90, 130, 200), _mix(ink, paper, 0.5))),
        dot_black=ink, dot_white=paper,
        highlight=_mix(paper, (120, 170, 230), 0.2), selected=_mix(paper, (90, 160, 240), 0.4),
        pencil=_mix(ink, paper, 0.35),
    )
    thin_w = rng.uniform(*thin)
    thick_w = thin_w * rng.uniform(2.2, 4.0)
    digit_font = _digit_font(rng, fonts, handwriting)
    clue_font = fonts.pick_where(rng, lambda f: not f.is_serif_like()) if rng.random() < 0.8 else fonts.pick(rng)
    return LookSpec(
        thin=thin_w, thick=thick_w, outer=thick_w * rng.uniform(1.0, 1.6), ink=colours,
        digit_font=digit_font, clue_font=clue_font, digit_scale=_digit_scale(rng, digit_font, puzzle),
        jitter=rng.uniform(0.02, 0.07) if digit_font.kind == HANDWRITING else 0.0,
        cage_inset=rng.uniform(0.07, 0.13), dash=rng.uniform(0.06, 0.12), line_scale=rng.uniform(0.8, 1.2),
        xv_box=rng.random() < 0.7, open_four=_open_four(rng, digit_font),
    )


def _open_four(rng: random.Random, digit_font: Font) -> OpenFour | None:
    """A quarter of the grids in a sans face draw open-topped 4s (drawn last: the look's other draws stay)."""
    if digit_font.kind == HANDWRITING or digit_font.is_serif_like() or rng.random() >= 0.25:
        return None
    bold = digit_font.name.endswith(("Bold", "Demi"))
    return OpenFour(apex=rng.uniform(0.05, 0.5), bar=rng.uniform(0.62, 0.76), stem=rng.uniform(0.6, 0.76),
                    stem_top=rng.uniform(0.15, 0.45), stroke=rng.uniform(0.12, 0.17) if bold else rng.uniform(0.08, 0.12))


def _puzzle_op(plan: Plan, puzzle: Puzzle, spec: LookSpec, origin: Point, rng: random.Random, *,
               main: bool = True) -> None:
    """``main``: the picture's puzzle, whose grid the rule lines are noted against (not a neighbouring one)."""
    n = puzzle.size
    ring = 1.0 if needs_ring(puzzle) else 0.0
    seed = rng.getrandbits(64)

    def paint(c: Canvas) -> None:
        x, y = c.px(*origin)
        if main:
            c.grid_px = (x, y, n * c.scale)
        glyphs: list = []
        draw_puzzle(c.img, x, y, puzzle, spec.at(c.scale), random.Random(seed), glyphs)
        if glyphs:  # (the same at every scale: they are in the grid's unit square)
            plan.details["clue_glyphs"] = glyphs

    ox, oy = origin
    plan.add((ox - ring - 0.2, oy - ring - 0.2, ox + n + ring + 0.2, oy + n + ring + 0.2), paint)


# -- rule text -------------------------------------------------------------------------------


def _rules_block(plan: Plan, puzzle: Puzzle, rng: random.Random, fonts: FontSet, x: float, y: float, width: float,
                 size: float, ink: RGB, *, required: bool, classic_text: bool = False) -> float:
    """Title and rule sentences in a column; returns its height (0 when nothing is shown)."""
    head_groups: tuple[str, ...] = ()
    if puzzle.constraints or puzzle.box is None:
        said = T.rule_sentences(puzzle, rng, visible_too=True) if (required or rng.random() < 0.8) else \
            T.rule_sentences(puzzle, rng, visible_too=False)
        head = T.title(puzzle, rng)
        head_groups = T.title_groups(puzzle)
    elif classic_text:
        said = [(None, rng.choice(T.CLASSIC_INSTRUCTIONS)) if puzzle.size == 9 else T.rule_sentences(puzzle, rng)[0]]
        head = ""
    else:
        return 0.0
    lines = [text for _group, text in said]
    body_font = fonts.pick_where(rng, lambda f: True)
    title_font = fonts.pick_where(rng, lambda f: "Bold" in f.name or "Demi" in f.name)
    tsize = size * rng.uniform(1.2, 1.6)
    if head and text_width(title_font, head, tsize) > width:
        tsize *= width / text_width(title_font, head, tsize)
    wrapped: list[str] = []
    for s in lines if rng.random() < 0.5 else [" ".join(lines)]:
        wrapped += T.wrap(s, lambda t: text_width(body_font, t, size) <= width)
    line_groups = _groups_of_lines(said, wrapped)
    lead = size * rng.uniform(1.15, 1.35)
    height = (tsize * 1.4 if head else 0) + lead * len(wrapped)
    y0 = y

    def paint(c: Canvas) -> None:
        yy = y0
        if head:
            c.text(x, yy, head, title_font, tsize, ink, groups=head_groups)
            yy += tsize * 1.4
        for ln, groups in zip(wrapped, line_groups):
            c.text(x, yy, ln, body_font, size, ink, groups=groups)
            yy += lead

    plan.add((x, y, x + width, y + height), paint)
    plan.details["rules_text"] = bool(head or wrapped)
    if head and required:  # (required text is kept in the picture: the title drill's answer, train/data.py)
        plan.details["rules_title"] = head
    return height


def _groups_of_lines(said: Sequence[tuple[str | None, str]], wrapped: Sequence[str]) -> list[tuple[str, ...]]:
    """The rule groups each wrapped line states: those of the sentences it has words of (wrapping keeps the
    sentences' words in order, whether they were wrapped one by one or as one paragraph)."""
    owner = [group for group, text in said for _word in text.split()]
    out, k = [], 0
    for line in wrapped:
        words = len(line.split())
        out.append(tuple(dict.fromkeys(g for g in owner[k:k + words] if g is not None)))
        k += words
    return out


# -- filler ----------------------------------------------------------------------------------


STRIP_PX = 24  # filler lines are rasterised once per font at this size, then scaled


@lru_cache(maxsize=64)
def _filler_strips(font: Font) -> list[tuple[Image.Image, list[int]]]:
    """Long lines of filler text as masks, with the x of each word gap (the same for every image)."""
    r = random.Random(f"filler:{font.name}")
    f = font.get(STRIP_PX)
    out = []
    for _ in range(24):
        line = T.filler_line(r, 160)
        ascent, descent = f.getmetrics()
        mask = Image.new("L", (int(f.getlength(line)) + 2, ascent + descent), 0)
        ImageDraw.Draw(mask).text((0, 0), line, font=f, fill=255)
        space, x, gaps = f.getlength(" "), 0.0, []
        for word in line.split(" "):
            x += f.getlength(word)
            gaps.append(int(x))
            x += space
        out.append((mask, gaps))
    return out


def _filler(c: Canvas, x: float, y: float, width: float, size: float, font: Font, ink: RGB, r: random.Random) -> None:
    """One line of filler text, cut at a word gap to fit ``width`` (units)."""
    if size * c.scale < 3:
        c.rect((x, y + size * 0.3, x + width * r.uniform(0.7, 1.0), y + size * 0.8), fill=_mix(ink, (200, 200, 200), 0.5))
        return
    px = size * c.scale
    strips = _scaled_strips(font, int(round(1.1 ** round(math.log(px, 1.1)))))  # sizes in 10% steps: cache hits
    mask, gaps = r.choice(strips)
    limit = width * c.scale
    # start after a random word (so lines do not all begin alike), end at the last word that fits
    starts = [0] + [g + 1 for g in gaps if g + 1 + limit <= mask.width]
    start = starts[r.randrange(len(starts))] if len(starts) > 1 else 0
    start = start + (c.scale * size * 0.25 if start else 0)  # skip the space itself
    cut = max((g for g in gaps if start < g <= start + limit), default=0)
    if cut - start < limit * 0.5:
        return
    px, py = c.px(x, y)
    piece = mask.crop((int(start), 0, int(cut), mask.height))
    c.draw.bitmap((int(round(px)), int(round(py))), piece, fill=ink)


@lru_cache(maxsize=512)
def _scaled_strips(font: Font, px: int) -> list[tuple[Image.Image, list[int]]]:
    """The filler strips at ``px`` pixels (scaling the masks once per font and size, not per line)."""
    k = px / STRIP_PX
    out = []
    for mask, gaps in _filler_strips(font):
        size = (max(1, int(round(mask.width * k))), max(1, int(round(mask.height * k))))
        out.append((mask.resize(size, Image.Resampling.BILINEAR), [int(g * k) for g in gaps]))
    return out


def _text_column(plan: Plan, rng: random.Random, fonts: FontSet, box: Box, size: float, ink: RGB, view: Box) -> None:
    """Newspaper text in ``box``; only lines that the camera may see are drawn."""
    font = fonts.pick_where(rng, lambda f: True)
    lead = size * rng.uniform(1.15, 1.3)
    width = box[2] - box[0]
    seed = rng.getrandbits(64)
    heading = rng.random() < 0.4

    def paint(c: Canvas) -> None:
        r = random.Random(seed)
        y = box[1]
        if heading:
            c.text(box[0], y, T.filler_line(r, max(4, int(width / size))).title(), font, size * 1.5, ink)
            y += size * 2.0
        ys = []
        while y + size < box[3]:
            ys.append(y)
            y += lead
        shown = c.rows_in_view(box[0], box[2], ys, lead)
        for y, show in zip(ys, shown):
            w = width * (r.uniform(0.3, 0.9) if r.random() < 0.12 else 1.0)
            if show:
                _filler(c, box[0], y, w, size, font, ink, r)

    plan.add(box, paint)


def _second_grid(plan: Plan, rng: random.Random, fonts: FontSet, n: int, origin: Point, spec: LookSpec) -> tuple[Box, Op]:
    """A neighbouring puzzle (random digits) that the photo should only partly show (checked later)."""
    givens = [[rng.randint(1, n) if rng.random() < 0.3 else 0 for _ in range(n)] for _ in range(n)]
    other = Puzzle.create(n, givens)
    _puzzle_op(plan, other, spec, origin, rng, main=False)
    return (origin[0], origin[1], origin[0] + n, origin[1] + n), plan.ops[-1]


# -- output sizes ------------------------------------------------------------------------------


def photo_size(rng: random.Random) -> tuple[int, int]:
    """Output sizes like the phone photos: mostly 640x480, some 960x1280, others 320..1280."""
    r = rng.random()
    if r < 0.45:
        return 640, 480
    if r < 0.55:
        return 480, 640
    if r < 0.7:
        return 960, 1280
    if r < 0.75:
        return 1280, 960
    long_side = rng.randint(320, 1280)
    aspect = rng.choice((4 / 3, 3 / 4, 16 / 9, 9 / 16, 1.0, 3 / 2, 2 / 3))
    return (long_side, int(long_side / aspect)) if aspect >= 1 else (int(long_side * aspect), long_side)


#: Long sides (pixels) of the small photos compose(small=True) draws.
SMALL_LONG_SIDE = (240, 480)


def small_photo_size(size: tuple[int, int], rng: random.Random) -> tuple[int, int]:
    """``size`` shrunk to a long side in SMALL_LONG_SIDE, same shape: a thumbnail, an old phone, a far shot."""
    k = min(1.0, rng.randint(*SMALL_LONG_SIDE) / max(size))
    return max(64, round(size[0] * k)), max(64, round(size[1] * k))


# -- the three layouts -------------------------------------------------------------------------


def plan_newspaper(puzzle: Puzzle, rng: random.Random, fonts: FontSet, *, book: bool = False,
                   landscape: bool = True) -> tuple[Plan, LookSpec]:
    n = puzzle.size
    U = n / 9  # one "9x9 cell": type sizes scale with the grid, not the cell
    if book:
        paper = _mix((255, 255, 255), (240, 228, 200), rng.uniform(0, 0.7))
        ink = tuple(rng.randint(10, 40) for _ in range(3))
    else:
        grey = rng.uniform(0, 0.6)
        paper = _mix((250, 248, 242), (222, 220, 212), grey)
        ink = tuple(rng.randint(15, 50) for _ in range(3))
    ink = ink  # type: ignore[assignment]
    given = ink if rng.random() < 0.8 else rng.choice(((200, 45, 45), (30, 60, 150), (60, 60, 60)))
    table = rng.choice(((92, 64, 42), (120, 120, 118), (35, 35, 38), (215, 212, 205), (160, 130, 100)))
    margin = [rng.uniform(1.0, 12.0) * U for _ in range(4)]  # page edge distance: left, top, right, bottom
    ring = 1.0 if needs_ring(puzzle) else 0.0
    page = (-ring - margin[0], -ring - margin[1] - 3 * U, n + ring + margin[2], n + ring + margin[3] + 2 * U)
    plan = Plan(n=n, background=table, page=page, paper=paper)
    spec = grid_look(rng, fonts, puzzle, paper=paper, ink=ink, given=given,
                     handwriting=0.06 if not book else 0.1, thin=(0.012, 0.035))
    if not book and not puzzle.constraints and puzzle.box is not None and rng.random() < 0.15:
        # some papers tint a few cells (a design touch, meaningless for a classic puzzle)
        tint = _mix(paper, rng.choice(((120, 170, 230), (150, 210, 150), (240, 200, 120))), 0.45)
        r0, c0 = rng.randrange(n), rng.randrange(n - 2)
        spec.fills = (tuple((r0, c0 + k) for k in range(rng.randint(2, 3))), tint),
    _puzzle_op(plan, puzzle, spec, (0.0, 0.0), rng)
    grid_box = (-ring, -ring, n + ring, n + ring)
    must = _corners(grid_box)

    # header above the grid
    header_font = fonts.pick_where(rng, lambda f: ("Bold" in f.name or "Demi" in f.name) or book)
    top = -ring - 0.3 * U
    bar = rng.random() < 0.5 and not book
    bar_colour = rng.choice(((40, 90, 170), (200, 45, 45), (230, 120, 30), (30, 30, 30)))
    hsize = rng.uniform(0.7, 1.2) * U
    titled = bool(puzzle.constraints) and rng.random() < 0.5
    head = T.title(puzzle, rng) if titled else T.headline(rng)
    if book:
        picked = rng.choice((f"Puzzle {rng.randint(1, 400)}", f"#{rng.randint(1, 400)}", head))
        titled, head = titled and picked is head, picked
    head_groups = T.title_groups(puzzle) if titled else ()
    number = T.puzzle_number(rng) if rng.random() < 0.6 else ""
    level = T.difficulty(rng) if rng.random() < 0.5 else ""
    y_head = top - hsize * 1.3 - (0.25 * U if bar else 0)
    rng_bar_text = rng.random() < 0.4

    small = hsize * 0.45
    head_w = text_width(header_font, head, hsize)
    side_w = max(text_width(header_font, number, small), text_width(header_font, level, small))
    width_all = n + 2 * ring
    if head_w > width_all:  # long titles shrink to the grid's width
        hsize *= width_all / head_w
        head_w = width_all
    stacked = head_w + side_w + 0.3 * U > width_all  # no room beside the title: number and level go above it
    side_y = y_head - 2.4 * small if stacked else y_head - small * 0.2

    def paint_header(c: Canvas) -> None:
        c.text(-ring, y_head, head, header_font, hsize, bar_colour if bar and rng_bar_text else ink, groups=head_groups)
        if bar:
            c.rect((-ring, top - 0.22 * U, n + ring, top - 0.1 * U), fill=bar_colour)
        if number:
            c.text(n + ring - text_width(header_font, number, small), side_y + small * 1.2, number, header_font, small, ink)
        if level:
            c.text(n + ring - text_width(header_font, level, small), side_y, level, header_font, small, ink)

    plan.add((-ring, min(y_head, side_y) - hsize, n + ring, top), paint_header)

    # rules or instructions: above the grid (pushing the header up), below it, or to the right
    required = T.must_explain(puzzle)
    tsize = rng.uniform(0.38, 0.5) * U if not required else rng.uniform(0.45, 0.55) * U
    if required:  # rule text the model must read: put it where the photo has room
        where = "right" if landscape else "below"
    else:
        where = rng.choice(("below", "right", "below"))
    rules_box = None
    show = required or rng.random() < (0.45 if puzzle.constraints or puzzle.box is None else 0.3)
    if show:
        if where == "right":
            x, y, width = n + ring + 0.5 * U, -ring, rng.uniform(3.0, 4.5) * U
        else:
            x, y, width = -ring, n + ring + 0.35 * U, n + 2 * ring
        h = _rules_block(plan, puzzle, rng, fonts, x, y, width, tsize, ink, required=required, classic_text=True)
        if h:
            rules_box = (x, y, x + width, y + h)
            if required:
                must += _corners(rules_box)
    plan.details["rules_box"] = rules_box
    if rules_box:  # the page holds the text
        m = 1.0 * U
        plan.page = (min(plan.page[0], rules_box[0] - m), plan.page[1], max(plan.page[2], rules_box[2] + m),
                     max(plan.page[3], rules_box[3] + m))
    plan.details["required"] = required
    plan.details["text_size"] = tsize
    plan.focus = _union(grid_box, rules_box) if (rules_box and required) else grid_box
    plan.must_see = must

    # credit line under the grid
    if rng.random() < 0.4 and not (rules_box and where == "below"):
        credit = rng.choice(("© Conceptis Puzzles", "Solution tomorrow", "Lösung in der nächsten Ausgabe",
                             "Solution page 24", "Solutions des jeux d'hier", f"{rng.randint(10000000, 99999999)}"))
        cfont = fonts.pick(rng)
        cs = 0.25 * U

        def paint_credit(c: Canvas) -> None:
            c.text(-ring, n + ring + 0.15 * U, credit, cfont, cs, ink)

        plan.add((-ring, n + ring, n + ring, n + ring + 0.5 * U), paint_credit)
    if book and rng.random() < 0.7:
        pnum = str(rng.randint(3, 250))
        pfont = fonts.pick(rng)

        bottom_edge = plan.page[3]

        def paint_page_number(c: Canvas) -> None:
            c.text(n / 2, bottom_edge - 1.2 * U, pnum, pfont, 0.35 * U, ink, anchor="ma")

        plan.add((n / 2 - U, bottom_edge - 1.5 * U, n / 2 + U, bottom_edge), paint_page_number)
    plan.details.update(spec=spec, ink=ink, book=book, where=where, header_top=min(y_head, side_y) - hsize)
    return plan, spec


def decorate_page(plan: Plan, puzzle: Puzzle, rng: random.Random, fonts: FontSet, view: Box, spec: LookSpec) -> None:
    """Text columns and neighbouring puzzles where the camera sees the page (after the camera is known)."""
    n = plan.n
    U = n / 9
    ink = plan.details["ink"]
    ring = 1.0 if needs_ring(puzzle) else 0.0
    rules_box = plan.details.get("rules_box")
    size = rng.uniform(0.26, 0.36) * U
    gap = rng.uniform(0.4, 0.8) * U
    page = plan.page
    col_w = rng.uniform(2.5, 4.5) * U
    occupied_right = rules_box[2] if rules_box and plan.details["where"] == "right" else n + ring
    bottom = max(n + ring, rules_box[3] if rules_box else n + ring) + 0.6 * U
    if plan.details["book"]:
        if rng.random() < 0.5:  # a second puzzle on the page, below or to the right, partly in view
            spec2 = spec
            if rng.random() < 0.5:
                origin = (0.0, bottom + 1.2 * U)
            else:
                origin = (occupied_right + 1.5 * U, 0.0)
            plan.details["second_grid"] = _second_grid(plan, rng, fonts, n, origin, spec2)
        return
    # columns left of the grid
    x = -ring - gap
    while x > max(page[0], view[0]) and rng.random() < 0.95:
        _text_column(plan, rng, fonts, (x - col_w, page[1] + U, x, page[3] - U), size, ink, view)
        rule_x = x - col_w - gap / 2

        def paint_rule(c: Canvas, rx=rule_x) -> None:
            c.line([(rx, page[1] + U), (rx, page[3] - U)], ink, 0.03 * U)

        if rng.random() < 0.5:
            plan.add((rule_x - 0.1, page[1], rule_x + 0.1, page[3]), paint_rule)
        x -= col_w + gap
    # columns right of the grid (or of the rules)
    x = occupied_right + gap
    while x < min(page[2], view[2]) and rng.random() < 0.95:
        _text_column(plan, rng, fonts, (x, page[1] + U, x + col_w, page[3] - U), size, ink, view)
        x += col_w + gap
    # below: a neighbouring puzzle, or more text
    if rng.random() < 0.35:
        origin = (rng.uniform(-2, 2) * U, bottom + rng.uniform(0.8, 2.0) * U)
        plan.details["second_grid"] = _second_grid(plan, rng, fonts, n, origin, spec)
    else:
        _text_column(plan, rng, fonts, (-ring, bottom, occupied_right, page[3] - U), size, ink, view)
    # above the header
    top = plan.details["header_top"] - gap
    if top > page[1] + U:
        _text_column(plan, rng, fonts, (-ring, page[1] + U, occupied_right, top), size, ink, view)


def plan_app(puzzle: Puzzle, rng: random.Random, fonts: FontSet) -> tuple[Plan, LookSpec, tuple[int, int]]:
    """A phone (portrait) or tablet/desktop (landscape) screenshot; returns the plan, look and pixel size."""
    n = puzzle.size
    U = n / 9
    theme = rng.choices(("light", "dark", "sepia", "blue"), (50, 22, 14, 14))[0]
    if theme == "light":
        bg, paper, ink = rng.choice(((255, 255, 255), (246, 247, 251), (240, 240, 240))), (255, 255, 255), (20, 20, 20)
        accent = rng.choice(((50, 100, 200), (40, 150, 110), (120, 80, 200), (230, 90, 40)))
    elif theme == "dark":
        bg = rng.choice(((18, 18, 18), (30, 30, 36), (22, 26, 34)))
        paper, ink, accent = _mix(bg, (255, 255, 255), 0.06), (215, 215, 220), (110, 160, 255)
    elif theme == "sepia":
        bg, paper, ink, accent = (244, 236, 216), (250, 244, 228), (70, 50, 35), (160, 90, 40)
    else:
        bg, paper, ink, accent = (226, 236, 248), (255, 255, 255), (25, 45, 90), (40, 90, 200)
    given = ink if rng.random() < 0.6 else (accent if theme != "dark" else (235, 235, 240))
    if rng.random() < 0.2 and theme != "dark":
        given = (30, 60, 160)
    spec = grid_look(rng, fonts, puzzle, paper=paper, ink=ink, given=given, handwriting=0.12,
                     thin=(0.01, 0.03))
    if theme == "dark":
        spec.ink = Ink(**{**spec.ink.__dict__, "dot_black": (5, 5, 5), "dot_white": (235, 235, 235),
                          "line": _mix(paper, ink, 0.35), "thermo": _mix(paper, (255, 255, 255), 0.25),
                          "shade": _mix(paper, (150, 170, 255), 0.28), "window": _mix(paper, (120, 160, 255), 0.3),
                          "highlight": _mix(paper, (120, 160, 255), 0.15), "selected": _mix(paper, (120, 160, 255), 0.35)})
    if not _shading_rules(puzzle) and rng.random() < 0.5:
        r0, c0 = rng.randrange(n), rng.randrange(n)
        same = [(r, c) for r in range(n) for c in range(n) if puzzle.givens[r][c] and puzzle.givens[r][c] == puzzle.givens[r0][c0]]
        band = [(r0, c) for c in range(n)] + [(r, c0) for r in range(n)]
        if puzzle.box is not None:
            br, bc = puzzle.box
            band += [(r, c) for r in range(r0 // br * br, r0 // br * br + br) for c in range(c0 // bc * bc, c0 // bc * bc + bc)]
        spec.fills = ((tuple(band), spec.ink.highlight), (tuple(same), spec.ink.selected), (((r0, c0),), spec.ink.selected))
    if rng.random() < 0.25 and n <= 9 and not any(c.rule == "killer" for c in puzzle.constraints):
        empties = [(r, c) for r in range(n) for c in range(n) if not puzzle.givens[r][c]]
        marks = rng.sample(empties, min(len(empties), int(len(empties) * rng.uniform(0.05, 0.3))))
        spec.pencil = tuple((cell, tuple(sorted(rng.sample(range(1, n + 1), rng.randint(1, 4))))) for cell in marks)

    ui = fonts.pick_where(rng, lambda f: not f.is_serif_like())
    ui_bold = fonts.pick_where(rng, lambda f: ("Bold" in f.name or "Demi" in f.name) and not f.is_serif_like())
    ring = 1.0 if needs_ring(puzzle) else 0.0
    portrait = rng.random() < 0.65
    m = rng.uniform(0.15, 0.6) * U + ring
    required = T.must_explain(puzzle)
    show_rules = required or rng.random() < 0.45
    rules_text = False
    rules_title = None
    tsize = rng.uniform(0.32, 0.42) * U
    if portrait:
        width = n + 2 * m
        y = 0.0
        plan_ops: list[tuple[Box, Callable[[Canvas], None]]] = []
        # status bar
        sb = 0.55 * U
        clock = f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}"
        plan_ops.append(((0, 0, width, sb), lambda c, clock=clock: (
            c.text(0.3 * U, 0.12 * U, clock, ui_bold, 0.3 * U, ink),
            c.rect((width - 0.9 * U, 0.17 * U, width - 0.35 * U, 0.4 * U), outline=ink, width=0.03 * U))))
        y = sb
        titled = bool(puzzle.constraints) and rng.random() < 0.6
        head = T.title(puzzle, rng) if titled else rng.choice(
            ("Sudoku", "Sudoku", "Classic Sudoku", "Daily Challenge", "Sudoku Master", f"Level {rng.randint(1, 300)}"))
        head_groups = T.title_groups(puzzle) if titled else ()
        hh = rng.uniform(0.9, 1.3) * U
        plan_ops.append(((0, y, width, y + hh), lambda c, y=y, head=head, groups=head_groups: (
            c.text(width / 2, y + hh / 2, head, ui_bold, 0.45 * U, ink, anchor="mm", groups=groups),
            c.text(0.3 * U, y + hh / 2, "<", ui_bold, 0.5 * U, ink, anchor="lm"))))
        y += hh
        info = [T.difficulty(rng).split(": ")[-1], f"Mistakes: {rng.randint(0, 2)}/3", f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"]
        ih = 0.7 * U
        plan_ops.append(((0, y, width, y + ih), lambda c, y=y, info=info: [
            c.text(m + k * (n / 2), y + ih / 2, s, ui, 0.28 * U, _mix(ink, bg, 0.35), anchor=("lm", "mm", "rm")[k])
            for k, s in enumerate(info)]))
        y += ih
        gy = y + ring
        y += n + 2 * ring + 0.3 * U
        rules_box = None
        if show_rules:
            sub = Plan(n=n, background=bg, page=(0, 0, 0, 0), paper=paper)
            h = _rules_block(sub, puzzle, rng, fonts, m - ring, y, n + 2 * ring, tsize, ink, required=required)
            if h:
                plan_ops += [(op.box, op.paint) for op in sub.ops]
                rules_text = sub.details.get("rules_text", False)
                rules_title = sub.details.get("rules_title")
                rules_box = (m - ring, y, m + n + ring, y + h)
                y += h + 0.3 * U
        # tool buttons and number pad
        tools = rng.sample(["Undo", "Erase", "Notes", "Hint", "Pencil", "Check"], 4)
        th = 1.1 * U
        plan_ops.append(((0, y, width, y + th), lambda c, y=y, tools=tools: [
            (c.ellipse((m + (k + 0.5) * n / 4 - 0.3 * U, y, m + (k + 0.5) * n / 4 + 0.3 * U, y + 0.6 * U), outline=_mix(ink, bg, 0.4), width=0.04 * U),
             c.text(m + (k + 0.5) * n / 4, y + 0.85 * U, t, ui, 0.24 * U, _mix(ink, bg, 0.3), anchor="mm"))
            for k, t in enumerate(tools)]))
        y += th + 0.2 * U
        per_row = n if n <= 9 else 8
        rows = math.ceil(n / per_row)
        kw = n / per_row
        ph = rows * kw * 1.1
        pad_style = rng.choice(("plain", "boxed"))
        plan_ops.append(((0, y, width, y + ph), lambda c, y=y: [
            (c.rounded((m + (k % per_row) * kw + 0.05, y + (k // per_row) * kw * 1.1, m + (k % per_row + 1) * kw - 0.05,
                        y + (k // per_row) * kw * 1.1 + kw), 0.15 * kw, fill=_mix(bg, accent, 0.12)) if pad_style == "boxed" else None,
             c.text(m + (k % per_row + 0.5) * kw, y + (k // per_row) * kw * 1.1 + kw / 2, puzzle.alphabet.symbols[k], ui,
                    0.6 * kw, accent, anchor="mm"))
            for k in range(n)]))
        y += ph + 0.4 * U
        height = max(y, width * rng.uniform(1.75, 2.1))
        gx = m
    else:
        side = rng.uniform(4.0, 6.0) * U
        width = n + 2 * m + side
        gx, gy = m, m + 0.8 * U
        plan_ops = []
        titled = bool(puzzle.constraints) or rng.random() < 0.5
        head = T.title(puzzle, rng) if titled else "Sudoku"
        head_groups = T.title_groups(puzzle) if titled else ()
        plan_ops.append(((0, 0, width, 0.8 * U), lambda c, head=head, groups=head_groups: c.text(
            m, 0.15 * U, head, ui_bold, 0.45 * U, ink, groups=groups)))
        rules_box = None
        px0 = gx + n + ring + 0.5 * U
        y = gy - ring
        if show_rules:
            sub = Plan(n=n, background=bg, page=(0, 0, 0, 0), paper=paper)
            h = _rules_block(sub, puzzle, rng, fonts, px0, y, side - 0.8 * U, tsize, ink, required=required)
            if h:
                plan_ops += [(op.box, op.paint) for op in sub.ops]
                rules_text = sub.details.get("rules_text", False)
                rules_title = sub.details.get("rules_title")
                rules_box = (px0, y, px0 + side - 0.8 * U, y + h)
                y += h + 0.4 * U
        cols = 3 if n <= 9 else 4
        k_side = min((side - 0.8 * U) / cols, 1.2 * U)
        keys = n
        plan_ops.append(((px0, y, width, y + math.ceil(n / cols) * k_side), lambda c, y=y: [
            (c.rounded((px0 + (k % cols) * k_side + 0.04, y + (k // cols) * k_side + 0.04, px0 + (k % cols + 1) * k_side - 0.04,
                        y + (k // cols + 1) * k_side - 0.04), 0.1 * k_side, fill=_mix(bg, accent, 0.15)),
             c.text(px0 + (k % cols + 0.5) * k_side, y + (k // cols + 0.5) * k_side, puzzle.alphabet.symbols[k], ui, 0.55 * k_side, accent, anchor="mm"))
            for k in range(keys)]))
        y += math.ceil(n / cols) * k_side
        height = max(gy + n + ring + m, y + m, width * rng.uniform(0.56, 0.8))
    plan = Plan(n=n, background=bg, page=(-gx, -gy, width - gx, height - gy), paper=bg)
    for box, paint in plan_ops:  # chrome was placed with the screen's top-left at (0, 0): shift to grid units
        plan.add((box[0] - gx, box[1] - gy, box[2] - gx, box[3] - gy), _shifted(paint, gx, gy))
    _puzzle_op(plan, puzzle, spec, (0.0, 0.0), rng)
    grid_box = (-ring, -ring, n + ring, n + ring)
    plan.focus = grid_box
    plan.must_see = _corners(grid_box)
    if rules_box:
        rb = (rules_box[0] - gx, rules_box[1] - gy, rules_box[2] - gx, rules_box[3] - gy)
        plan.details["rules_box"] = rb
        if required:
            plan.must_see += _corners(rb)
    plan.details["theme"] = theme
    plan.details["rules_text"] = rules_text
    plan.details["rules_title"] = rules_title
    # pixel size: phones 360..720 wide, tablets and desktops 640..1280 wide, long side at most 1280
    pw = rng.randint(360, 720) if portrait else rng.randint(640, 1280)
    ph = pw * height / width
    if max(pw, ph) > 1280:
        k = 1280 / max(pw, ph)
        pw, ph = pw * k, ph * k
    if max(pw, ph) < 320:
        k = 320 / max(pw, ph)
        pw, ph = pw * k, ph * k
    return plan, spec, (int(round(pw)), int(round(ph)))


def _shifted(paint: Callable[[Canvas], Any], dx: float, dy: float) -> Callable[[Canvas], None]:
    """Paint something placed in screen coordinates on a canvas in grid units."""

    def run(c: Canvas) -> None:
        c.x0 += dx
        c.y0 += dy
        try:
            paint(c)
        finally:
            c.x0 -= dx
            c.y0 -= dy

    return run


# -- composing ----------------------------------------------------------------------------------


@dataclass
class Scene:
    image: Image.Image
    corners: list[Point]
    font: str
    details: dict[str, Any]
    jpeg_quality: int | None = None  # compress at this quality (the caller does it: once, when saving)


def _cell_px(cam: Camera, n: int) -> float:
    """Output pixels per unit near the grid centre (the camera's local scale)."""
    c = n / 2
    p = np.array(cam.forward([(c - 0.5, c - 0.5), (c + 0.5, c - 0.5), (c - 0.5, c + 0.5)]))
    ex, ey = p[1] - p[0], p[2] - p[0]
    return float(math.sqrt(abs(ex[0] * ey[1] - ex[1] * ey[0])))


def compose(puzzle: Puzzle, rng: random.Random, style: str, fonts: FontSet, *, small: bool = False) -> Scene:
    """The picture of ``puzzle`` in ``style``. ``small``: a newspaper or book photo at a long side of 240-480 px
    (small_photo_size), where its grid's cells come out at 10-40 px (training's Mix.small_pictures); screenshots
    keep their size. Off, no draw is made for it, so the pictures of every seed stay as they were."""
    if style == "app":
        return _compose_app(puzzle, rng, fonts)
    book = style == "book"
    final = photo_size(rng)
    if small:
        final = small_photo_size(final, rng)
    plan, spec = plan_newspaper(puzzle, rng, fonts, book=book, landscape=final[0] >= final[1])
    required = plan.details["required"]
    # big photos are often soft: work at a fraction of the size, scale up at the end (and save the time)
    if final[0] * final[1] > 350_000:
        q = rng.uniform(1.2, 2.0) if rng.random() < 0.7 else 1.0
    else:
        q = rng.uniform(1.1, 1.5) if rng.random() < 0.4 else 1.0
    n = puzzle.size
    scan = book and rng.random() < 0.3
    fill = (0.82, 0.96) if required else (0.5, 0.9) if book else (0.55, 0.95)
    camera_args = dict(
        max_rotation=3.0 if scan else 15.0, tilt=0.0 if scan else rng.choice((0.03, 0.07, 0.12)),
        bend=0.0 if scan or rng.random() < 0.5 else rng.uniform(0.004, 0.02),
    )
    size = (int(round(final[0] / q)), int(round(final[1] / q)))
    cam_units = make_camera(rng, size, plan.focus, plan.must_see, fill=fill, **camera_args)
    # legibility: a cell at least ~14 px in the photo (12 on 16x16), rule text at least ~11 px
    need = 12.0 if n > 9 else 14.0
    if required:
        need = max(need, 11.0 / plan.details["text_size"])  # text size is in units (cells)
    if _cell_px(cam_units, n) * q < need:
        q = 1.0
        size = final
        cam_units = make_camera(rng, size, plan.focus, plan.must_see, fill=(0.9, 0.97), **camera_args)
    legible = min(1.0, max(0.0, (_cell_px(cam_units, n) * q - need) / (1.5 * need)))
    cell_px = _cell_px(cam_units, n)
    # canvas px per unit: a little above the photo's, or below it for a soft (out of focus) photo
    soft = rng.random() < 0.3 * legible
    scale = max(6.0, cell_px * (rng.uniform(0.6, 0.9) if soft else rng.uniform(1.0, 1.35)))
    view = cam_units.visible_box(margin=0.5)
    page = plan.page
    view = (max(view[0], page[0]), max(view[1], page[1]), min(view[2], page[2]), min(view[3], page[3]))
    # a steep view sees far across the page: cap the canvas at ~2.5x the photo's pixels (far parts shrink anyway)
    area = (view[2] - view[0]) * (view[3] - view[1]) * scale * scale
    limit = 2.5 * size[0] * size[1]
    if area > limit:
        scale = max(0.85 * cell_px, scale * math.sqrt(limit / area), 6.0)
    decorate_page(plan, puzzle, rng, fonts, view, spec)
    second = plan.details.pop("second_grid", None)
    if second is not None:  # keep it partial: a second whole grid would make the picture ambiguous
        box, op = second
        lattice = [(box[0] + (box[2] - box[0]) * i / 6, box[1] + (box[3] - box[1]) * j / 6) for i in range(7) for j in range(7)]
        seen = sum(1 for x, y in cam_units.forward(lattice) if 0 <= x <= size[0] and 0 <= y <= size[1])
        if seen > 0.45 * len(lattice):
            plan.ops.remove(op)
        else:
            plan.details["second_grid"] = seen > 0
    if book and rng.random() < 0.5:
        _gutter(plan, rng)
    canvas = Canvas(view, scale, plan.background)
    canvas.camera = cam_units
    plan.paint(canvas)
    S = np.diag([1 / scale, 1 / scale, 1.0])
    cam = Camera(size, cam_units.h @ S, cam_units.bend)
    img = cam.warp(canvas.img, (view[0] * scale, view[1] * scale), plan.background)
    corners = cam.forward([(0, 0), (n * scale, 0), (n * scale, n * scale), (0, n * scale)])
    # small grids and small rule text get less blur, so what the labels say stays readable
    dmg = Damage(light=rng.uniform(0.3, 1.0), cast=rng.uniform(0.2, 1.0) if not scan else 0.2,
                 blur=rng.uniform(0.2, 1.0) * (0.3 + 0.7 * legible), noise=rng.uniform(0.2, 1.0),
                 jpeg=1.0 if legible > 0.3 else 0.5, lowres=rng.uniform(0.0, 1.0) * legible)
    img, used = photo_effects(img, rng, dmg, final_size=final)
    kx, ky = final[0] / size[0], final[1] / size[1]
    corners = [(x * kx, y * ky) for x, y in corners]
    details = {"layout": "scan" if scan else "photo", "effects": used, "rules_text": plan.details.get("rules_text", False),
               "rules_title": plan.details.get("rules_title"), "second_grid": bool(plan.details.get("second_grid")), "bent": cam.bend is not None,
               "clue_glyphs": plan.details.get("clue_glyphs"), "rule_lines": canvas.rule_lines_in_grid(), "texts": canvas.texts_in_grid()}
    return Scene(img, corners, spec.digit_font.name, details, jpeg_quality(rng, dmg))


def _gutter(plan: Plan, rng: random.Random) -> None:
    """The darker strip near a book's spine."""
    left = rng.random() < 0.5
    page = plan.page
    width = rng.uniform(1.0, 3.0) * plan.n / 9
    x_edge = page[0] if left else page[2]
    steps = 12

    def paint(c: Canvas) -> None:
        for k in range(steps):
            t = k / steps
            x0 = x_edge + (t * width if left else -(t + 1 / steps) * width)
            shade = _mix(plan.paper, (60, 50, 40), 0.45 * (1 - t) ** 2)
            c.rect((x0, page[1], x0 + width / steps + 0.01, page[3]), fill=shade)

    plan.ops.insert(0, Op((x_edge - width, page[1], x_edge + width, page[3]), paint))  # under everything


def _compose_app(puzzle: Puzzle, rng: random.Random, fonts: FontSet) -> Scene:
    plan, spec, (pw, ph) = plan_app(puzzle, rng, fonts)
    n = puzzle.size
    page = plan.page
    render_k = rng.uniform(1.0, 1.5)  # draw a little larger, then scale down like a resized screenshot
    scale = pw / (page[2] - page[0]) * render_k
    canvas = Canvas(page, scale, plan.background)
    plan.paint(canvas)
    shot = canvas.img.resize((pw, ph), rng.choice((Image.Resampling.BILINEAR, Image.Resampling.LANCZOS, Image.Resampling.BOX)))
    sx, sy = pw / canvas.img.width, ph / canvas.img.height
    gx, gy = canvas.px(0, 0)
    corners_shot = [(gx * sx, gy * sy), ((gx + n * scale) * sx, gy * sy), ((gx + n * scale) * sx, (gy + n * scale) * sy),
                    (gx * sx, (gy + n * scale) * sy)]
    details: dict[str, Any] = {"layout": "screenshot", "theme": plan.details["theme"], "rules_text": plan.details.get("rules_text", False),
                               "rules_title": plan.details.get("rules_title"), "clue_glyphs": plan.details.get("clue_glyphs"),
                               "rule_lines": canvas.rule_lines_in_grid(), "texts": canvas.texts_in_grid()}
    if rng.random() < 0.25:  # a photo of the screen
        bezel = int(max(pw, ph) * rng.uniform(0.03, 0.08))
        table = rng.choice(((92, 64, 42), (120, 120, 118), (200, 200, 195)))
        frame = Image.new("RGB", (pw + 2 * bezel, ph + 2 * bezel), rng.choice(((12, 12, 12), (40, 40, 42), (225, 225, 228))))
        frame.paste(shot, (bezel, bezel))
        big = max(frame.size)
        pad = int(big * 0.6)
        world = Image.new("RGB", (frame.width + 2 * pad, frame.height + 2 * pad), table)
        world.paste(frame, (pad, pad))
        off = pad + bezel
        must = [(x + off, y + off) for x, y in corners_shot]
        if plan.details.get("rules_box"):
            must += [(x + off, y + off) for x, y in _screen_points(canvas, plan.details["rules_box"], sx, sy)]
        xs, ys = [x for x, _ in must], [y for _, y in must]
        mx, my = 0.08 * (max(xs) - min(xs)), 0.08 * (max(ys) - min(ys))
        focus = (min(xs) - mx, min(ys) - my, max(xs) + mx, max(ys) + my)  # the puzzle, not the whole device
        size = photo_size(rng)
        if (size[0] > size[1]) != (focus[2] - focus[0] > focus[3] - focus[1]) and rng.random() < 0.7:
            size = (size[1], size[0])  # people turn the camera to match what they shoot
        cam = make_camera(rng, size, focus, must, fill=(0.6, 0.95), max_rotation=12.0, tilt=0.12)
        img = cam.warp(world, (0, 0), table)
        corners = cam.forward(must[:4])
        dmg = Damage(light=0.6, cast=0.7, blur=0.8, noise=0.8, jpeg=1.0, lowres=0.5, glare=1.0)
        img, used = photo_effects(img, rng, dmg)
        details.update(layout="screen_photo", effects=used)
        return Scene(img, corners, spec.digit_font.name, details, jpeg_quality(rng, dmg))
    details["effects"] = []
    return Scene(shot, corners_shot, spec.digit_font.name, details, rng.randint(50, 95) if rng.random() < 0.3 else None)


def _screen_points(canvas: Canvas, box: Box, sx: float, sy: float) -> list[Point]:
    return [(x * sx, y * sy) for x, y in (canvas.px(px, py) for px, py in _corners(box))]
