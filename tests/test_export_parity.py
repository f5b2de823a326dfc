"""Acceptance: the three exported graphs, driven by numpy + onnxruntime, say what transformers says.

For both architectures: greedy tokens equal ``generate``'s over 16+ tokens on
three image sizes unlike the export's dummy images, on two images in one
prompt, and on a left-padded batch of two; fp32 prefill logits within 1e-3.
The PyTorch side is transformers' own ``generate`` with its default attention,
called here directly (not through export.parity).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from vlm_sudoku.export.onnx_configs import DUMMY_SHAPES  # noqa: E402
from vlm_sudoku.runtime.greedy_reference import OnnxGraphs, encode_images, greedy_generate  # noqa: E402
from vlm_sudoku.runtime.model_config import ModelConfig  # noqa: E402

NEW_TOKENS = 20
LOGIT_ATOL = 1e-3
# (width, height) in pixels: grids (1,4,4), (1,10,6), (1,14,16) - none is a dummy grid.
IMAGE_SIZES = [(56, 56), (84, 140), (224, 196)]
ARCHS = ["qwen2_vl", "qwen2_5_vl"]


@pytest.fixture(scope="module", params=ARCHS)
def arch(request: pytest.FixtureRequest) -> dict:
    """Model folder, export folder, loaded HF model, config and processor of one architecture."""
    name = request.param
    model_dir = request.getfixturevalue(f"tiny_{name}_dir")
    export_dir = request.getfixturevalue(f"tiny_{name}_export")
    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    pre = transformers.Qwen2VLImageProcessor.from_pretrained(model_dir)
    return {
        "name": name,
        "model": model,
        "cfg": ModelConfig.from_folder(model_dir),
        "graphs": OnnxGraphs.load(export_dir),
        "processor": pre,
    }


def _image(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _prompt(cfg: ModelConfig, grids: np.ndarray, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    ids = [int(x) for x in rng.integers(0, 400, 4)]
    for t, h, w in grids.tolist():
        ids += [cfg.vision_start_token_id] + [cfg.image_token_id] * (t * h * w // 4) + [cfg.vision_end_token_id]
        ids += [int(x) for x in rng.integers(0, 400, 3)]
    return ids


def _hf_greedy(model, input_ids, attention_mask, pixel_values, grid) -> tuple[np.ndarray, np.ndarray]:
    ids = torch.from_numpy(input_ids)
    inputs = dict(
        input_ids=ids,
        attention_mask=torch.from_numpy(attention_mask),
        pixel_values=torch.from_numpy(pixel_values),
        image_grid_thw=torch.from_numpy(grid),
    )
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=NEW_TOKENS, eos_token_id=None, do_sample=False, num_beams=1, pad_token_id=0
        )
        logits = model(**inputs).logits.numpy()
    return out[:, ids.shape[1] :].numpy(), logits


def _images(arch: dict, sizes: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    feats = arch["processor"](images=[_image(s, i) for i, s in enumerate(sizes)], return_tensors="np")
    return feats["pixel_values"].astype(np.float32), feats["image_grid_thw"].astype(np.int64)


def _check(arch: dict, sizes: list[tuple[int, int]], seed: int) -> None:
    pixels, grid = _images(arch, sizes)
    dummy = {tuple(g) for g in DUMMY_SHAPES["grid_thw"]}
    assert not dummy & {tuple(g) for g in grid.tolist()}, "test images must differ from the export's dummy size"
    ids = np.asarray([_prompt(arch["cfg"], grid, seed)], dtype=np.int64)
    mask = np.ones_like(ids)
    hf_tokens, hf_logits = _hf_greedy(arch["model"], ids, mask, pixels, grid)
    ours = greedy_generate(arch["graphs"], ids, mask, pixels, grid, max_new_tokens=NEW_TOKENS)
    np.testing.assert_array_equal(ours.tokens, hf_tokens)
    assert np.abs(ours.prefill_logits - hf_logits).max() <= LOGIT_ATOL


@pytest.mark.parametrize("size", IMAGE_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_greedy_tokens_match_transformers_on_image_sizes(arch: dict, size: tuple[int, int]) -> None:
    _check(arch, [size], seed=sum(size))


def test_two_images_in_one_prompt(arch: dict) -> None:
    _check(arch, [IMAGE_SIZES[2], IMAGE_SIZES[1]], seed=7)


def test_left_padded_batch_of_two(arch: dict) -> None:
    """Two prompts of different lengths, left-padded: positions and rope deltas follow the padding."""
    cfg = arch["cfg"]
    pixels, grid = _images(arch, [IMAGE_SIZES[1], IMAGE_SIZES[0]])
    a, b = _prompt(cfg, grid[:1], 1), _prompt(cfg, grid[1:], 2) + [5, 6, 7]
    width = max(len(a), len(b))
    ids = np.full((2, width), 0, dtype=np.int64)
    mask = np.zeros((2, width), dtype=np.int64)
    for row, seq in enumerate((a, b)):
        ids[row, width - len(seq) :] = seq
        mask[row, width - len(seq) :] = 1
    hf_tokens, hf_logits = _hf_greedy(arch["model"], ids, mask, pixels, grid)
    ours = greedy_generate(arch["graphs"], ids, mask, pixels, grid, max_new_tokens=NEW_TOKENS)
    np.testing.assert_array_equal(ours.tokens, hf_tokens)
    keep = mask.astype(bool)  # padded rows' logits are meaningless on both sides
    assert np.abs(ours.prefill_logits[keep] - hf_logits[keep]).max() <= LOGIT_ATOL


def test_vision_graph_matches_hf_visual_and_is_per_image_separable(arch: dict) -> None:
    """Image embeddings equal HF's visual tower; one call per image equals one call for all."""
    pixels, grid = _images(arch, IMAGE_SIZES)
    together = encode_images(arch["graphs"], pixels, grid)
    separate = encode_images(arch["graphs"], pixels, grid, per_image=True)
    with torch.no_grad():
        ref = arch["model"].model.visual(torch.from_numpy(pixels), grid_thw=torch.from_numpy(grid)).numpy()
    assert together.shape == ref.shape
    assert np.abs(together - ref).max() <= LOGIT_ATOL
    assert np.abs(together - separate).max() <= 1e-4


