"""The torch-free numpy ports (M-RoPE index, Qwen2.5-VL window order) against transformers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlm_sudoku.runtime.rope import decode_position_ids, get_rope_index
from vlm_sudoku.runtime.vision_windows import get_window_index

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def hf(request: pytest.FixtureRequest):
    from vlm_sudoku.runtime.model_config import ModelConfig

    folder = request.getfixturevalue(f"tiny_{request.param}_dir")
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder).eval()
    return ModelConfig.from_folder(folder), model


def _ids(cfg, images, videos, tail):
    ids = [1, 2, 3]
    for t, h, w in images:
        ids += [cfg.vision_start_token_id] + [cfg.image_token_id] * (t * h * w // 4) + [cfg.vision_end_token_id, 9]
    for t, h, w in videos:
        ids += [cfg.vision_start_token_id] + [cfg.video_token_id] * (t * h * w // 4) + [cfg.vision_end_token_id, 8]
    return ids + list(range(10, 10 + tail))


@pytest.mark.parametrize(
    "images,videos,pad",
    [
        ([(1, 8, 12)], [], 0),
        ([(1, 8, 12), (1, 16, 16)], [], 3),
        ([(1, 4, 6)], [(2, 4, 6)], 2),
        ([], [(3, 6, 4)], 0),
    ],
)
def test_rope_index_matches_transformers(hf, images, videos, pad) -> None:
    cfg, model = hf
    seq = _ids(cfg, images, videos, 4)
    batch = np.array([[0] * pad + seq, seq + [5] * pad])
    mask = np.array([[0] * pad + [1] * len(seq), [1] * (len(seq) + pad)])
    img = np.array(images * 2, dtype=np.int64).reshape(-1, 3) if images else None
    vid = np.array(videos * 2, dtype=np.int64).reshape(-1, 3) if videos else None
    pos, deltas = get_rope_index(cfg, batch, img, vid, mask)
    ref_pos, ref_deltas = model.model.get_rope_index(
        torch.from_numpy(batch),
        None if img is None else torch.from_numpy(img),
        None if vid is None else torch.from_numpy(vid),
        attention_mask=torch.from_numpy(mask),
    )
    np.testing.assert_array_equal(pos, ref_pos.numpy())
    np.testing.assert_array_equal(deltas, ref_deltas.numpy())


def test_text_only_rope_index_matches_transformers(hf) -> None:
    cfg, model = hf
    batch = np.array([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]])
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    pos, deltas = get_rope_index(cfg, batch, attention_mask=mask)
    ref_pos, ref_deltas = model.model.get_rope_index(torch.from_numpy(batch), attention_mask=torch.from_numpy(mask))
    np.testing.assert_array_equal(pos, ref_pos.numpy())
    np.testing.assert_array_equal(deltas, ref_deltas.numpy())


def test_decode_positions_are_cache_length_plus_delta() -> None:
    pos = decode_position_ids(np.array([[-3], [2]]), cache_length=10)
    assert pos.shape == (3, 2, 1)
    assert pos[:, 0, 0].tolist() == [7, 7, 7] and pos[:, 1, 0].tolist() == [12, 12, 12]


@pytest.fixture(scope="module")
def visual25(tiny_qwen2_5_vl_dir):
    from vlm_sudoku.runtime.model_config import ModelConfig

    model = transformers.AutoModelForImageTextToText.from_pretrained(tiny_qwen2_5_vl_dir).eval()
    return ModelConfig.from_folder(tiny_qwen2_5_vl_dir).vision, model.model.visual


grid_strategy = st.lists(
    st.tuples(st.integers(1, 3), st.integers(1, 14).map(lambda x: 2 * x), st.integers(1, 14).map(lambda x: 2 * x)),
    min_size=1,
    max_size=3,
)


@settings(max_examples=40, deadline=None)
@given(grids=grid_strategy)
def test_window_index_matches_transformers(visual25, grids) -> None:
    vision, visual = visual25
    grid = np.array(grids, dtype=np.int64)
    window_index, cu = get_window_index(grid, vision)
    ref_index, ref_cu = visual.get_window_index(torch.from_numpy(grid))
    np.testing.assert_array_equal(window_index, ref_index.numpy())
    np.testing.assert_array_equal(cu, torch.unique_consecutive(torch.tensor(ref_cu)).numpy())


def test_runtime_ports_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import vlm_sudoku.runtime.rope, vlm_sudoku.runtime.vision_windows, vlm_sudoku.runtime.manifest\n"
        "import vlm_sudoku.runtime.greedy_reference\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
