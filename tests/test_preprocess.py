"""Image loading and Qwen2-VL preprocessing: errors, patch layout, and parity with transformers."""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vlm_sudoku.runtime.image_io import ImageError, ImageSizeError, load_image, stale_orientation, to_rgb
from vlm_sudoku.runtime.model_config import ModelFolderError
from vlm_sudoku.runtime.preprocess import ImageSettings, num_image_tokens, preprocess, smart_resize
from vlm_sudoku.solver.errors import InputError

from .paths import PHOTOS as PHOTO_DIR

DATA = Path(__file__).parent / "data"
PHOTOS = sorted(str(p) for p in PHOTO_DIR.glob("*.jpg"))
# A few 640x480 photos and one 960x1280 phone photo with a (stale) EXIF orientation tag.
SOME_PHOTOS = PHOTOS[:3] + [p for p in PHOTOS if p.endswith("image1031.jpg")]
PARITY_ATOL = 1e-5  # measured: 0.0 (bit-identical) on every case below


def _noise(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ---------------------------------------------------------------- load_image errors


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.jpg", "no such file"),
        (".", "is a directory"),
        ("not_an_image.jpg", "not an image file"),
        ("make_test_images.py", "not an image file"),
        ("truncated.jpg", "truncated"),
        ("bomb_20000x20000.png", "too large"),
        ("large_11000x11000.png", "11000x11000 is too large"),
        ("grid_16bit.png", "pixel mode 'I;16' is not supported"),
    ],
)
def test_load_image_errors(name: str, message: str) -> None:
    with pytest.raises(ImageError) as info:
        load_image(DATA / name)
    text = str(info.value)
    assert message in text
    assert "\n" not in text and str(DATA / name) in text
    assert isinstance(info.value, InputError) and info.value.exit_code == 1


def test_load_image_pixel_limit_is_a_parameter() -> None:
    assert load_image(DATA / "grid.jpg", max_pixels=120 * 100).size == (120, 100)
    with pytest.raises(ImageError, match="too large"):
        load_image(DATA / "grid.jpg", max_pixels=120 * 100 - 1)


def test_pillow_bomb_warning_defers_to_our_limit() -> None:
    # 121 Mpx is past Pillow's warning threshold (89 Mpx); with our limit raised it is decoded,
    # and this header-only file then fails as truncated, not as a bomb.
    with pytest.raises(ImageError, match="unreadable or truncated"):
        load_image(DATA / "large_11000x11000.png", max_pixels=200_000_000)


def test_to_rgb_refuses_float_modes() -> None:
    with pytest.raises(ImageError, match="'F'"):
        to_rgb(Image.new("F", (4, 4)))


# ---------------------------------------------------------------- load_image conversions


def test_exif_orientation_is_applied() -> None:
    stored = Image.open(DATA / "grid_exif6.jpg")
    assert stored.size == (100, 120)  # stored sideways, tagged "rotate 90 CW"
    upright = load_image(DATA / "grid_exif6.jpg")
    assert upright.size == (120, 100) and upright.mode == "RGB"
    reference = np.asarray(load_image(DATA / "grid.jpg"), dtype=np.int16)
    assert np.abs(np.asarray(upright, dtype=np.int16) - reference).mean() < 4  # JPEG noise only
    assert load_image(DATA / "grid_exif6.jpg", apply_exif=False).size == (100, 120)


@pytest.mark.parametrize("name", ["grid_gray.png", "grid_rgba.png", "grid_palette.png", "grid_cmyk.jpg", "grid.jpg"])
def test_load_image_gives_rgb(name: str) -> None:
    im = load_image(DATA / name)
    assert im.mode == "RGB" and im.size == (120, 100)


def test_rgba_drops_alpha_like_transformers() -> None:
    # transformers' convert_to_rgb is Image.convert("RGB"): alpha dropped, no white background.
    raw = np.asarray(Image.open(DATA / "grid_rgba.png"))
    assert (raw[:, :10, 3] == 0).all()
    np.testing.assert_array_equal(np.asarray(load_image(DATA / "grid_rgba.png")), raw[..., :3])


# ---------------------------------------------------------------- smart_resize


@pytest.mark.parametrize(
    "hw, expected",
    [
        ((480, 640), (476, 644)),
        ((28, 28), (56, 56)),
        ((10, 10), (56, 56)),
        ((1, 1), (56, 56)),
        ((3000, 4000), (840, 1148)),
        ((1280, 960), (1148, 840)),
        ((5, 990), (28, 812)),
        ((14, 14), (56, 56)),
        ((42, 42), (56, 56)),  # round(1.5) == 2
        ((70, 70), (56, 56)),  # round(2.5) == 2: Python's round-half-even, kept for parity
        ((98, 98), (112, 112)),  # round(3.5) == 4
        ((126, 126), (112, 112)),  # round(4.5) == 4
    ],
)
def test_smart_resize_values(hw: tuple[int, int], expected: tuple[int, int]) -> None:
    assert smart_resize(*hw) == expected


