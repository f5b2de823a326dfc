"""Photo-like degradations, with Pillow and numpy only.

A :class:`Camera` maps the flat scene into the photo: rotation, perspective
(a homography, ``Image.transform(PERSPECTIVE)``) and optionally bent paper (a
smooth displacement, ``Image.transform(MESH)``); it also maps points forward,
so the grid corners in the final image are exact. :func:`photo_effects` then
adds what a phone camera does: uneven light and shadows, colour casts, defocus
and motion blur, sensor noise, paper texture, low resolution and JPEG.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

Point = tuple[float, float]


def homography(src: Sequence[Point], dst: Sequence[Point]) -> np.ndarray:
    """The 3x3 matrix taking the four ``src`` points to the four ``dst`` points."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    h = np.linalg.solve(np.array(a, float), np.array(b, float))
    return np.append(h, 1.0).reshape(3, 3)


def apply_h(h: np.ndarray, pts: Sequence[Point]) -> np.ndarray:
    p = np.asarray(pts, float).reshape(-1, 2)
    q = np.c_[p, np.ones(len(p))] @ h.T
    return q[:, :2] / q[:, 2:3]


@dataclass
class Bend:
    """Paper that is not flat: output pixels are displaced by smooth waves (in output pixels)."""

    ax: float  # amplitude of the horizontal shift (varies along y)
    ay: float  # amplitude of the vertical shift (varies along x)
    wx: float  # wave numbers (radians per pixel)
    wy: float
    px: float  # phases
    py: float

    def offset(self, p: np.ndarray) -> np.ndarray:
        dx = self.ax * np.sin(p[:, 1] * self.wx + self.px)
        dy = self.ay * np.sin(p[:, 0] * self.wy + self.py)
        return np.c_[dx, dy]


@dataclass
class Camera:
    """Scene (canvas) pixels -> photo pixels."""

    size: tuple[int, int]
    h: np.ndarray  # scene -> photo homography
    bend: Bend | None = None

    def forward(self, pts: Sequence[Point]) -> list[Point]:
        target = apply_h(self.h, pts)
        if self.bend is None:
            return [(float(x), float(y)) for x, y in target]
        p = target.copy()
        for _ in range(8):  # p + offset(p) = target; the offset is small and smooth
            p = target - self.bend.offset(p)
        return [(float(x), float(y)) for x, y in p]

    def forward_flat(self, pts: Sequence[Point]) -> np.ndarray:
        """Like :meth:`forward` without the bend (a cheap approximation for culling)."""
        return apply_h(self.h, pts)

    def inverse(self, pts: Sequence[Point]) -> np.ndarray:
        p = np.asarray(pts, float).reshape(-1, 2)
        if self.bend is not None:
            p = p + self.bend.offset(p)
        return apply_h(np.linalg.inv(self.h), p)

    def visible_box(self, margin: float = 2.0) -> tuple[float, float, float, float]:
        """Bounding box, in scene pixels, of what the photo shows."""
        w, h = self.size
        edge = [(x, 0) for x in np.linspace(0, w, 9)] + [(x, h) for x in np.linspace(0, w, 9)]
        edge += [(0, y) for y in np.linspace(0, h, 9)] + [(w, y) for y in np.linspace(0, h, 9)]
        q = self.inverse(edge)
        return q[:, 0].min() - margin, q[:, 1].min() - margin, q[:, 0].max() + margin, q[:, 1].max() + margin

    def warp(self, canvas: Image.Image, origin: Point, fill: tuple[int, int, int]) -> Image.Image:
        """Photograph ``canvas``, whose top-left pixel is at scene point ``origin``."""
        ox, oy = origin
        if self.bend is None:
            inv = np.linalg.inv(self.h)
            shift = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], float)
            m = shift @ inv
            m = m / m[2, 2]
            coeffs = tuple(m.flatten()[:8])
            return canvas.transform(self.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR, fillcolor=fill)
        w, h = self.size
        step = 80  # the bend is smooth: coarse quads are enough, and each quad costs a call
        xs = list(range(0, w, step)) + [w]
        ys = list(range(0, h, step)) + [h]
        grid = np.array([(x, y) for y in ys for x in xs], float)
        src = self.inverse(grid) - np.array([ox, oy])
        src = src.reshape(len(ys), len(xs), 2)
        mesh = []
        for j in range(len(ys) - 1):
            for i in range(len(xs) - 1):
                ul, ll, lr, ur = src[j, i], src[j + 1, i], src[j + 1, i + 1], src[j, i + 1]
                mesh.append(((xs[i], ys[j], xs[i + 1], ys[j + 1]), (*ul, *ll, *lr, *ur)))
        return canvas.transform(self.size, Image.Transform.MESH, mesh, Image.Resampling.BILINEAR, fillcolor=fill)


