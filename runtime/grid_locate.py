"""Find the outer border of a Sudoku grid in a photo or screenshot, with numpy and Pillow only.

The runtime's dependencies are fixed (no OpenCV, no scipy), so everything here is
built from Pillow's C filters and vectorised numpy:

1. the picture is shrunk to a working size (the border is a long line, so a few
   hundred pixels locate it to well under 1% of its length, and the cost stays
   bounded for huge photos);
2. ink is whatever is darker than its blurred neighbourhood (an adaptive
   threshold survives shadows and uneven light); the opposite polarity is tried
   too, for dark-mode screenshots with light lines;
3. the grid's lines all touch each other, so the grid is one large connected
   component of ink; text and cage dashes are many small ones;
4. each large component gets a quadrilateral (the largest one on its convex
   hull, then each side refitted as a robust line through the component's
   outermost pixels, so text or a digit touching the border cannot drag a
   corner), and a score for how grid-like it is: ink along its four sides and
   along the lines a 4x4/6x6/9x9/16x16 grid must have inside, and little ink
   halfway between them;
5. a quadrilateral that scores poorly may hold the grid plus what touches it (a
   header rule, a column of boxes): its strongest inner lines are tried as
   sides, and a tighter quad that scores clearly better is kept, unless its inner
   lines run on past a side it moved (then it is a box of a bigger grid);
6. the best plausible quadrilateral is mapped back to the input's pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from .grid_view import UNIT_SQUARE, apply_perspective, perspective_coefficients

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]

WORK_SIDE = 480  # longest side of the working image
MIN_AREA = 0.04  # of the working image: smaller quads are not "the" grid of the picture
MIN_SCORE = 0.4  # below this a candidate does not look like a grid
INK_MARGIN = 6  # grey levels darker (or lighter) than the local mean that count as ink
MAX_BORDER = 12  # working pixels: no border line is thicker
MAX_CANDIDATES = 6  # components examined per polarity, largest bounding boxes first
# Ink dilated by these many pixels, in turn, until a grid is found. A blurred or greyed picture breaks its lines
# where they meet: the outer border then comes apart from the lines inside it (or the lines from each other),
# and no component looks like a grid. Bridging those gaps only when the plain ink shows no grid keeps every
# picture that reads without it as it was (the 160 photos and 300 renders: same corners).
BRIDGED_GAPS = (0, 1, 2)
# Interior line positions (fractions of the side) that some grid size must have:
# 9x9 has lines at 1/3 and 2/3; 4x4 and 16x16 at 1/4, 1/2, 3/4; 6x6 has both sets.
INTERIOR_SETS = ((1 / 3, 2 / 3), (1 / 4, 1 / 2, 3 / 4))
# Positions at least half a 16x16 cell from every line of any of those sizes: ink there
# is digits or texture, and a grid must have far less of it than on its lines.
OFF_LINES = (0.2813, 0.4063, 0.5937, 0.7188)
# Peeling a poor quad (_peel): tried between these grid scores (the 160 newspaper photos' grids score 0.68-0.95, a
# quad that took in a header or a neighbour 0.4), with the quad rectified at this many samples a side, lines covering at
# least this share of it, this many candidates a side, and a new quad kept only if it scores this much more and
# keeps this share of the area.
PEEL_BELOW = 0.6
PEEL_FROM = 0.3  # below this the component is text or texture, not a grid with something attached
PEEL_SAMPLES = 160
PEEL_LINE = 0.55
PEEL_CANDIDATES = 3
PEEL_GAIN = 0.15
PEEL_KEEP = 0.45  # of the quad's area: one 3x3 box of a grid cut off by the picture's edge also looks like a grid
PEEL_BEYOND = 0.12  # how far past a moved side its inner lines are looked for (a 9x9 cell is 0.11 of the side)
PEEL_CONTINUES = 0.4  # that share more of them on ink than between the lines: the quad is a piece of a bigger grid


def locate_grid(image: Image.Image) -> Quad | None:
    """Corners of the grid's outer border (TL, TR, BR, BL, input pixels), or None if no grid is seen.

    The corners lie on the middle of the outer border line; "top-left" is the corner
    nearest the image's top-left as the picture is stored (no EXIF rotation is applied).
    """
    gray, scale = _working_gray(image)
    masks = _ink_masks(gray)
    best: tuple[float, np.ndarray] | None = None
    for gap in BRIDGED_GAPS:
        for ink in masks:
            found = _best_in_mask(_dilate(ink, gap) if gap else ink)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        if best is not None:
            break
    if best is None:
        return None
    quad = (best[1] + 0.5) / scale  # pixel centres sit at +0.5 in continuous image coordinates
    return tuple((float(x), float(y)) for x, y in quad)  # type: ignore[return-value]


# ---------------------------------------------------------------- image to ink


def _working_gray(image: Image.Image) -> tuple[np.ndarray, float]:
    """Greyscale at the working size, and the factor from input to working pixels.

    Never enlarged: upsampling adds no information and only costs time.
    """
    gray = image.convert("L") if image.mode != "L" else image
    w, h = gray.size
    scale = min(1.0, WORK_SIDE / max(w, h))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = gray.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        scale = size[0] / w  # the exact factor after rounding (x and y agree to within a pixel)
    return np.asarray(gray, dtype=np.int16), scale


def _ink_masks(gray: np.ndarray) -> list[np.ndarray]:
    """Dark-on-light ink and light-on-dark ink, both against the local mean.

    The blur radius is a fraction of the picture so that a thick border still sits
    in a mostly blank neighbourhood and reads as ink through its whole width.
    """
    h, w = gray.shape
    radius = max(3, round(max(h, w) / 40))
    img = Image.fromarray(gray.astype(np.uint8))
    mean = np.asarray(img.filter(ImageFilter.BoxBlur(radius)), dtype=np.int16)
    diff = gray - mean
    return [diff < -INK_MARGIN, diff > INK_MARGIN]


# ---------------------------------------------------------------- connected components


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of ink: row, first column, one past the last column."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1).ravel()  # (h, w+1) flattened
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    row = starts // (w + 1)
    return row, starts - row * (w + 1), ends - row * (w + 1)


def _label_runs(row: np.ndarray, start: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """Component label of each run (8-connectivity), by vectorised hook-and-jump union-find.

    Pixel-wise flood fill in Python is far too slow; runs cut the node count by an
    order of magnitude and let overlaps between consecutive rows be found with two
    binary searches per run.
    """
    n = len(row)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = width + 2
    start_key = row * k + start
    end_key = row * k + end
    # Run j in row r+1 touches runs i in row r with end_i > start_j - 1 and start_i < end_j + 1.
    lo = np.searchsorted(end_key, (row - 1) * k + start - 1, side="right")
    hi = np.searchsorted(start_key, (row - 1) * k + end + 1, side="left")
    counts = np.maximum(hi - lo, 0)
    b = np.repeat(np.arange(n), counts)
    first = np.repeat(lo - np.cumsum(counts) + counts, counts)
    a = first + np.arange(len(b))
    label = np.arange(n)
    while len(a):
        la, lb = label[a], label[b]
        differ = la != lb
        if not differ.any():
            break
        a, b, la, lb = a[differ], b[differ], la[differ], lb[differ]
        label[np.maximum(la, lb)] = np.minimum(la, lb)  # hook the larger root under the smaller
        while True:  # jump until every run points at its root
            nxt = label[label]
            if np.array_equal(nxt, label):
                break
            label = nxt
    return label


# ---------------------------------------------------------------- candidates


def _best_in_mask(ink: np.ndarray) -> tuple[float, np.ndarray] | None:
    """Score and quad of the most grid-like large component of ``ink``."""
    h, w = ink.shape
    row, start, end = _runs(ink)
    label = _label_runs(row, start, end, w)
    if len(label) == 0:
        return None
    order = np.argsort(label, kind="stable")
    lab_sorted = label[order]
    cuts = np.flatnonzero(np.diff(lab_sorted)) + 1
    groups = np.split(order, cuts)
    x0 = np.minimum.reduceat(start[order], np.r_[0, cuts])
    x1 = np.maximum.reduceat(end[order], np.r_[0, cuts])
    y0 = np.minimum.reduceat(row[order], np.r_[0, cuts])
    y1 = np.maximum.reduceat(row[order], np.r_[0, cuts]) + 1
    box_area = (x1 - x0) * (y1 - y0)
    big = np.flatnonzero((box_area >= MIN_AREA * h * w) & (x1 - x0 >= 0.15 * w) & (y1 - y0 >= 0.15 * h))
    big = big[np.argsort(-box_area[big])][:MAX_CANDIDATES]
    best: tuple[float, np.ndarray] | None = None
    for g in big:
        runs = groups[g]
        comp = _component_mask(row[runs] - y0[g], start[runs] - x0[g], end[runs] - x0[g],
                               (int(y1[g] - y0[g]), int(x1[g] - x0[g])))
        origin = np.array([x0[g], y0[g]], dtype=float)
        found = _judge(comp, origin, (h, w))
        if found is not None:
            score, quad = found
            if best is None or score > best[0]:
                best = (score, quad)
    return best


def _component_mask(row: np.ndarray, start: np.ndarray, end: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The component's pixels inside its bounding box, rebuilt from its runs."""
    h, w = shape
    acc = np.zeros((h, w + 1), dtype=np.int32)
    np.add.at(acc, (row, start), 1)
    np.add.at(acc, (row, end), -1)
    return np.cumsum(acc, axis=1)[:, :w] > 0