@pytest.mark.parametrize("hw", [(0, 10), (10, 0), (1, 201), (5, 1010), (201 * 28, 28)])
def test_smart_resize_refuses(hw: tuple[int, int]) -> None:
    with pytest.raises(ImageSizeError) as info:
        smart_resize(*hw)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


_sizes = st.integers(1, 6000)
_budgets = st.sampled_from([(56 * 56, 28 * 28 * 1280), (3136, 12845056), (256 * 28 * 28, 512 * 28 * 28), (784, 784)])


@settings(max_examples=250, deadline=None)
@given(h=_sizes, w=_sizes, budget=_budgets, factor=st.sampled_from([28, 32]))
def test_smart_resize_matches_transformers(h: int, w: int, budget: tuple[int, int], factor: int) -> None:
    hf = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl")
    lo, hi = budget
    try:
        expected = hf.smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=hi)
    except ValueError:
        with pytest.raises(ImageSizeError):
            smart_resize(h, w, factor, lo, hi)
        return
    assert smart_resize(h, w, factor, lo, hi) == expected


# ---------------------------------------------------------------- patch layout (no transformers)


def test_patch_order_and_shapes() -> None:
    """Identity normalisation exposes the raw layout: windows of 2x2 patches, (C, T, y, x) inside."""
    cfg = ImageSettings(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), rescale_factor=1.0)
    h, w = 56, 84  # already a multiple of 28 within the budget: resize is an exact copy
    ys, xs = np.mgrid[0:h, 0:w]
    img = np.stack([ys, xs, (ys + xs) % 7], axis=-1).astype(np.uint8)
    pv, grid = preprocess(img, cfg)
    assert pv.dtype == np.float32 and pv.shape == (4 * 6, 1176) and pv.flags.c_contiguous
    assert grid.dtype == np.int64 and grid.tolist() == [[1, 4, 6]]
    assert num_image_tokens(grid, cfg.merge_size) == 6
    patches = pv.reshape(-1, 3, 2, 14, 14)
    np.testing.assert_array_equal(patches[:, :, 0], patches[:, :, 1])  # the frame is repeated in time
    # Order: window (0,0) holds patches (0,0) (0,1) (1,0) (1,1); then window (0,1) starts at patch (0,2).
    expected_origin = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    for k, (py, px) in enumerate(expected_origin):
        assert patches[k, 0, 0, 0, 0] == py * 14 and patches[k, 1, 0, 0, 0] == px * 14
        np.testing.assert_array_equal(patches[k, 0, 0, :, 0], np.arange(14) + py * 14)  # rows run down
        np.testing.assert_array_equal(patches[k, 1, 0, 0, :], np.arange(14) + px * 14)  # columns run right


def test_array_and_pil_inputs_agree() -> None:
    arr = _noise(50, 70)
    pv_a, g_a = preprocess(arr)
    pv_p, g_p = preprocess(Image.fromarray(arr))
    np.testing.assert_array_equal(pv_a, pv_p)
    np.testing.assert_array_equal(g_a, g_p)
    with pytest.raises(ImageError, match="uint8"):
        preprocess(arr.astype(np.float32))


def test_num_image_tokens() -> None:
    assert num_image_tokens([1, 34, 46]) == 391
    assert num_image_tokens(np.array([[1, 34, 46]])) == 391
    with pytest.raises(ValueError):
        num_image_tokens(np.array([[1, 2, 2], [1, 2, 2]]))


# ---------------------------------------------------------------- ImageSettings


def test_settings_defaults_and_json(tmp_path: Path) -> None:
    d = ImageSettings()
    assert (d.min_pixels, d.max_pixels, d.factor, d.patch_dim) == (3136, 1003520, 28, 1176)
    # Qwen2-VL-2B/7B-Instruct's preprocessor_config.json
    instruct = {
        "min_pixels": 3136,
        "max_pixels": 12845056,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }
    assert ImageSettings.from_dict(instruct) == ImageSettings(max_pixels=12845056)
    assert ImageSettings.from_dict({"size": {"shortest_edge": 100, "longest_edge": 200000}}).max_pixels == 200000
    (tmp_path / "preprocessor_config.json").write_text(__import__("json").dumps(d.to_dict()))
    assert ImageSettings.from_json(tmp_path) == d


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"resample": 2}, "resample"),
        ({"do_normalize": False}, "do_normalize"),
        ({"min_pixels": 10, "max_pixels": 5}, "exceeds"),
        ({"image_mean": [0.5, 0.5]}, "image_mean"),
        ({"image_std": [0.5, 0.0, 0.5]}, "zero"),
    ],
)
def test_settings_refuse(raw: dict, message: str) -> None:
    with pytest.raises(ModelFolderError, match=message):
        ImageSettings.from_dict(raw)


def test_settings_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="no such file"):
        ImageSettings.from_json(tmp_path)


# ---------------------------------------------------------------- parity with transformers


@pytest.fixture(scope="module")
def hf_slow():
    mod = pytest.importorskip("transformers")
    return mod.Qwen2VLImageProcessor()