def make_camera(
    rng: random.Random,
    size: tuple[int, int],
    focus: tuple[float, float, float, float],
    must_see: Sequence[Point],
    *,
    fill: tuple[float, float] = (0.55, 0.92),
    max_rotation: float = 15.0,
    tilt: float = 0.12,
    bend: float = 0.0,
    margin: float = 4.0,
) -> Camera:
    """A camera that frames ``focus`` (scene rect) at ``fill`` of the photo and keeps ``must_see`` in view.

    ``tilt`` is the largest perspective corner shift (share of the focus size) and
    ``bend`` the largest paper displacement (share of the photo height).
    """
    w, h = size
    fx0, fy0, fx1, fy1 = focus
    fw, fh = fx1 - fx0, fy1 - fy0
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    theta = math.radians(rng.uniform(-max_rotation, max_rotation) * rng.choice((0.3, 1.0)))
    f = rng.uniform(*fill)
    ox_u, oy_u = rng.uniform(-1, 1), rng.uniform(-1, 1)
    keystone = rng.uniform(-tilt, tilt), rng.uniform(-tilt, tilt)
    jitter = [(rng.uniform(-1, 1) * tilt * 0.4, rng.uniform(-1, 1) * tilt * 0.4) for _ in range(4)]
    bend_spec = None
    if bend > 0:
        bend_spec = Bend(
            ax=rng.uniform(-bend, bend) * h * 0.5, ay=rng.uniform(-bend, bend) * h,
            wx=rng.uniform(0.5, 2.0) * math.pi / h, wy=rng.uniform(0.5, 2.0) * math.pi / w,
            px=rng.uniform(0, 2 * math.pi), py=rng.uniform(0, 2 * math.pi),
        )
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    corners = [(fx0, fy0), (fx1, fy0), (fx1, fy1), (fx0, fy1)]
    cam = None
    for _attempt in range(12):
        rw, rh = cos * fw + sin * fh, sin * fw + cos * fh
        sc = f * min(w / rw, h / rh)
        slack_x, slack_y = max(0.0, (w - sc * rw) / 2), max(0.0, (h - sc * rh) / 2)
        tx, ty = w / 2 + ox_u * slack_x * 0.8, h / 2 + oy_u * slack_y * 0.8
        ct, st = math.cos(theta), math.sin(theta)
        dst = []
        for k, (x, y) in enumerate(corners):
            u, v = (x - cx) / fw, (y - cy) / fh  # -0.5..0.5
            # keystone: the far side of a tilted page looks shorter
            u2 = u * (1 + keystone[1] * 2 * v) + jitter[k][0]
            v2 = v * (1 + keystone[0] * 2 * u) + jitter[k][1]
            px, py = u2 * fw * sc, v2 * fh * sc
            dst.append((tx + ct * px - st * py, ty + st * px + ct * py))
        cam = Camera(size, homography(corners, dst), bend_spec)
        pts = cam.forward(list(must_see))
        if all(margin <= x <= w - margin and margin <= y <= h - margin for x, y in pts):
            return cam
        f *= 0.9
        keystone = keystone[0] * 0.7, keystone[1] * 0.7
        jitter = [(a * 0.7, b * 0.7) for a, b in jitter]
        if bend_spec is not None:
            bend_spec.ax *= 0.7
            bend_spec.ay *= 0.7
    assert cam is not None
    return cam


# -- photometric damage ------------------------------------------------------------
# Everything per pixel runs in Pillow's C code (multiply, point tables, add): numpy
# float passes over a whole photo cost several times more on a small CPU.

NOISE_SIDE = 1024


@lru_cache(maxsize=8)
def _noise_image(sigma: int, seed: int = 1234) -> Image.Image:
    """A fixed RGB tile of Gaussian noise around 128 with this sigma; photos take a random window."""
    noise = np.random.default_rng(seed + sigma).standard_normal((NOISE_SIDE, NOISE_SIDE, 3)) * sigma + 128
    return Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8), "RGB")


def _noise_window(rng: random.Random, w: int, h: int, sigma: int) -> Image.Image:
    tile = _noise_image(sigma)
    if w <= NOISE_SIDE and h <= NOISE_SIDE:
        x, y = rng.randrange(NOISE_SIDE - w + 1), rng.randrange(NOISE_SIDE - h + 1)
        return tile.crop((x, y, x + w, y + h))
    out = Image.new("RGB", (w, h))
    ox, oy = rng.randrange(NOISE_SIDE), rng.randrange(NOISE_SIDE)
    for y in range(-oy, h, NOISE_SIDE):
        for x in range(-ox, w, NOISE_SIDE):
            out.paste(tile, (x, y))
    return out