def _judge(comp: np.ndarray, origin: np.ndarray, image_shape: tuple[int, int]) -> tuple[float, np.ndarray] | None:
    """Score and quad (working image pixels) of one component, or None when it cannot be the grid."""
    ys, xs = np.nonzero(comp)
    pts = np.column_stack([xs, ys]).astype(float)
    hull = _hull(comp)
    if len(hull) < 4:
        return None
    quad = _max_quad(hull)
    quad = _refine_sides(quad, pts, comp, origin, image_shape)
    if quad is None:
        return None
    dilated = _Dilations(comp)
    score = _grid_score(comp, quad, dilated)
    if PEEL_FROM <= score < PEEL_BELOW:
        score, quad = _peel(comp, quad, score, origin, image_shape, dilated)
    quad = quad + origin
    if not _plausible(quad, image_shape):
        return None
    if score < MIN_SCORE:
        return None
    return _value(score, quad, image_shape), quad


def _value(score: float, quad: np.ndarray, image_shape: tuple[int, int]) -> float:
    """How a candidate ranks: grid-likeness first, then size (the grid is the picture's main subject)."""
    return score * score * math.sqrt(_area(quad) / (image_shape[0] * image_shape[1]))


def _peel(comp: np.ndarray, quad: np.ndarray, score: float, origin: np.ndarray,
          image_shape: tuple[int, int], dilated: _Dilations) -> tuple[float, np.ndarray]:
    """A better quad inside a poor one, when the grid's ink touches other lines.

    A header rule, a neighbouring puzzle's frame or a column border that touches the grid joins its
    component, and the quad then spans both. The grid's own border is still there inside it: a line
    of ink across most of the quad. Rectified through the quad, every such line is a row or column
    of high coverage, so the candidates for each side are the strongest of those on its half; the
    combination with the best grid score (weighed as candidates are) wins if it clearly beats the
    quad as found. Only quads that score poorly get here: a real grid's inner box lines would make
    sub-grids of a good quad compete with it.
    """
    try:
        coeffs = perspective_coefficients(UNIT_SQUARE, [tuple(p) for p in quad])
    except ValueError:
        return score, quad
    steps = np.linspace(0.0, 1.0, PEEL_SAMPLES)
    uu, vv = np.meshgrid(steps, steps)  # [v, u]
    px, py = apply_perspective(coeffs, uu.ravel(), vv.ravel())
    x, y = np.round(px).astype(int), np.round(py).astype(int)
    h, w = comp.shape
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    ink = np.zeros(len(x), dtype=bool)
    ink[inside] = dilated(1)[y[inside], x[inside]]
    ink = ink.reshape(PEEL_SAMPLES, PEEL_SAMPLES)
    rows, cols = ink.mean(axis=1), ink.mean(axis=0)  # coverage of each rectified row (v) and column (u)
    tops, bottoms = _line_candidates(rows, low=True), _line_candidates(rows, low=False)
    lefts, rights = _line_candidates(cols, low=True), _line_candidates(cols, low=False)
    best_value, best = _value(score, quad + origin, image_shape), (score, quad)
    for t in tops:
        for b in bottoms:
            for lft in lefts:
                for r in rights:
                    u = np.array([steps[lft], steps[r], steps[r], steps[lft]])
                    v = np.array([steps[t], steps[t], steps[b], steps[b]])
                    cx, cy = apply_perspective(coeffs, u, v)
                    cand = np.column_stack([cx, cy])
                    if _area(cand) < PEEL_KEEP * _area(quad) or not _plausible(cand + origin, image_shape):
                        continue  # trimming what a grid touches, not carving a box out of a bigger grid
                    s = _grid_score(comp, cand, dilated)
                    value = _value(s, cand + origin, image_shape)
                    if s < score + PEEL_GAIN or value <= best_value:
                        continue
                    moved = [t != tops[0], r != rights[0], b != bottoms[0], lft != lefts[0]]  # top, right, bottom, left
                    if not _lines_continue(dilated, cand, moved):
                        best_value, best = value, (s, cand)
    return best


