"""Drawing one puzzle: grid lines, region borders, givens and every variant marking.

Markings follow what SudokuPad, f-puzzles and newspapers print: dashed inset cage
outlines with the sum in the top-left corner, grey thermometers with a bulb,
circle-and-arrow arrows, kropki dots and X/V letters on cell edges, grey circles
(odd) and squares (even), thin diagonals, shaded windoku windows, clues outside
the grid for little killers (with a small diagonal arrow) and sandwiches, green
whisper lines and purple renban lines.

Everything is drawn at the final pixel scale (no supersampling): the photo warp
that usually follows resamples it anyway, and it keeps a 9x9 render in a few ms.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ...solver.cells import Cell
from ...solver.constraints.cells import Even, Odd
from ...solver.constraints.groups import (
    AntiKing, AntiKnight, DiagonalNegative, DiagonalPositive, DisjointGroups, ExtraRegion, Windoku, windoku_windows,
)
from ...solver.constraints.lines import Between, Palindrome, Renban, Thermo, Whisper
from ...solver.constraints.pairs import XV, Kropki, KropkiNegative, NonConsecutive, XVNegative
from ...solver.constraints.sums import DIRECTIONS, Arrow, Killer, LittleKiller, Sandwich
from ...solver.errors import VlmSudokuError
from ...solver.puzzle import Puzzle
from .fonts import Font

RGB = tuple[int, int, int]

#: Rules that leave no mark in the grid: a picture shows them only as text.
UNMARKED = (AntiKnight, AntiKing, NonConsecutive, DisjointGroups, KropkiNegative, XVNegative)
#: Rule classes this module can draw (the unmarked ones need the rules text block).
DRAWN = (Killer, Thermo, Arrow, Whisper, Renban, Palindrome, Between, Kropki, XV, Odd, Even, LittleKiller,
         Sandwich, DiagonalPositive, DiagonalNegative, Windoku, ExtraRegion)


class UnsupportedMarking(VlmSudokuError):
    """A rule the renderer cannot show in a picture."""

    def __init__(self, rule: str) -> None:
        known = sorted({c.rule for c in (*DRAWN, *UNMARKED)})
        super().__init__(f"cannot render rule {rule!r} (renderable: {', '.join(known)})")


@dataclass(frozen=True)
class Ink:
    """Colours of one look. Defaults are SudokuPad's light theme."""

    paper: RGB = (255, 255, 255)
    line: RGB = (0, 0, 0)
    border: RGB = (0, 0, 0)
    given: RGB = (0, 0, 0)
    clue: RGB = (0, 0, 0)
    cage: RGB = (0, 0, 0)
    thermo: RGB = (200, 200, 200)
    arrow: RGB = (160, 160, 160)
    whisper: RGB = (103, 240, 103)
    renban: RGB = (240, 103, 240)
    palindrome: RGB = (190, 190, 190)
    between: RGB = (160, 160, 215)
    shade: RGB = (208, 208, 208)
    window: RGB = (214, 214, 214)
    region: RGB = (230, 230, 200)
    diagonal: RGB = (90, 130, 200)
    dot_black: RGB = (0, 0, 0)
    dot_white: RGB = (255, 255, 255)
    highlight: RGB = (226, 235, 243)
    selected: RGB = (187, 222, 251)
    pencil: RGB = (90, 90, 90)


@dataclass(frozen=True)
class OpenFour:
    """An open-topped 4 as strokes in the glyph box of the font's own 4, all as shares of that box.

    None of the catalogued fonts has one, but DIN-like newspaper faces do (the validation photos' most
    misread digit was such a 4, read as 6), so a share of printed grids draws its 4s this way."""

    apex: float  # x of the left stroke's top: 0 upright, larger leans like a closed 4's diagonal
    bar: float  # y of the cross bar
    stem: float  # x of the right stem
    stem_top: float  # y where the right stem starts
    stroke: float  # line width, share of the glyph's height

    def draw(self, d: ImageDraw.ImageDraw, cx: float, cy: float, font, fill: RGB) -> None:
        left, top, right, bottom = font.getbbox("4")
        w, h = right - left, bottom - top
        x0, y0 = cx - w / 2, cy - h / 2
        width = max(1, int(round(self.stroke * h)))
        bar_y = y0 + self.bar * h
        d.line(((x0 + self.apex * w, y0), (x0, bar_y), (x0 + w, bar_y)), fill=fill, width=width, joint="curve")
        d.line(((x0 + self.stem * w, y0 + self.stem_top * h), (x0 + self.stem * w, y0 + h)), fill=fill, width=width)