def _smooth_field(rng: random.Random, w: int, h: int, cells: int, amount: float) -> np.ndarray:
    """Low-frequency multiplicative field around 1 (paper texture, uneven ink and light)."""
    gw, gh = max(2, cells), max(2, int(cells * h / max(w, 1)) + 1)
    small = Image.new("F", (gw, gh))
    small.putdata([1.0 + rng.uniform(-amount, amount) for _ in range(gw * gh)])
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), np.float32)


def lighting(rng: random.Random, w: int, h: int, strength: float) -> np.ndarray:
    """Gain on a small grid (light varies slowly): a gradient, a vignette, a soft shadow, blotches."""
    lw = min(w, 160)
    lh = max(2, int(round(lw * h / max(w, 1))))
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    xx /= lw
    yy /= lh
    a = rng.uniform(0, 2 * math.pi)
    gain = 1.0 + strength * rng.uniform(0.05, 0.35) * ((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a)) * 2
    if rng.random() < 0.7:
        cxv, cyv = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
        r2 = (xx - cxv) ** 2 + (yy - cyv) ** 2
        gain = gain * (1.0 - strength * rng.uniform(0.1, 0.45) * r2 * 2)
    if rng.random() < 0.4 * strength:
        gain = gain * _shadow(rng, lw, lh)
    if rng.random() < 0.6:
        gain = gain * _smooth_field(rng, lw, lh, rng.randint(3, 8), 0.06 * strength)
    return gain


def _field_image(field: np.ndarray, w: int, h: int, top: float) -> Image.Image:
    """A small float field (0..top) as a full-size RGB image of 0..255, for ImageChops."""
    small = Image.fromarray(np.clip(field / top * 255.0, 0, 255).astype(np.uint8), "L")
    big = small.resize((w, h), Image.Resampling.BILINEAR)
    return Image.merge("RGB", (big, big, big))


def _shadow(rng: random.Random, w: int, h: int) -> np.ndarray:
    """A soft dark shape coming in from one edge (a hand, a phone, a fold)."""
    sw, sh = 64, max(8, int(64 * h / max(w, 1)))
    mask = Image.new("L", (sw, sh), 0)
    d = ImageDraw.Draw(mask)
    side = rng.randrange(4)
    depth = rng.uniform(0.15, 0.55)
    pts = []
    for t in np.linspace(-0.2, 1.2, 6):
        off = depth * rng.uniform(0.6, 1.2)
        if side == 0:
            pts.append((t * sw, off * sh))
        elif side == 1:
            pts.append((t * sw, (1 - off) * sh))
        elif side == 2:
            pts.append((off * sw, t * sh))
        else:
            pts.append(((1 - off) * sw, t * sh))
    corner = {0: [(sw * 1.2, -5), (-sw * 0.2, -5)], 1: [(sw * 1.2, sh + 5), (-sw * 0.2, sh + 5)],
              2: [(-5, sh * 1.2), (-5, -sh * 0.2)], 3: [(sw + 5, sh * 1.2), (sw + 5, -sh * 0.2)]}[side]
    d.polygon(pts + corner, fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 6)))
    dark = rng.uniform(0.25, 0.6)
    m = np.asarray(mask.resize((w, h), Image.Resampling.BILINEAR), np.float32) / 255.0
    return 1.0 - dark * m


@dataclass
class Damage:
    """Which photo effects to apply, and how strongly (0 = none)."""

    light: float = 1.0
    cast: float = 1.0
    blur: float = 1.0
    noise: float = 1.0
    jpeg: float = 1.0
    lowres: float = 1.0
    glare: float = 0.0