def _lines_continue(dilated: _Dilations, quad: np.ndarray, moved: list[bool]) -> bool:
    """Whether the inner lines of ``quad`` run on past any side that was moved inward: then the quad is a
    piece of a bigger grid (its boxes look like a grid too), not a grid freed of what touched it. Only quads that
    scored (so not degenerate) get here."""
    coeffs = perspective_coefficients(UNIT_SQUARE, [tuple(p) for p in quad])
    dil = dilated(max(1, round(0.012 * math.sqrt(_area(quad)))))
    h, w = dil.shape
    out = np.linspace(0.02, PEEL_BEYOND, 8)

    def beyond(side: int, fracs: tuple[float, ...], mask: np.ndarray) -> float:
        f = np.repeat(np.asarray(fracs), len(out))
        o = np.tile(out, len(fracs))
        u, v = {0: (f, -o), 1: (1 + o, f), 2: (f, 1 + o), 3: (-o, f)}[side]
        px, py = apply_perspective(coeffs, u, v)
        x, y = np.round(px).astype(int), np.round(py).astype(int)
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        hit = np.zeros(len(x), dtype=bool)
        hit[inside] = mask[y[inside], x[inside]]
        return float(hit.mean())

    thin = dilated(1)
    for side, was_moved in enumerate(moved):
        # ink on the grid's line positions past the side, less ink between them (text or a neighbouring frame
        # has ink everywhere; a grid's lines only where the lines are)
        if was_moved and max(beyond(side, fr, dil) for fr in INTERIOR_SETS) - beyond(side, OFF_LINES, thin) >= PEEL_CONTINUES:
            return True
    return False


