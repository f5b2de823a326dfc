"""Qwen2-VL image preprocessing in numpy: the vision encoder's ``pixel_values`` and ``grid_thw``.

A pure re-implementation of transformers' ``Qwen2VLImageProcessor`` (the
slow, PIL-based one; transformers 4.57) with every setting passed in
explicitly. The steps, in the processor's order:

1. convert to RGB (``image_io.to_rgb`` = ``convert_to_rgb``);
2. ``smart_resize`` the size to multiples of patch*merge within a pixel budget;
3. resize with Pillow BICUBIC on the uint8 image (transformers round-trips the
   uint8 array through ``to_pil_image``, so the resize happens in 8 bits);
4. rescale by 1/255 in float64, cast to float32, normalize with CLIP mean/std in
   float32; done here by a 256-entry lookup table per channel, which gives the
   same float32 values bit for bit;
5. repeat the single frame ``temporal_patch_size`` times and cut the image into
   patches, ordered merge-window by merge-window, each flattened as
   (channel, time, row, column).

The fast, torchvision-based processor (loaded by ``AutoProcessor`` whenever
torchvision is installed) resizes with torch's antialiased bicubic instead of
Pillow's, so it differs from this module (and from the slow processor) by up
to a few 1e-2 in ``pixel_values``; the grids agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .image_io import ImageError, ImageSizeError, to_rgb
from .model_config import ModelFolderError, read_json_object

# transformers.image_utils.OPENAI_CLIP_MEAN / OPENAI_CLIP_STD
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_ASPECT_RATIO = 200  # smart_resize refuses anything more elongated
BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, the only resample the Qwen2-VL processor uses


@dataclass(frozen=True)
class ImageSettings:
    """The image half of ``preprocessor_config.json``; defaults are Qwen2VLImageProcessor's.

    Note: the Qwen2-VL-*-Instruct checkpoints ship ``max_pixels = 12845056``
    (16384 merged tokens); the class default, used when the key is absent, is
    ``28*28*1280 = 1003520`` (1280 merged tokens).
    """

    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    std: tuple[float, float, float] = OPENAI_CLIP_STD
    rescale_factor: float = 1 / 255

    @property
    def factor(self) -> int:
        """Resized sides are multiples of this (28 for Qwen2-VL)."""
        return self.patch_size * self.merge_size

    @property
    def patch_dim(self) -> int:
        """Length of one row of ``pixel_values`` (3 * 2 * 14 * 14 = 1176)."""
        return 3 * self.temporal_patch_size * self.patch_size**2

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ImageSettings":
        """Read a ``preprocessor_config.json`` dict; absent keys take the processor defaults.

        ``min_pixels``/``max_pixels`` win over ``size.shortest_edge/longest_edge``, as in both
        transformers processors. (The slow processor ignores ``size`` entirely and the fast one
        honours it; a config written by ``save_pretrained`` has both in agreement.)
        """
        for key, ok in (("do_resize", True), ("do_rescale", True), ("do_normalize", True), ("do_convert_rgb", True)):
            if key in raw and bool(raw[key]) is not ok:
                raise ModelFolderError(f"preprocessor_config.json: {key}={raw[key]!r} is not supported (only {ok})")
        if raw.get("resample", BICUBIC) != BICUBIC:
            raise ModelFolderError(
                f"preprocessor_config.json: resample={raw['resample']!r} is not supported (only {BICUBIC}, bicubic)"
            )
        size = raw.get("size") or {}
        d = cls()
        try:
            settings = cls(
                min_pixels=int(raw.get("min_pixels") or size.get("shortest_edge") or d.min_pixels),
                max_pixels=int(raw.get("max_pixels") or size.get("longest_edge") or d.max_pixels),
                patch_size=int(raw.get("patch_size", d.patch_size)),
                temporal_patch_size=int(raw.get("temporal_patch_size", d.temporal_patch_size)),
                merge_size=int(raw.get("merge_size", d.merge_size)),
                mean=_triple(raw.get("image_mean", d.mean), "image_mean"),
                std=_triple(raw.get("image_std", d.std), "image_std"),
                rescale_factor=float(raw.get("rescale_factor", d.rescale_factor)),
            )
        except (TypeError, ValueError) as exc:
            raise ModelFolderError(f"preprocessor_config.json: bad value ({exc})") from None
        settings.validate()
        return settings

    @classmethod
    def from_json(cls, path: str | Path) -> "ImageSettings":
        """Read a ``preprocessor_config.json`` file (or the one inside a folder)."""
        return cls.from_dict(read_preprocessor_config(path))

    def to_dict(self) -> dict[str, Any]:
        """A ``preprocessor_config.json`` that transformers' Qwen2VLImageProcessor loads to the same settings."""
        d = asdict(self)
        return {
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": list(d.pop("mean")),
            "image_processor_type": "Qwen2VLImageProcessor",
            "image_std": list(d.pop("std")),
            "max_pixels": d["max_pixels"],
            "merge_size": d["merge_size"],
            "min_pixels": d["min_pixels"],
            "patch_size": d["patch_size"],
            "processor_class": "Qwen2VLProcessor",
            "resample": BICUBIC,
            "rescale_factor": d["rescale_factor"],
            "size": {"longest_edge": d["max_pixels"], "shortest_edge": d["min_pixels"]},
            "temporal_patch_size": d["temporal_patch_size"],
        }

    def validate(self) -> None:
        for name in ("min_pixels", "max_pixels", "patch_size", "temporal_patch_size", "merge_size"):
            if getattr(self, name) < 1:
                raise ModelFolderError(f"preprocessor_config.json: {name} must be positive, got {getattr(self, name)}")
        if self.min_pixels > self.max_pixels:
            raise ModelFolderError(
                f"preprocessor_config.json: min_pixels {self.min_pixels} exceeds max_pixels {self.max_pixels}"
            )
        if any(s == 0 for s in self.std):
            raise ModelFolderError("preprocessor_config.json: image_std has a zero")


