"""Regenerate the small images under tests/data (run from anywhere; output is deterministic).

    .venv/bin/python tests/data/make_test_images.py

Every picture is synthetic (a drawn 9x9 grid with a few digits), so the folder
carries no third-party data. Total size stays well under 300 KB.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
EXIF_ORIENTATION = 0x0112


def grid(width: int = 120, height: int = 100, seed: int = 0) -> Image.Image:
    """A paper-like Sudoku grid with some digits and mild noise (RGB)."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (width, height), (238, 232, 220))
    d = ImageDraw.Draw(im)
    x0, y0, side = 12, 8, min(width, height) - 20
    for i in range(10):
        w = 2 if i % 3 == 0 else 1
        t = x0 + i * side // 9
        d.line([(t, y0), (t, y0 + side)], fill=(30, 30, 40), width=w)
        t = y0 + i * side // 9
        d.line([(x0, t), (x0 + side, t)], fill=(30, 30, 40), width=w)
    for r in range(9):
        for c in range(9):
            if rng.random() < 0.3:
                d.text((x0 + c * side // 9 + 4, y0 + r * side // 9 + 2), str(rng.integers(1, 10)), fill=(10, 10, 10))
    noise = rng.normal(0, 3, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(im, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and which holds no pixel data (bomb tests)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def main() -> None:
    upright = grid()
    upright.save(HERE / "grid.jpg", quality=90)
    # Stored sideways with EXIF orientation 6 ("rotate 90 CW to view"): upright after exif_transpose.
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    upright.transpose(Image.Transpose.ROTATE_90).save(HERE / "grid_exif6.jpg", quality=90, exif=exif)
    upright.convert("L").save(HERE / "grid_gray.png")
    rgba = upright.convert("RGBA")
    alpha = np.full((rgba.height, rgba.width), 255, np.uint8)
    alpha[:, : rgba.width // 3] = 0  # transparent left third over non-black colour
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(HERE / "grid_rgba.png")
    pal = upright.quantize(colors=16)
    pal.info["transparency"] = 0
    pal.save(HERE / "grid_palette.png", transparency=0)
    upright.convert("CMYK").save(HERE / "grid_cmyk.jpg", quality=90)
    Image.fromarray((np.asarray(upright.convert("L"), dtype=np.uint16) * 257)).save(HERE / "grid_16bit.png")
    grid(990, 5, seed=1).save(HERE / "strip_198to1.png")  # aspect 198:1, just inside the 200:1 limit
    grid(1010, 5, seed=1).save(HERE / "strip_202to1.png")  # beyond it
    data = (HERE / "grid.jpg").read_bytes()
    (HERE / "truncated.jpg").write_bytes(data[: len(data) * 6 // 10])
    (HERE / "not_an_image.jpg").write_text("this is a text file with a .jpg name\n", encoding="utf-8")
    (HERE / "bomb_20000x20000.png").write_bytes(png_header_only(20000, 20000))
    (HERE / "large_11000x11000.png").write_bytes(png_header_only(11000, 11000))


if __name__ == "__main__":
    main()