@dataclass(frozen=True)
class Look:
    """How one grid is drawn: cell size in pixels, line widths, fonts and colours."""

    cell: float
    thin: int
    thick: int
    outer: int
    ink: Ink
    digit_font: Font
    clue_font: Font
    digit_scale: float = 0.62  # glyph height as a share of the cell
    jitter: float = 0.0  # handwriting: random offset and size change, share of the cell
    cage_inset: float = 0.1
    cage_width: int = 1
    dash: float = 0.09  # dash length, share of the cell
    line_scale: float = 1.0  # thickness of thermo/whisper/renban lines
    xv_box: bool = True  # paper patch behind X/V letters
    open_four: OpenFour | None = None  # printed 4s drawn open at the top (DIN-like newspaper faces)
    # app extras: highlighted cells [(cells, colour)], pencil marks {cell: digits}
    fills: tuple[tuple[tuple[Cell, ...], RGB], ...] = field(default=())
    pencil: tuple[tuple[Cell, tuple[int, ...]], ...] = field(default=())


def needs_ring(puzzle: Puzzle) -> bool:
    return any(isinstance(c, (LittleKiller, Sandwich)) for c in puzzle.constraints)


def check_drawable(puzzle: Puzzle) -> None:
    for con in puzzle.constraints:
        if not isinstance(con, (*DRAWN, *UNMARKED)):
            raise UnsupportedMarking(con.rule)


# -- small geometry helpers -------------------------------------------------------


class _Grid:
    def __init__(self, x0: float, y0: float, n: int, s: float, glyphs: list | None = None) -> None:
        self.x0, self.y0, self.n, self.s = x0, y0, n, s
        self.glyphs = glyphs  # where the digits of clue numbers are drawn (clue_glyphs), when asked

    def note_glyphs(self, cell: Cell, text: str, x: float, y: float, font) -> None:
        """Record each character of ``text`` drawn with its origin at (x, y): its ink box in the grid's unit
        square (the grid's side is 1; clues outside it fall below 0 or past 1), with the cell it belongs to."""
        if self.glyphs is None:
            return
        side = self.n * self.s
        for k, ch in enumerate(text):
            left, top, right, bottom = font.getbbox(ch)
            dx = x + font.getlength(text[:k])
            box = ((dx + left - self.x0) / side, (y + top - self.y0) / side,
                   (dx + right - self.x0) / side, (y + bottom - self.y0) / side)
            self.glyphs.append((cell, ch, box))

    def x(self, c: float) -> float:
        return self.x0 + c * self.s

    def y(self, r: float) -> float:
        return self.y0 + r * self.s

    def centre(self, cell: Cell) -> tuple[float, float]:
        r, c = cell
        return self.x0 + (c + 0.5) * self.s, self.y0 + (r + 0.5) * self.s

    def box(self, cell: Cell, inset: float = 0.0) -> tuple[float, float, float, float]:
        r, c = cell
        m = inset * self.s
        return self.x(c) + m, self.y(r) + m, self.x(c + 1) - m, self.y(r + 1) - m


def _circle(d: ImageDraw.ImageDraw, cx: float, cy: float, rad: float, **kw) -> None:
    d.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), **kw)


def _hbar(d: ImageDraw.ImageDraw, x0: float, x1: float, y: float, w: int, fill: RGB) -> None:
    top = int(round(y - w / 2))
    d.rectangle((int(round(x0)), top, int(round(x1)) - 1, top + w - 1), fill=fill)


def _vbar(d: ImageDraw.ImageDraw, x: float, y0: float, y1: float, w: int, fill: RGB) -> None:
    left = int(round(x - w / 2))
    d.rectangle((left, int(round(y0)), left + w - 1, int(round(y1)) - 1), fill=fill)