def read_preprocessor_config(path: str | Path) -> dict[str, Any]:
    """The JSON object of a ``preprocessor_config.json`` file (or of the one inside a folder)."""
    p = Path(path)
    return read_json_object(p / "preprocessor_config.json" if p.is_dir() else p, "preprocessor config")


def _triple(value: Any, name: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"{name} needs 3 values, got {len(values)}")
    return values  # type: ignore[return-value]


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 56 * 56,
    max_pixels: int = 28 * 28 * 1280,
) -> tuple[int, int]:
    """The (height, width) Qwen2-VL resizes an image to: multiples of ``factor``, pixel count
    within [min_pixels, max_pixels] where possible, aspect ratio kept as well as it can be.

    Same arithmetic as transformers 4.57 ``qwen2_vl.smart_resize`` (Python's round-half-even
    included). It raises ``ImageSizeError`` (an ``InputError`` and a ``ValueError``) where
    transformers raises ``ValueError``, more than 200:1, and for an empty side, where
    transformers divides by zero. Images smaller than ``factor`` are upscaled, as in
    transformers >= 4.49 (older versions refused them).

    >>> smart_resize(480, 640)
    (476, 644)
    >>> smart_resize(10, 10)
    (56, 56)
    """
    if height < 1 or width < 1:
        raise ImageSizeError(f"image is empty ({width}x{height} pixels)")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ImageSizeError(
            f"image {width}x{height} is too elongated for Qwen2-VL: aspect ratio"
            f" {max(height, width) / min(height, width):.1f}:1 exceeds {MAX_ASPECT_RATIO}:1"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resized_size(height: int, width: int, cfg: ImageSettings) -> tuple[int, int]:
    """``smart_resize`` with the settings of ``cfg``."""
    return smart_resize(height, width, cfg.factor, cfg.min_pixels, cfg.max_pixels)


def preprocess(image: Image.Image | np.ndarray, cfg: ImageSettings = ImageSettings()) -> tuple[np.ndarray, np.ndarray]:
    """One image to the vision encoder's inputs.

    ``image`` is a PIL image of any supported mode or a uint8 (H, W, 3) RGB array.
    Returns ``pixel_values`` float32 (grid_h * grid_w, 3 * temporal * patch**2) and
    ``grid_thw`` int64 (1, 3) = [[1, resized_h / patch, resized_w / patch]].
    """
    pil = _as_rgb_pil(image)
    width, height = pil.size
    rh, rw = resized_size(height, width, cfg)
    # HF parity: transformers always calls resize, even to the same size (Pillow then copies).
    # It resizes the uint8 image through PIL (image_transforms.resize -> to_pil_image), not floats.
    pixels = np.asarray(pil.resize((rw, rh), resample=Image.Resampling.BICUBIC))  # (rh, rw, 3) uint8
    return _patchify(pixels, cfg), np.array([[1, rh // cfg.patch_size, rw // cfg.patch_size]], dtype=np.int64)


def num_image_tokens(grid_thw: np.ndarray | tuple[int, int, int] | list[int], merge_size: int = 2) -> int:
    """How many ``<|image_pad|>`` tokens (= merged image embeddings) one image takes: t*h*w / merge**2.

    ``grid_thw`` is one image's (t, h, w), as a (3,) or (1, 3) array or sequence.
    """
    g = np.asarray(grid_thw, dtype=np.int64).reshape(-1)
    if g.shape != (3,):
        raise ValueError(f"grid_thw must hold one image's (t, h, w), got shape {np.shape(grid_thw)}")
    return int(g.prod()) // (merge_size * merge_size)


def _as_rgb_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ImageError(f"expected a uint8 (height, width, 3) RGB array, got {image.dtype} {image.shape}")
        return Image.fromarray(np.ascontiguousarray(image), mode="RGB")
    raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")


def _normalize_lut(cfg: ImageSettings) -> np.ndarray:
    """(3, 256) float32: the value each uint8 level becomes in each channel.

    HF parity: ``rescale`` multiplies in float64 then casts to float32, and ``normalize``
    subtracts and divides in float32 with float32 mean/std; evaluating the same operations
    on all 256 levels gives bit-identical results at a fraction of the cost.
    """
    levels = (np.arange(256, dtype=np.float64) * cfg.rescale_factor).astype(np.float32)
    mean = np.asarray(cfg.mean, dtype=np.float32)[:, None]
    std = np.asarray(cfg.std, dtype=np.float32)[:, None]
    return (levels[None, :] - mean) / std


def _patchify(pixels: np.ndarray, cfg: ImageSettings) -> np.ndarray:
    """(H, W, 3) uint8 -> (num_patches, 3 * T * P * P) float32 in Qwen2-VL's patch order."""
    p, m, t = cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size
    h, w, c = pixels.shape
    gh, gw = h // p, w // p
    # HF parity: transformers reshapes (t, T, C, gh/m, m, P, gw/m, m, P) and transposes to
    # (t, gh/m, gw/m, m, m, C, T, P, P): patches run merge window by merge window (row-major
    # inside each 2x2 window), and each patch flattens channel-major, then time, row, column.
    # Rearranging the uint8 image first moves a quarter of the bytes of doing it in float32.
    u8 = pixels.reshape(gh // m, m, p, gw // m, m, p, c).transpose(0, 3, 1, 4, 6, 2, 5)
    u8 = u8.reshape(gh * gw, c, 1, p * p)
    lut = _normalize_lut(cfg)
    out = np.empty((gh * gw, c, t, p * p), dtype=np.float32)
    for ch in range(c):  # three table lookups; the temporal copies come from broadcasting
        out[:, ch] = np.take(lut[ch], u8[:, ch])
    return out.reshape(gh * gw, c * t * p * p)