def photo_effects(img: Image.Image, rng: random.Random, dmg: Damage,
                  final_size: tuple[int, int] | None = None) -> tuple[Image.Image, list[str]]:
    """Apply camera-like damage; returns the image and the names of the effects used.

    With ``final_size`` larger than the image, the optics and sensor effects run at
    the small size and the result is scaled up (a soft phone photo, at a fraction
    of the cost). JPEG is left to the caller (see :func:`jpeg_quality`).
    """
    w, h = img.size
    used: list[str] = []
    scale = max(w, h) / 900.0
    # optics first: blur happens before the sensor adds noise
    if dmg.blur and rng.random() < 0.6:
        kind = rng.random()
        if kind < 0.3:
            img = _shake(img, rng.choice(((1, 0), (0, 1), (1, 1), (1, -1))), rng.randint(1, 1 + int(dmg.blur * scale + 0.5)))
            used.append("motion_blur")
        elif kind < 0.75:
            img = img.reduce(2).resize((w, h), Image.Resampling.BILINEAR)
            used.append("defocus")
        else:
            img = img.filter(ImageFilter.BoxBlur(max(0.6, dmg.blur * scale * rng.uniform(0.5, 1.5))))
            used.append("defocus")
    # light: a multiplicative field (normalised to 0..255) and per-channel gains, lift and contrast (a table)
    gains, lift = np.ones(3), 0.0
    if dmg.cast and rng.random() < 0.85:
        gains, lift = _colour_cast(rng, dmg.cast)
        used.append("colour_cast")
    top = 1.0
    if dmg.light and rng.random() < 0.9:
        field = lighting(rng, w, h, dmg.light)
        top = float(max(1.0, field.max()))
        img = ImageChops.multiply(img, _field_image(field, w, h, top))
        used.append("lighting")
    lut: list[int] = []
    for g in gains:
        k = float(g) * top
        lut += [min(255, max(0, int(v * k + lift + 0.5))) for v in range(256)]
    img = img.point(lut)
    if dmg.glare and rng.random() < 0.5:
        img = ImageChops.add(img, _field_image(_glare(rng, w, h, dmg.glare), w, h, 255.0))
        used.append("glare")
    if dmg.noise and rng.random() < 0.85:
        sigma = max(1, int(round(dmg.noise * rng.uniform(1.5, 9.0))))
        img = ImageChops.add(img, _noise_window(rng, w, h, min(sigma, 10)), 1.0, -128)
        used.append("noise")
    if final_size is not None and tuple(final_size) != (w, h):
        img = img.resize(final_size, rng.choice((Image.Resampling.BILINEAR, Image.Resampling.BICUBIC)))
        used.append("upscaled")
    elif dmg.lowres and rng.random() < 0.35:
        k = rng.choice((2, 2, 3)) if dmg.lowres > 0.5 else 2
        img = img.reduce(k).resize((w, h), Image.Resampling.BILINEAR)
        used.append("low_resolution")
    if dmg.blur and w * h < 400_000 and rng.random() < 0.04:
        img = img.filter(ImageFilter.UnsharpMask(radius=rng.uniform(1, 2.5), percent=rng.randint(60, 160), threshold=2))
        used.append("sharpen")
    return img, used


def jpeg_quality(rng: random.Random, dmg: Damage) -> int | None:
    """The JPEG quality this photo gets saved at (None: left to the caller)."""
    if dmg.jpeg and rng.random() < 0.7:
        return int(rng.uniform(25, 90) if dmg.jpeg >= 1 else rng.uniform(60, 95))
    return None


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _shake(img: Image.Image, step: tuple[int, int], reach: int) -> Image.Image:
    """Motion blur: the mean of the image shifted -reach..reach pixels along ``step``."""
    dx, dy = step
    out = img
    count = 1
    for k in range(-reach, reach + 1):
        if k == 0:
            continue
        count += 1
        out = Image.blend(out, ImageChops.offset(img, dx * k, dy * k), 1.0 / count)
    return out


def _colour_cast(rng: random.Random, strength: float) -> tuple[np.ndarray, float]:
    """White balance off (the photo set is often green- or blue-grey), lifted blacks, lower contrast.

    Returns per-channel gains and a lift to add.
    """
    kind = rng.random()
    if kind < 0.35:  # greenish grey, as under fluorescent light
        gains = (rng.uniform(0.78, 0.92), rng.uniform(0.9, 1.0), rng.uniform(0.82, 0.95))
    elif kind < 0.55:  # bluish
        gains = (rng.uniform(0.8, 0.92), rng.uniform(0.88, 0.98), rng.uniform(0.95, 1.05))
    elif kind < 0.8:  # warm lamp
        gains = (rng.uniform(0.98, 1.05), rng.uniform(0.88, 0.97), rng.uniform(0.7, 0.88))
    else:
        gains = tuple(rng.uniform(0.85, 1.03) for _ in range(3))
    contrast = 1 - rng.uniform(0, 0.3) * strength
    g = np.array([(1 + (x - 1) * strength) * contrast for x in gains], np.float32)
    return g, rng.uniform(0, 45) * strength


def _glare(rng: random.Random, w: int, h: int, strength: float) -> np.ndarray:
    """A bright soft spot (a lamp reflected in a screen or glossy paper), on a small grid, to add."""
    lw = min(w, 120)
    lh = max(2, int(round(lw * h / max(w, 1))))
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    cx, cy = rng.uniform(0, lw), rng.uniform(0, lh)
    rad = rng.uniform(0.15, 0.5) * max(lw, lh)
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad * rad)) * rng.uniform(40, 120) * strength
