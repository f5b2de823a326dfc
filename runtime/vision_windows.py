"""Qwen2.5-VL window order for the vision encoder, computed on the host in numpy.

Qwen2.5-VL's vision blocks attend inside windows of ``window_size`` pixels
(except the ``fullatt_block_indexes`` blocks). transformers computes the window
order with Python loops and ``.tolist()`` over ``grid_thw``, which a traced
graph would freeze to the export's dummy image size. So the exported
vision_encoder takes the result as two extra inputs, produced here:

- ``window_index`` (num_merged_patches,) int64: merged-patch order, window by window;
- ``cu_window_seqlens`` (num_windows + 1,) int64: patch offsets of the windows in
  that order, with repeated offsets removed (transformers applies
  ``unique_consecutive`` to drop empty windows).
"""

from __future__ import annotations

import numpy as np

from .model_config import VisionConfig


def get_window_index(grid_thw: np.ndarray, vision: VisionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(window_index, cu_window_seqlens) for the images of ``grid_thw`` (num_images, 3).

    Port of ``Qwen2_5_VisionTransformerPretrainedModel.get_window_index`` plus the
    ``unique_consecutive`` its caller applies.
    """
    if vision.window_size is None:
        raise ValueError("window order exists only for Qwen2.5-VL vision configs (window_size is None)")
    grid = np.asarray(grid_thw, dtype=np.int64).reshape(-1, 3)
    merge = vision.spatial_merge_size
    unit = merge * merge
    win = vision.window_size // merge // vision.patch_size  # window side in merged tokens
    window_index: list[np.ndarray] = []
    cu: list[int] = [0]
    offset = 0
    for t, h, w in grid.tolist():
        lh, lw = h // merge, w // merge
        index = np.arange(t * lh * lw, dtype=np.int64).reshape(t, lh, lw)
        # HF-parity quirk: the pad is a whole window when the side is already a multiple
        # of the window; the resulting empty windows vanish in unique_consecutive below.
        pad_h = win - lh % win
        pad_w = win - lw % win
        nwh, nww = (lh + pad_h) // win, (lw + pad_w) // win
        padded = np.pad(index, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=-100)
        padded = padded.reshape(t, nwh, win, nww, win).transpose(0, 1, 3, 2, 4).reshape(t, nwh * nww, win, win)
        seqlens = (padded != -100).sum(axis=(2, 3)).reshape(-1)
        flat = padded.reshape(-1)
        window_index.append(flat[flat != -100] + offset)
        cu.extend((np.cumsum(seqlens) * unit + cu[-1]).tolist())
        offset += t * lh * lw
    cu_arr = np.asarray(cu, dtype=np.int64)
    keep = np.concatenate([[True], cu_arr[1:] != cu_arr[:-1]])
    return np.concatenate(window_index).astype(np.int64), cu_arr[keep]
