"""Qwen2-VL's 2D vision rotary, computed on the host in numpy: the cos/sin rows the fused vision encoder
(export/vision_fused.py) takes as inputs.

Each vision head of ``head_dim`` rotates in the rotate-half layout with ``head_dim / 2`` angles: the first
quarter of the head's dimensions turns by the patch's row (``h``) times the inverse frequencies, the second
quarter by its column (``w``), and the other half repeats both (``cat((emb, emb))``). So one row of
``head_dim / 2`` angles per patch describes it, which is the cos/sin cache layout of onnxruntime's
``RotaryEmbedding`` (non-interleaved): the fused graph rotates patch ``i`` with row ``i``.

Patches come in the order the image processor writes them, merge window by merge window (the
``spatial_merge_size`` x ``spatial_merge_size`` patches that the merger folds into one token are
consecutive); the rows here follow that order, as ``Qwen2VisionTransformerPretrainedModel.rot_pos_emb``
(transformers 4.57) does. Angles are computed in float32 like transformers', then cast: an fp16 graph gets
cos/sin values, never fp16 angles (which would be off by up to a radian at large positions).
"""

from __future__ import annotations

import numpy as np

from .model_config import VisionConfig

VISION_ROPE_THETA = 10000.0  # VisionRotaryEmbedding's default; Qwen2-VL's config has no key for it


def vision_positions(grid_thw: np.ndarray, merge: int) -> np.ndarray:
    """(num_patches, 2) int64: each patch's (row, column) on its image's patch grid, patches in the
    processor's order (merge window by merge window, frame after frame, image after image)."""
    pieces = []
    for t, h, w in np.asarray(grid_thw, dtype=np.int64).reshape(-1, 3).tolist():
        if h % merge or w % merge:
            raise ValueError(f"grid ({t}, {h}, {w}) is not a multiple of the merge size {merge}")
        rows = np.broadcast_to(np.arange(h, dtype=np.int64)[:, None], (h, w))
        cols = np.broadcast_to(np.arange(w, dtype=np.int64)[None, :], (h, w))
        hw = np.stack([rows, cols], axis=-1)  # (h, w, 2)
        hw = hw.reshape(h // merge, merge, w // merge, merge, 2).transpose(0, 2, 1, 3, 4).reshape(-1, 2)
        pieces.append(np.tile(hw, (t, 1)))
    return np.concatenate(pieces) if pieces else np.zeros((0, 2), np.int64)


def vision_inv_freq(vision: VisionConfig, theta: float = VISION_ROPE_THETA) -> np.ndarray:
    """The ``head_dim / 4`` inverse frequencies of ``VisionRotaryEmbedding(head_dim // 2)``, float32."""
    head_dim = vision.embed_dim // vision.num_heads
    dim = head_dim // 2
    exponent = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (1.0 / (np.float32(theta) ** exponent)).astype(np.float32)


def vision_rope_rows(grid_thw: np.ndarray, vision: VisionConfig, dtype: type = np.float32
                     ) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (num_patches, head_dim / 2) of the patches of ``grid_thw`` (num_images, 3), in ``dtype``.

    Row ``i`` holds the angles of patch ``i``: ``h * inv_freq`` then ``w * inv_freq`` (transformers'
    ``rot_pos_emb`` row, which its forward repeats twice to span the head)."""
    if vision.window_size is not None:
        raise ValueError("vision_rope_rows is Qwen2-VL's vision rotary (Qwen2.5-VL's window order differs)")
    positions = vision_positions(grid_thw, vision.spatial_merge_size)
    inv_freq = vision_inv_freq(vision)
    angles = (positions.astype(np.float32)[:, :, None] * inv_freq).reshape(len(positions), -1)  # (n, 2 * quarter)
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


__all__ = ["VISION_ROPE_THETA", "vision_inv_freq", "vision_positions", "vision_rope_rows"]