def test_export_time_parity_is_recorded(arch: dict, request: pytest.FixtureRequest) -> None:
    from vlm_sudoku.runtime.manifest import Manifest

    manifest = Manifest.load(request.getfixturevalue(f"tiny_{arch['name']}_export"))
    (report,) = manifest.parity
    assert report.precision == "fp32" and report.passed
    assert report.first_divergence is None and report.tokens_equal == report.max_new_tokens == 16
    assert report.prefill_max_abs_diff <= LOGIT_ATOL


def test_qwen2_5_window_inputs_accept_hf_raw_cu_seqlens(request: pytest.FixtureRequest) -> None:
    """A caller passing HF's get_window_index output as is (cu list with repeats) gets the same embeddings."""
    from vlm_sudoku.runtime import io_names as N

    model_dir = request.getfixturevalue("tiny_qwen2_5_vl_dir")
    graphs = OnnxGraphs.load(request.getfixturevalue("tiny_qwen2_5_vl_export"))
    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    grid = np.array([[1, 16, 16], [1, 10, 6]], dtype=np.int64)  # 16x16: sides are window multiples
    pixels = np.random.default_rng(3).standard_normal((int(grid.prod(1).sum()), 1176)).astype(np.float32)
    window_index, cu = model.model.visual.get_window_index(torch.from_numpy(grid))
    assert len(set(cu)) < len(cu)  # HF's raw list has repeated offsets (empty windows)
    raw = graphs.vision.run(
        {N.PIXEL_VALUES: pixels, N.GRID_THW: grid, N.WINDOW_INDEX: window_index.numpy(),
         N.CU_WINDOW_SEQLENS: np.asarray(cu, dtype=np.int64)}
    )[N.IMAGE_EMBEDS]
    np.testing.assert_allclose(raw, encode_images(graphs, pixels, grid), atol=1e-5)