def _parity(hf, image: Image.Image, cfg: ImageSettings = ImageSettings(), hf_input=None) -> float:
    pv, grid = preprocess(image, cfg)
    # input_data_format: transformers guesses channels-first for 1- or 3-pixel-high arrays.
    kwargs = {} if isinstance(hf_input, str) else {"input_data_format": "channels_last"}
    out = hf(images=hf_input if hf_input is not None else image, return_tensors="np", **kwargs)
    np.testing.assert_array_equal(out["image_grid_thw"], grid)
    assert out["pixel_values"].shape == pv.shape
    diff = float(np.abs(out["pixel_values"] - pv).max())
    assert diff <= PARITY_ATOL
    return diff


@pytest.mark.skipif(not SOME_PHOTOS, reason="shared newspaper photos not present")
@pytest.mark.parametrize("path", SOME_PHOTOS, ids=lambda p: Path(p).name)
def test_parity_real_photos(hf_slow, path: str) -> None:
    # Both load through EXIF transposition (transformers' load_image for a path), except where
    # the tag is stale (the pixels were already turned upright): there we keep the stored
    # pixels on purpose, so transformers gets the same upright image.
    with Image.open(path) as im:
        stale = stale_orientation(im)
    _parity(hf_slow, load_image(path), hf_input=None if stale else path)


@pytest.mark.skipif(not (PHOTO_DIR / "image1031.jpg").exists(), reason="shared newspaper photos not present")
def test_stale_exif_orientation_is_ignored() -> None:
    # image1031: an iPhone photo already turned upright (960x1280) that still says "rotate 90".
    with Image.open(PHOTO_DIR / "image1031.jpg") as im:
        assert im.getexif().get(274) == 6 and stale_orientation(im)
        stored = im.size
    assert load_image(PHOTO_DIR / "image1031.jpg").size == stored


SYNTHETIC = {
    "tiny_28x28": lambda: Image.fromarray(_noise(28, 28)),
    "tiny_5x7": lambda: Image.fromarray(_noise(5, 7)),
    "tiny_1x1": lambda: Image.fromarray(_noise(1, 1)),
    "tiny_3x40": lambda: Image.fromarray(_noise(3, 40)),
    "huge_4000x3000": lambda: Image.fromarray(_noise(3000, 4000)),
    "aspect_199_wide": lambda: Image.fromarray(_noise(10, 1990)),
    "aspect_200_tall": lambda: Image.fromarray(_noise(6000, 30)),
    "gray": lambda: Image.fromarray(_noise(300, 200, channels=1)),
    "rgba": lambda: Image.fromarray(_noise(300, 200, channels=4)),
    "palette": lambda: Image.fromarray(_noise(300, 200)).convert("P"),
    "cmyk": lambda: Image.fromarray(_noise(300, 200, channels=4), mode="CMYK"),
    "bilevel": lambda: Image.fromarray(_noise(90, 130, channels=1)).convert("1"),
}


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_parity_synthetic(hf_slow, name: str) -> None:
    _parity(hf_slow, SYNTHETIC[name]())


@pytest.mark.parametrize(
    "name", ["grid.jpg", "grid_exif6.jpg", "grid_gray.png", "grid_rgba.png", "grid_palette.png", "grid_cmyk.jpg"]
)
def test_parity_files(hf_slow, name: str) -> None:
    # Path in, as a user gives it: transformers' load_image (EXIF + convert) vs ours.
    _parity(hf_slow, load_image(DATA / name), hf_input=str(DATA / name))


def test_parity_strip_near_aspect_limit(hf_slow) -> None:
    _parity(hf_slow, load_image(DATA / "strip_198to1.png"))
    with pytest.raises(ImageSizeError, match="200:1"):
        preprocess(load_image(DATA / "strip_202to1.png"))


def test_parity_custom_budget(hf_slow) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = ImageSettings(min_pixels=256 * 28 * 28, max_pixels=320 * 28 * 28)
    hf = transformers.Qwen2VLImageProcessor(**{k: v for k, v in cfg.to_dict().items() if k != "size"})
    _parity(hf, Image.fromarray(_noise(480, 640)), cfg)
    _parity(hf, Image.fromarray(_noise(40, 50)), cfg)


def test_fast_processor_differs_by_resize_only() -> None:
    """The torchvision processor (AutoProcessor's default when torchvision is present) resizes with
    torch's antialiased bicubic: same grid, pixel values within ~2 uint8 levels, not 1e-5."""
    pytest.importorskip("torchvision")
    transformers = pytest.importorskip("transformers")
    fast = transformers.Qwen2VLImageProcessorFast()
    image = load_image(DATA / "grid.jpg")
    pv, grid = preprocess(image)
    out = fast(images=image, return_tensors="pt")
    np.testing.assert_array_equal(out["image_grid_thw"].numpy(), grid)
    assert float(np.abs(out["pixel_values"].numpy() - pv).max()) < 0.05


# ---------------------------------------------------------------- dependency boundary


def test_input_side_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "import vlm_sudoku.runtime.image_io, vlm_sudoku.runtime.preprocess\n"
        "import vlm_sudoku.runtime.tokenizer, vlm_sudoku.runtime.prompts\n"
        "bad = [m for m in ('torch', 'transformers', 'jinja2') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
