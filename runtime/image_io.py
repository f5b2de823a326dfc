"""Open a user's picture as an upright 8-bit RGB PIL image, or fail with one clear line.

Pillow opens files lazily: ``Image.open`` reads only the header, so a truncated
JPEG would otherwise surface later as a half-grey picture or a deep traceback.
``load_image`` therefore decodes everything up front and turns every failure
into an ``ImageError`` (exit status 1, product.md) naming the file.

HF-parity choices, checked against transformers 4.57 (``image_utils.load_image``
and ``image_transforms.convert_to_rgb``):

* EXIF orientation is applied (``ImageOps.exif_transpose``), as transformers'
  ``load_image`` does for paths and URLs, so a phone photo taken in portrait
  is read upright. (A PIL image handed straight to the processor is *not*
  transposed by transformers; callers comparing against that path must
  transpose first, as ``load_image`` does.) ``apply_exif=False`` keeps the stored
  pixels: 7 of the 160 shared newspaper photos (image1031...1083) carry a stale
  orientation tag (6 or 3) on pixels that are already upright.
* Other modes become RGB with ``Image.convert("RGB")``, exactly like
  ``convert_to_rgb``: RGBA/LA/PA simply drop alpha (no compositing on white,
  unlike qwen_vl_utils), CMYK uses Pillow's naive formula, palettes are
  looked up, grayscale is replicated.
* 16-bit and float modes (I, I;16*, F) are refused: Pillow's convert clips
  them to 0/255, which transformers would silently feed to the model.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..solver.errors import InputError

# A 108-megapixel phone photo (12000 x 9000) still loads; a 20000 x 20000 bomb does not.
DEFAULT_MAX_IMAGE_PIXELS = 120_000_000

# Modes whose Image.convert("RGB") is meaningful (what transformers would feed the model).
SUPPORTED_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")


class ImageError(InputError):
    """A picture that cannot be read: missing, not an image, truncated, too large, odd mode."""


class ImageSizeError(ImageError, ValueError):
    """Image dimensions the Qwen2-VL resize policy cannot handle.

    Also a ``ValueError``, the class transformers' ``smart_resize`` raises for
    the same conditions, so callers written against transformers keep working.
    """


def load_image(
    path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, apply_exif: bool = True
) -> Image.Image:
    """Read ``path`` fully and return an upright RGB image (EXIF orientation applied unless told not to).

    Raises ``ImageError`` with a one-line message for a missing file, a
    directory, a non-image, a truncated or corrupt file, more than
    ``max_pixels`` pixels, or a pixel mode without a faithful RGB conversion.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            # Our own limit below decides; Pillow's warning threshold (89 Mpx) is lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageError(_too_large(p, width * height, max_pixels, f"{width}x{height} "))
                # Full decode now: Image.open is lazy and a truncated file would fail later, or
                # silently if someone set ImageFile.LOAD_TRUNCATED_IMAGES.
                im.load()
                # exif_transpose returns a new image (or a copy), detached from the file.
                upright = _exif_upright(im) if apply_exif else im.copy()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        # Raised by Image.open itself above twice Pillow's own limit (179 Mpx), before our check.
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageError(_too_large(p, int(pixels.group(1)) if pixels else 0, max_pixels)) from None
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not an image file (or a format Pillow cannot read)") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied") from None
    except Exception as exc:  # noqa: BLE001 - every decoder failure is an unreadable image
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageError(f"{p}: unreadable or truncated image ({reason})") from None
    return to_rgb(upright, source=str(p))


def to_rgb(image: Image.Image, source: str = "image") -> Image.Image:
    """Convert any supported mode to RGB exactly like transformers' ``convert_to_rgb``."""
    if image.mode == "RGB":
        return image
    if image.mode not in SUPPORTED_MODES:
        raise ImageError(
            f"{source}: pixel mode {image.mode!r} is not supported"
            f" (16-bit and float images lose their range in RGB; save it as 8-bit;"
            f" supported: {', '.join(SUPPORTED_MODES)})"
        )
    return image.convert("RGB")


def stale_orientation(im: Image.Image) -> bool:
    """True when the EXIF orientation tag describes other pixels than the ones stored.

    The camera records the sensor's pixel dimensions (PixelXDimension /
    PixelYDimension) beside the orientation. When an editor has already turned
    the pixels upright but kept the tag, the stored image is portrait while the
    recorded one is landscape (or the reverse); applying the tag again would
    turn an upright photo sideways. 7 of the 160 newspaper photos we have are
    like that, so this is no corner case.
    """
    try:
        exif = im.getexif()
        sub = exif.get_ifd(0x8769)  # Exif sub-IFD
        w0, h0 = int(sub.get(0xA002, 0)), int(sub.get(0xA003, 0))
    except Exception:  # noqa: BLE001 - a broken EXIF block says nothing
        return False
    if not (w0 and h0) or w0 == h0:
        return False
    w, h = im.size
    return (w > h) != (w0 > h0)


def _exif_upright(im: Image.Image) -> Image.Image:
    # transformers.image_utils.load_image applies exif_transpose too. We do the same unless
    # the tag is provably stale (see stale_orientation). A broken EXIF block only loses the
    # orientation hint; the pixels are fine, so we keep them as stored.
    if stale_orientation(im):
        return im.copy()
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001
        return im.copy()


def _too_large(p: Path, pixels: int, max_pixels: int, dims: str = "") -> str:
    count = f"{pixels:,} pixels, " if pixels else ""
    return f"{p}: image {dims}is too large ({count}limit {max_pixels:,}; possible decompression bomb)"