def _dashed(d: ImageDraw.ImageDraw, p: tuple[float, float], q: tuple[float, float], dash: float, fill: RGB, width: int) -> None:
    length = math.hypot(q[0] - p[0], q[1] - p[1])
    if length <= 0:
        return
    ux, uy = (q[0] - p[0]) / length, (q[1] - p[1]) / length
    period = dash * 1.8
    t = 0.0
    while t < length:
        e = min(t + dash, length)
        d.line((p[0] + ux * t, p[1] + uy * t, p[0] + ux * e, p[1] + uy * e), fill=fill, width=width)
        t += period


def _arrowhead(d: ImageDraw.ImageDraw, tip: tuple[float, float], ux: float, uy: float, size: float, fill: RGB, width: int) -> None:
    for sign in (1, -1):
        a = math.atan2(uy, ux) + math.pi + sign * 0.6
        d.line((tip[0], tip[1], tip[0] + size * math.cos(a), tip[1] + size * math.sin(a)), fill=fill, width=width)


@lru_cache(maxsize=4096)
def _ink_offset(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> tuple[float, float]:
    """Where to put the text origin so the glyphs' ink box is centred on (0, 0)."""
    left, top, right, bottom = font.getbbox(text)
    return -(left + right) / 2, -(top + bottom) / 2


def text_centred(d: ImageDraw.ImageDraw, cx: float, cy: float, text: str, font, fill: RGB) -> tuple[float, float]:
    """Draw ``text`` with its ink box centred on (cx, cy); the origin it was drawn at."""
    ox, oy = _ink_offset(font, text)
    d.text((cx + ox, cy + oy), text, font=font, fill=fill)
    return cx + ox, cy + oy


def digit_font_size(font: Font, cell: float, scale: float) -> int:
    """Font size whose digit '8' is ``scale`` of a cell high (fonts differ a lot in digit height)."""
    return max(6, int(round(cell * scale * _digit_ratio(font))))


@lru_cache(maxsize=256)
def _digit_ratio(font: Font) -> float:
    f = font.get(100)
    _, top, _, bottom = f.getbbox("8")
    height = max(1, bottom - top)
    return 100.0 / height


# -- the puzzle ------------------------------------------------------------------


def draw_puzzle(img: Image.Image, x0: float, y0: float, puzzle: Puzzle, look: Look, rng: random.Random,
                glyphs: list | None = None) -> None:
    """Draw ``puzzle`` with its top-left grid corner at (x0, y0); clues outside take the ring of cells around it.
    ``glyphs``: a list to append each clue number's characters to, as (cell, character, ink box in the grid's
    unit square); the clue crops' read-out labels (tools/train/data.py) come from them."""
    check_drawable(puzzle)
    n, s, ink = puzzle.size, look.cell, look.ink
    g = _Grid(x0, y0, n, s, glyphs)
    d = ImageDraw.Draw(img)
    cons = puzzle.constraints
    d.rectangle((round(x0), round(y0), round(g.x(n)), round(g.y(n))), fill=ink.paper)

    # 1. shading under everything
    for cells, colour in look.fills:
        for cell in cells:
            d.rectangle(g.box(cell), fill=colour)
    for con in cons:
        if isinstance(con, Windoku):
            for w in windoku_windows(n, puzzle.box or (n, n)):
                for cell in w:
                    d.rectangle(g.box(cell), fill=ink.window)
        elif isinstance(con, ExtraRegion):
            for cell in con.where:
                d.rectangle(g.box(cell), fill=ink.region)
        elif isinstance(con, Odd):
            for cell in con.where:
                cx, cy = g.centre(cell)
                _circle(d, cx, cy, 0.36 * s, fill=ink.shade)
        elif isinstance(con, Even):
            for cell in con.where:
                d.rectangle(g.box(cell, 0.14), fill=ink.shade)

    # 2. thick coloured lines sit under the grid lines
    for con in cons:
        if isinstance(con, Thermo):
            _thermo(d, g, con, ink.thermo, look)
        elif isinstance(con, (Whisper, Renban, Palindrome)):
            colour = {Whisper: ink.whisper, Renban: ink.renban, Palindrome: ink.palindrome}[type(con)]
            _polyline(d, [g.centre(c) for c in con.line], max(2, int(0.17 * s * look.line_scale)), colour)

    # 3. grid lines and region borders
    for i in range(1, n):
        _hbar(d, g.x(0), g.x(n), g.y(i), look.thin, ink.line)
        _vbar(d, g.x(i), g.y(0), g.y(n), look.thin, ink.line)
    _region_borders(d, g, puzzle, look)

    # 4. thin overlays
    for con in cons:
        if isinstance(con, DiagonalNegative):
            d.line((g.x(0), g.y(0), g.x(n), g.y(n)), fill=ink.diagonal, width=max(1, look.thin))
        elif isinstance(con, DiagonalPositive):
            d.line((g.x(0), g.y(n), g.x(n), g.y(0)), fill=ink.diagonal, width=max(1, look.thin))
        elif isinstance(con, Arrow):
            _arrow(d, g, con, ink.arrow, look)
        elif isinstance(con, Between):
            _between(d, g, con, ink.between, look)
    for con in cons:
        if isinstance(con, Killer):
            _cage(d, g, con, look)

    # 5. marks on edges
    for con in cons:
        if isinstance(con, Kropki):
            _kropki(d, g, con, look)
        elif isinstance(con, XV):
            _xv(d, g, con, look)

    # 6. digits
    size = digit_font_size(look.digit_font, s, look.digit_scale)
    for r in range(n):
        for c in range(n):
            v = puzzle.givens[r][c]
            if not v:
                continue
            cx, cy = g.centre((r, c))
            fsize = size
            if look.jitter:
                cx += rng.uniform(-1, 1) * look.jitter * s
                cy += rng.uniform(-1, 1) * look.jitter * s
                fsize = int(size * rng.uniform(0.9, 1.08))
            symbol = puzzle.alphabet.symbol(v)
            if symbol == "4" and look.open_four is not None:
                look.open_four.draw(d, cx, cy, look.digit_font.get(fsize), ink.given)
            else:
                text_centred(d, cx, cy, symbol, look.digit_font.get(fsize), ink.given)
    if look.pencil:
        _pencil(d, g, puzzle, look)

    # 7. clues outside the grid
    for con in cons:
        if isinstance(con, Sandwich):
            cx, cy = g.centre(con.clue)
            font = look.clue_font.get(0.42 * s)
            g.note_glyphs(con.clue, str(con.total), *text_centred(d, cx, cy, str(con.total), font, ink.clue), font)
        elif isinstance(con, LittleKiller):
            _little_killer(d, g, con, look)


def _polyline(d: ImageDraw.ImageDraw, pts: Sequence[tuple[float, float]], width: int, fill: RGB) -> None:
    flat = [v for p in pts for v in p]
    d.line(flat, fill=fill, width=width, joint="curve")
    for x, y in (pts[0], pts[-1]):
        _circle(d, x, y, width / 2 - 0.5, fill=fill)


def _thermo(d, g: _Grid, con: Thermo, colour: RGB, look: Look) -> None:
    s = g.s
    pts = [g.centre(c) for c in con.line]
    _polyline(d, pts, max(3, int(0.28 * s * look.line_scale)), colour)
    _circle(d, *pts[0], 0.38 * s, fill=colour)


def _arrow(d, g: _Grid, con: Arrow, colour: RGB, look: Look) -> None:
    s = g.s
    width = max(1, int(round(0.045 * s)))
    rad = 0.4 * s
    for b in con.bulb:
        _circle(d, *g.centre(b), rad, outline=colour, width=width)
    start = min(con.bulb, key=lambda b: max(abs(b[0] - con.shaft[0][0]), abs(b[1] - con.shaft[0][1])))
    pts = [g.centre(start)] + [g.centre(c) for c in con.shaft]
    (ax, ay), (bx, by) = pts[0], pts[1]
    dist = math.hypot(bx - ax, by - ay)
    pts[0] = (ax + (bx - ax) / dist * rad, ay + (by - ay) / dist * rad)
    d.line([v for p in pts for v in p], fill=colour, width=width, joint="curve")
    (px, py), (qx, qy) = pts[-2], pts[-1]
    dist = math.hypot(qx - px, qy - py)
    _arrowhead(d, (qx, qy), (qx - px) / dist, (qy - py) / dist, 0.28 * s, colour, width)


def _between(d, g: _Grid, con: Between, colour: RGB, look: Look) -> None:
    s = g.s
    width = max(1, int(round(0.05 * s)))
    pts = [g.centre(c) for c in con.line]
    d.line([v for p in pts for v in p], fill=colour, width=width, joint="curve")
    for p in (pts[0], pts[-1]):
        _circle(d, *p, 0.38 * s, fill=look.ink.paper, outline=colour, width=width)


def _region_borders(d, g: _Grid, puzzle: Puzzle, look: Look) -> None:
    n, reg, w = puzzle.size, puzzle.regions, look.thick
    ext = w / 2
    colour = look.ink.border
    # vertical borders between (r, c) and (r, c+1), merged into runs
    for c in range(n - 1):
        r = 0
        while r < n:
            if reg[r][c] != reg[r][c + 1]:
                start = r
                while r < n and reg[r][c] != reg[r][c + 1]:
                    r += 1
                _vbar(d, g.x(c + 1), g.y(start) - ext, g.y(r) + ext, w, colour)
            r += 1
    for r in range(n - 1):
        c = 0
        while c < n:
            if reg[r][c] != reg[r + 1][c]:
                start = c
                while c < n and reg[r][c] != reg[r + 1][c]:
                    c += 1
                _hbar(d, g.x(start) - ext, g.x(c) + ext, g.y(r + 1), w, colour)
            c += 1
    o = look.outer
    _hbar(d, g.x(0) - o / 2, g.x(n) + o / 2, g.y(0), o, colour)
    _hbar(d, g.x(0) - o / 2, g.x(n) + o / 2, g.y(n), o, colour)
    _vbar(d, g.x(0), g.y(0) - o / 2, g.y(n) + o / 2, o, colour)
    _vbar(d, g.x(n), g.y(0) - o / 2, g.y(n) + o / 2, o, colour)


def _cage(d, g: _Grid, con: Killer, look: Look) -> None:
    cells = set(con.cage)
    s, m = g.s, look.cage_inset * g.s
    colour, width = look.ink.cage, look.cage_width
    dash = max(2.0, look.dash * s)

    def inn(r: int, c: int) -> bool:
        return (r, c) in cells

    for r, c in sorted(cells):
        left, top, right, bottom = g.x(c), g.y(r), g.x(c + 1), g.y(r + 1)

        def end(side_nb: bool, diag_nb: bool, edge: float, inward: float) -> float:
            if not side_nb:
                return edge + inward
            return edge if not diag_nb else edge - inward

        if not inn(r - 1, c):
            y = top + m
            _dashed(d, (end(inn(r, c - 1), inn(r - 1, c - 1), left, m), y),
                    (end(inn(r, c + 1), inn(r - 1, c + 1), right, -m), y), dash, colour, width)
        if not inn(r + 1, c):
            y = bottom - m
            _dashed(d, (end(inn(r, c - 1), inn(r + 1, c - 1), left, m), y),
                    (end(inn(r, c + 1), inn(r + 1, c + 1), right, -m), y), dash, colour, width)
        if not inn(r, c - 1):
            x = left + m
            _dashed(d, (x, end(inn(r - 1, c), inn(r - 1, c - 1), top, m)),
                    (x, end(inn(r + 1, c), inn(r + 1, c - 1), bottom, -m)), dash, colour, width)
        if not inn(r, c + 1):
            x = right - m
            _dashed(d, (x, end(inn(r - 1, c), inn(r - 1, c + 1), top, m)),
                    (x, end(inn(r + 1, c), inn(r + 1, c + 1), bottom, -m)), dash, colour, width)
    if con.total is not None:
        r, c = min(cells)
        font = look.clue_font.get(max(7, 0.26 * s))
        text = str(con.total)
        left, top, right, bottom = font.getbbox(text)
        x, y = g.x(c) + 0.06 * s, g.y(r) + 0.04 * s
        pad = max(1, int(0.02 * s))
        d.rectangle((x - pad, y - pad, x + (right - left) + pad, y + (bottom - top) + pad), fill=look.ink.paper)
        d.text((x - left, y - top), text, font=font, fill=look.ink.clue)
        g.note_glyphs((r, c), text, x - left, y - top, font)


def _edge_mid(g: _Grid, a: Cell, b: Cell) -> tuple[float, float]:
    (ax, ay), (bx, by) = g.centre(a), g.centre(b)
    return (ax + bx) / 2, (ay + by) / 2


def _kropki(d, g: _Grid, con: Kropki, look: Look) -> None:
    cx, cy = _edge_mid(g, con.a, con.b)
    rad = 0.13 * g.s
    width = max(1, int(round(0.025 * g.s)))
    if con.color == "black":
        _circle(d, cx, cy, rad, fill=look.ink.dot_black)
    else:
        _circle(d, cx, cy, rad, fill=look.ink.dot_white, outline=look.ink.dot_black, width=width)


def _xv(d, g: _Grid, con: XV, look: Look) -> None:
    cx, cy = _edge_mid(g, con.a, con.b)
    letter = {10: "X", 5: "V"}.get(con.total, str(con.total))
    font = look.clue_font.get(0.4 * g.s)
    if look.xv_box:
        ox, oy = _ink_offset(font, letter)
        left, top, right, bottom = font.getbbox(letter)
        hw, hh = (right - left) / 2 + 1, (bottom - top) / 2 + 1
        d.rectangle((cx - hw, cy - hh, cx + hw, cy + hh), fill=look.ink.paper)
    text_centred(d, cx, cy, letter, font, look.ink.clue)


def _little_killer(d, g: _Grid, con: LittleKiller, look: Look) -> None:
    s = g.s
    dr, dc = DIRECTIONS[con.direction]
    cx, cy = g.centre(con.clue)
    font = look.clue_font.get(0.38 * s)
    text = str(con.total)
    left, top, right, bottom = font.getbbox(text)
    hw, hh = (right - left) / 2, (bottom - top) / 2
    # the number sits in the corner away from the grid, the arrow starts just past it
    tx = cx - dc * min(hw + 0.02 * s, 0.48 * s - hw)
    ty = cy - dr * min(hh + 0.02 * s, 0.48 * s - hh)
    g.note_glyphs(con.clue, text, *text_centred(d, tx, ty, text, font, look.ink.clue), font)
    width = max(1, int(round(0.035 * s)))
    p = (cx + dc * 0.1 * s, cy + dr * 0.1 * s)
    q = (cx + dc * 0.42 * s, cy + dr * 0.42 * s)
    d.line((*p, *q), fill=look.ink.clue, width=width)
    _arrowhead(d, q, dc / math.sqrt(2), dr / math.sqrt(2), 0.13 * s, look.ink.clue, width)


def _pencil(d, g: _Grid, puzzle: Puzzle, look: Look) -> None:
    n, s = puzzle.size, g.s
    k = math.isqrt(n - 1) + 1  # 3 for 9x9: candidates on a 3x3 mini grid
    font = look.digit_font.get(s / (k + 1.2))
    for cell, digits in look.pencil:
        if puzzle.givens[cell[0]][cell[1]]:
            continue
        x0, y0 = g.x(cell[1]), g.y(cell[0])
        for v in digits:
            i = v - 1
            cx = x0 + (i % k + 0.5) * s / k
            cy = y0 + (i // k + 0.5) * s / k
            text_centred(d, cx, cy, puzzle.alphabet.symbol(v), font, look.ink.pencil)


def grid_extent(puzzle: Puzzle, cell: float) -> tuple[float, float]:
    """Room the grid takes before (left/top) and after its corner, counting a ring of outside clues."""
    ring = cell if needs_ring(puzzle) else 0.0
    return ring, puzzle.size * cell + ring


__all__ = [
    "DRAWN", "UNMARKED", "Ink", "Look", "UnsupportedMarking", "check_drawable", "digit_font_size", "draw_puzzle",
    "grid_extent", "needs_ring", "text_centred",
]
