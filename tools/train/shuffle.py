"""New puzzles from a real photo's own cells: the bands and stacks of its grid put in another order.

Why: the training photos show few puzzles (the 128 training photos, 51 puzzles), so a model could learn
each photo's answer instead of reading its digits (run 11 does not: it reads reordered training photos as
well as the originals, docs/training.md), and real newspaper print is the scarcest thing in the data.
Reordering the three bands (rows of boxes) and the three stacks (columns of boxes) of a rectified photo
moves whole cells, glyphs untouched, with the grid's thick lines still where a grid has them: 36 layouts
of the same real print, light and blur, each with its own answer. Transposing or flipping would mirror
the glyphs, and moving single rows would move thick-line halves into a band, so neither is done.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw


def line_centres(profile: np.ndarray, lo: float, hi: float, parts: int, reach: float) -> list[int]:
    """Where the ``parts + 1`` lines bounding equal parts of [lo, hi] lie: the darkest index within ``reach``
    of each nominal position (a rectified photo's lines are a pixel or two off where the outline was)."""
    out = []
    for k in range(parts + 1):
        nominal = lo + k * (hi - lo) / parts
        a, b = max(0, int(nominal - reach)), min(len(profile), int(nominal + reach) + 1)
        out.append(a + int(np.argmin(profile[a:b])))
    return out


def reorder_strips(img: Image.Image, cuts: list[int], order: list[int], targets: list[int], axis: int) -> Image.Image:
    """``img`` with the strips between consecutive ``cuts`` placed in ``order`` between consecutive ``targets``
    (axis 0: horizontal strips, rows; 1: vertical strips, columns), each resized to its new room."""
    out = img.copy()
    w, h = img.size
    for dest, src in enumerate(order):
        s0, s1, d0, d1 = cuts[src], cuts[src + 1], targets[dest], targets[dest + 1]
        if axis == 0:
            strip = img.crop((0, s0, w, s1)).resize((w, d1 - d0), Image.Resampling.BILINEAR)
            out.paste(strip, (0, d0))
        else:
            strip = img.crop((s0, 0, s1, h)).resize((d1 - d0, h), Image.Resampling.BILINEAR)
            out.paste(strip, (d0, 0))
    return out


def shuffle_boxes(view: Image.Image, lo: int, hi: int, box: tuple[int, int], n: int,
                  rng: random.Random) -> tuple[Image.Image, list[int], list[int]]:
    """The grid filling [lo, hi] of a square grid view (its border exactly there) with its bands and stacks in a
    random order; returns the picture, the source row of each row and the source column of each column."""
    bands, stacks = n // box[0], n // box[1]
    band_order, stack_order = rng.sample(range(bands), bands), rng.sample(range(stacks), stacks)
    gray = np.asarray(view.convert("L"), dtype=np.float32)
    pad = int(0.02 * (hi - lo))
    reach = 0.03 * (hi - lo)
    rows_cut = line_centres(gray[:, lo + pad:hi - pad].mean(axis=1), lo, hi, bands, reach)
    cols_cut = line_centres(gray[lo + pad:hi - pad, :].mean(axis=0), lo, hi, stacks, reach)
    rows_to = [round(lo + k * (hi - lo) / bands) for k in range(bands + 1)]
    cols_to = [round(lo + k * (hi - lo) / stacks) for k in range(stacks + 1)]
    out = reorder_strips(view, rows_cut, band_order, rows_to, axis=0)
    out = reorder_strips(out, cols_cut, stack_order, cols_to, axis=1)
    rows = [band_order[r // box[0]] * box[0] + r % box[0] for r in range(n)]
    cols = [stack_order[c // box[1]] * box[1] + c % box[1] for c in range(n)]
    return out, rows, cols


def shuffled_photo(picture: Image.Image, corners, givens: list[list[int]], box: tuple[int, int],
                   rng: random.Random) -> tuple[Image.Image, list[list[int]]]:
    """``picture`` with its grid (true ``corners``: TL, TR, BR, BL) reordered by :func:`shuffle_boxes`, and the
    givens it then shows. The grid is rectified at about twice its size in the photo, reordered, and warped back
    into place, so the rest of the picture and its geometry are unchanged (the labels' corners still hold)."""
    from ...runtime.grid_view import GridView, perspective_coefficients

    n = len(givens)
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    side = max(max(xs) - min(xs), max(ys) - min(ys))
    size = int(min(1600, max(448, 2 * side)))
    rect = GridView(size=size, margin=size // 16)
    view = rect.warp(picture, corners)
    lo, hi = rect.margin, rect.size - rect.margin
    view, rows, cols = shuffle_boxes(view, lo, hi, box, n, rng)
    back = view.transform(picture.size, Image.PERSPECTIVE, perspective_coefficients(corners, rect.target),
                          resample=Image.Resampling.BICUBIC)
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).polygon([tuple(map(float, p)) for p in corners], fill=255)
    out = picture.convert("RGB").copy()
    out.paste(back, (0, 0), mask)
    return out, [[givens[rows[r]][cols[c]] for c in range(n)] for r in range(n)]