def _line_candidates(coverage: np.ndarray, low: bool) -> list[int]:
    """Indices of the strongest lines on one half of a coverage profile (the near end's edge always)."""
    n = len(coverage)
    half = range(0, n // 2) if low else range(n - 1, n // 2, -1)
    edge = next(iter(half))
    peaks = [i for i in half if coverage[i] >= PEEL_LINE and coverage[i] >= coverage[max(0, i - 1)]
             and coverage[i] >= coverage[min(n - 1, i + 1)]]
    peaks.sort(key=lambda i: -coverage[i])
    out = [edge]
    for i in peaks:
        if all(abs(i - j) > 2 for j in out):
            out.append(i)
        if len(out) == PEEL_CANDIDATES:
            break
    return out


# ---------------------------------------------------------------- geometry


def _hull(comp: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise in image coordinates shown y-down) of the component.

    Only each row's leftmost and rightmost pixel can be on the hull, which keeps the
    Python loop of the monotone chain short.
    """
    rows = np.flatnonzero(comp.any(axis=1))
    left = comp[rows].argmax(axis=1)
    right = comp.shape[1] - 1 - comp[rows, ::-1].argmax(axis=1)
    # pixel squares, not pixel centres: the hull of the covered area
    pts = np.concatenate([
        np.column_stack([left, rows]), np.column_stack([left, rows + 1]),
        np.column_stack([right + 1, rows]), np.column_stack([right + 1, rows + 1]),
    ]).astype(float)
    pts = np.unique(pts, axis=0)
    return _monotone_chain(pts)


def _monotone_chain(pts: np.ndarray) -> np.ndarray:
    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    p = [tuple(v) for v in pts.tolist()]
    lower: list[tuple[float, float]] = []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list[tuple[float, float]] = []
    for q in reversed(p):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1], dtype=float)


def _max_quad(hull: np.ndarray) -> np.ndarray:
    """The largest-area quadrilateral with corners on the hull, ordered TL, TR, BR, BL.

    For every pair of hull vertices as a diagonal, the best third and fourth corners
    are the vertices farthest on either side; an n^3 array does it at once.
    """
    d = hull[None, :, :] - hull[:, None, :]  # d[i, k] = p_k - p_i
    cross = d[:, :, None, 0] * d[:, None, :, 1] - d[:, :, None, 1] * d[:, None, :, 0]  # (p_k - p_i) x (p_m - p_i)
    pos, neg = cross.max(axis=2), (-cross).max(axis=2)
    i, k = np.unravel_index(np.argmax(pos + neg), pos.shape)
    j, m = int(np.argmax(cross[i, k])), int(np.argmax(-cross[i, k]))
    return _order(hull[[i, j, k, m]])


def _order(quad: np.ndarray) -> np.ndarray:
    """TL, TR, BR, BL: clockwise on screen, starting at the corner nearest the image's top-left."""
    c = quad.mean(axis=0)
    ang = np.arctan2(quad[:, 1] - c[1], quad[:, 0] - c[0])
    q = quad[np.argsort(ang)]  # clockwise on screen (y points down)
    first = int(np.argmin(q.sum(axis=1)))
    return np.roll(q, -first, axis=0)


def _refine_sides(quad: np.ndarray, pts: np.ndarray, comp: np.ndarray, origin: np.ndarray,
                  image_shape: tuple[int, int]) -> np.ndarray | None:
    """Refit each side as a line through the outermost pixels along it, and intersect.

    Hull corners are single pixels, so a stray blob at a corner moves them; a line
    fitted to a whole side, with outliers dropped, does not move.
    """
    lines = []
    unseen = 0
    for s in range(4):
        a, b = quad[s], quad[(s + 1) % 4]
        line = _fit_side(a, b, pts, comp)
        if line is None:
            # a border cut off by the picture's edge, or one too faint to be ink (blur, glare) while the lines
            # that cross it end on it: the hull's side, where that ink ends, is the best guess. One such side
            # at most, and not on the frame: the grid score still has to pass.
            if not _on_frame(a + origin, b + origin, image_shape):
                unseen += 1
                if unseen > 1:
                    return None
            u = (b - a) / max(float(np.hypot(*(b - a))), 1e-9)
            nu = np.array([u[1], -u[0]])
            line = (nu, float(nu @ a))
        lines.append(line)
    out = []
    for s in range(4):
        p = _intersect(lines[s - 1], lines[s])
        if p is None:
            return None
        out.append(p)
    return np.array(out)


def _on_frame(a: np.ndarray, b: np.ndarray, image_shape: tuple[int, int]) -> bool:
    """Whether the segment runs along one edge of the picture (within a few pixels)."""
    h, w = image_shape
    tol = 3.0
    return bool(max(a[0], b[0]) <= tol or min(a[0], b[0]) >= w - tol
                or max(a[1], b[1]) <= tol or min(a[1], b[1]) >= h - tol)


def _fit_side(a: np.ndarray, b: np.ndarray, pts: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The side's line as (unit normal pointing out, offset), along the middle of the border line."""
    length = float(np.hypot(*(b - a)))
    if length < 8:
        return None
    u = (b - a) / length
    n = np.array([u[1], -u[0]])  # outward for a clockwise-on-screen quad
    rel = pts - a
    t = rel @ u
    d = rel @ n
    band = max(4.0, 0.12 * length)
    sel = (t > 0.08 * length) & (t < 0.92 * length) & (d > -band) & (d < band)
    if sel.sum() < 10:
        return None
    t, d = t[sel], d[sel]
    bins = np.floor(t).astype(np.int64)
    order = np.lexsort((-d, bins))
    bins, d, t = bins[order], d[order], t[order]
    first = np.r_[True, bins[1:] != bins[:-1]]
    t, d = t[first], d[first]  # per bin, the outermost pixel
    if len(t) < 0.15 * length:
        return None
    slope, icpt = _robust_line(t, d)
    # the line d = icpt + slope * t in the (u, n) frame, as n' . p = c
    nu = n - slope * u
    norm = float(np.hypot(*nu))
    nu = nu / norm
    c = float(nu @ a) + icpt / norm
    on_line = np.abs(d - (icpt + slope * t)) <= 1.5
    edge = a + np.outer(t[on_line], u) + np.outer(d[on_line], n)
    return nu, c - _half_width(edge, nu, comp)


def _half_width(edge: np.ndarray, normal: np.ndarray, comp: np.ndarray) -> float:
    """How far inside its outermost pixels the border line's middle lies.

    The renderer's (and a reader's) corner is the middle of the border line, and the
    adaptive threshold widens lines on both sides alike, so the middle of the ink
    run is an unbiased estimate where its outer edge is not.
    """
    if len(edge) == 0:
        return 0.0
    axis = 0 if abs(normal[0]) >= abs(normal[1]) else 1
    step = -np.sign(normal[axis])
    cos = abs(float(normal[axis]))
    x = np.round(edge[:, 0]).astype(np.int64)
    y = np.round(edge[:, 1]).astype(np.int64)
    h, w = comp.shape
    run = np.ones(len(x), dtype=bool)
    thick = np.zeros(len(x))
    for k in range(MAX_BORDER):
        xx = x + int(step * k) if axis == 0 else x
        yy = y + int(step * k) if axis == 1 else y
        inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        ink = np.zeros(len(x), dtype=bool)
        ink[inside] = comp[yy[inside], xx[inside]]
        run &= ink
        thick += run
    return (float(np.median(thick)) / 2 - 0.5) * cos


def _robust_line(t: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """The line d(t) that most outermost pixels agree with, refined by least squares on its inliers.

    A vote over a fan of slopes, not a plain fit: pixels of text or a neighbouring
    frame that touch the border are outermost in some bins, and they must not pull
    the line towards them.
    """
    span = max(float(t.max() - t.min()), 1.0)
    slopes = np.linspace(-0.2, 0.2, 41)
    off = d[None, :] - slopes[:, None] * t[None, :]  # (slopes, points)
    lo = float(off.min())
    idx = np.floor((off - lo) / 1.5).astype(np.int64)
    nb = int(idx.max()) + 2
    flat = (np.arange(len(slopes))[:, None] * nb + idx).ravel()
    votes = np.bincount(flat, minlength=len(slopes) * nb).reshape(len(slopes), nb)
    votes = votes[:, :-1] + votes[:, 1:]  # bins of 3 px, overlapping
    si, bi = np.unravel_index(int(np.argmax(votes)), votes.shape)
    slope, icpt = float(slopes[si]), lo + 1.5 * (bi + 1)
    for tol in (2.5, 1.5):
        keep = np.abs(d - (icpt + slope * t)) <= tol
        if keep.sum() < max(5, 0.1 * span):
            break
        slope, icpt = (float(v) for v in np.polyfit(t[keep], d[keep], 1))
    return slope, icpt


def _intersect(l1: tuple[np.ndarray, float], l2: tuple[np.ndarray, float]) -> np.ndarray | None:
    m = np.array([l1[0], l2[0]])
    if abs(np.linalg.det(m)) < 1e-6:
        return None
    return np.linalg.solve(m, np.array([l1[1], l2[1]]))


def _area(quad: np.ndarray) -> float:
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def _plausible(quad: np.ndarray, image_shape: tuple[int, int]) -> bool:
    """A convex, roughly square quad of a decent size: anything else is not a grid seen from the front."""
    h, w = image_shape
    if _area(quad) < MIN_AREA * h * w:
        return False
    if np.any(quad < -0.1 * max(h, w)) or np.any(quad[:, 0] > 1.1 * w) or np.any(quad[:, 1] > 1.1 * h):
        return False
    sides = np.hypot(*(np.roll(quad, -1, axis=0) - quad).T)
    if sides.min() < 0.4 * sides.max():
        return False
    e1 = np.roll(quad, -1, axis=0) - quad
    e0 = quad - np.roll(quad, 1, axis=0)
    turn = e0[:, 0] * e1[:, 1] - e0[:, 1] * e1[:, 0]
    if not (np.all(turn > 0) or np.all(turn < 0)):
        return False
    cos = np.abs((e0 * e1).sum(axis=1)) / (np.hypot(*e0.T) * np.hypot(*e1.T))
    return bool(np.all(cos < 0.6))  # every angle between about 53 and 127 degrees


# ---------------------------------------------------------------- grid score


def _coverage(dil: np.ndarray, coeffs: tuple[float, ...], fracs: tuple[float, ...], inset: float) -> float:
    """Share of points along the lines at ``fracs`` (both directions) that land on ink."""
    s = np.linspace(0.04, 0.96, 48)
    us, vs = [], []
    for f in fracs:
        us += [np.full_like(s, f), s]
        vs += [s, np.full_like(s, f)]
    u = np.clip(np.concatenate(us), inset, 1 - inset)
    v = np.clip(np.concatenate(vs), inset, 1 - inset)
    px, py = apply_perspective(coeffs, u, v)
    x, y = np.round(px).astype(int), np.round(py).astype(int)
    h, w = dil.shape
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    hit = np.zeros(len(x), dtype=bool)
    hit[inside] = dil[y[inside], x[inside]]
    return float(hit.mean())


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Square dilation by ``r`` pixels, separably, by shifted ORs."""
    out = mask.copy()
    for _ in range(r):
        out[1:] |= mask[:-1]
        out[:-1] |= mask[1:]
        mask = out.copy()
    for _ in range(r):
        out[:, 1:] |= mask[:, :-1]
        out[:, :-1] |= mask[:, 1:]
        mask = out.copy()
    return out


class _Dilations:
    """``comp`` dilated by r pixels, each r computed once (peeling scores many quads of one component)."""

    def __init__(self, comp: np.ndarray) -> None:
        self.comp = comp
        self.done: dict[int, np.ndarray] = {}

    def __call__(self, r: int) -> np.ndarray:
        if r not in self.done:
            self.done[r] = _dilate(self.comp, r)
        return self.done[r]


def _grid_score(comp: np.ndarray, quad: np.ndarray, dilated: _Dilations | None = None) -> float:
    """How much the component looks like a grid inside ``quad``: border times (inner lines - off-line ink).

    Lines are sampled with slack (the mask is dilated by ~1% of the side) because
    paper bends and the fit is only a straight-sided quad. Off-line ink is
    subtracted so that a mask full of paper texture, which covers every line,
    scores low.
    """
    side = math.sqrt(_area(quad))
    dilated = dilated or _Dilations(comp)
    dil2 = dilated(max(1, round(0.012 * side)))
    try:  # from the unit square to the quad
        coeffs = perspective_coefficients(UNIT_SQUARE, [tuple(p) for p in quad])
    except ValueError:  # three corners on a line: not a grid
        return 0.0
    inset = min(0.02, 1.5 / max(side, 1.0))
    border = _coverage(dil2, coeffs, (0.0, 1.0), inset)
    inner = max(_coverage(dil2, coeffs, fr, 0.0) for fr in INTERIOR_SETS)
    off = _coverage(dilated(1), coeffs, OFF_LINES, 0.0)
    return border * max(0.0, inner - 0.7 * off)
