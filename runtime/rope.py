"""M-RoPE position ids for Qwen2-VL / Qwen2.5-VL, in numpy.

The exported decoder takes ``position_ids`` of shape (3, batch, seq): one row
each for the temporal, height and width rotary sections. Text tokens carry the
same position on all three rows; the image tokens of one image carry their
(t, h, w) coordinates on the merged grid, offset by the text before them. This
is a port of transformers' ``Qwen2VLModel.get_rope_index`` (and the Qwen2.5-VL
variant), written so that the runtime needs no torch.

Decoding after the prompt uses one number per sequence, the rope delta:
position = tokens seen so far (padding included) + delta, on all three rows.
"""

from __future__ import annotations

import numpy as np

from .model_config import ModelConfig


def get_rope_index(
    cfg: ModelConfig,
    input_ids: np.ndarray,
    image_grid_thw: np.ndarray | None = None,
    video_grid_thw: np.ndarray | None = None,
    attention_mask: np.ndarray | None = None,
    second_per_grid_ts: np.ndarray | list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Position ids (3, batch, seq) int64 and rope deltas (batch, 1) int64 for a prompt.

    Same results as transformers 4.57 ``get_rope_index`` for both architectures:
    padded positions (attention_mask == 0) get position 1, and the delta is
    ``max position + 1 - padded length`` so that decode positions can be
    computed from the padded cache length (see :func:`decode_position_ids`).
    """
    input_ids = np.asarray(input_ids, dtype=np.int64)
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be (batch, seq), got shape {input_ids.shape}")
    batch, seq = input_ids.shape
    mask = None if attention_mask is None else np.asarray(attention_mask).astype(bool)

    if image_grid_thw is None and video_grid_thw is None:
        return _text_only(batch, seq, mask)

    images = np.zeros((0, 3), np.int64) if image_grid_thw is None else np.asarray(image_grid_thw, np.int64)
    videos = np.zeros((0, 3), np.int64) if video_grid_thw is None else np.asarray(video_grid_thw, np.int64)
    merge = cfg.vision.spatial_merge_size
    tps = cfg.vision.tokens_per_second
    position_ids = np.ones((3, batch, seq), dtype=np.int64)
    deltas = np.zeros((batch, 1), dtype=np.int64)
    image_index = video_index = 0
    for i in range(batch):
        keep = np.ones(seq, bool) if mask is None else mask[i]
        tokens = input_ids[i][keep].tolist()
        # HF counts an image or video only where <|vision_start|> is followed by its pad token.
        starts = [j for j, tok in enumerate(tokens[:-1]) if tok == cfg.vision_start_token_id]
        followers = [tokens[j + 1] for j in starts]
        remain_images = followers.count(cfg.image_token_id)
        remain_videos = followers.count(cfg.video_token_id)
        pieces: list[np.ndarray] = []
        st = 0
        for _ in range(remain_images + remain_videos):
            ed_image = _index(tokens, cfg.image_token_id, st) if remain_images > 0 else len(tokens) + 1
            ed_video = _index(tokens, cfg.video_token_id, st) if remain_videos > 0 else len(tokens) + 1
            if ed_image < ed_video:
                t, h, w = (int(x) for x in images[image_index])
                # Qwen2.5-VL (which has tokens_per_second) puts image frames at temporal
                # position 0; Qwen2-VL counts frames 0, 1, ...
                t_scale = 1 if tps is None else 0
                image_index += 1
                remain_images -= 1
                ed = ed_image
            else:
                t, h, w = (int(x) for x in videos[video_index])
                if tps is None:
                    t_scale = 1
                else:
                    sec = 1.0 if second_per_grid_ts is None else float(second_per_grid_ts[video_index])
                    # HF-parity quirk: transformers casts seconds-per-grid to the int64 dtype of
                    # arange before scaling, so fractional seconds truncate (0.5 s -> 0).
                    t_scale = int(sec) * int(tps)
                video_index += 1
                remain_videos -= 1
                ed = ed_video
            gt, gh, gw = t, h // merge, w // merge
            text_len = ed - st
            st_idx = int(pieces[-1].max()) + 1 if pieces else 0
            pieces.append(np.broadcast_to(np.arange(text_len, dtype=np.int64), (3, text_len)) + st_idx)
            t_index = np.repeat(np.arange(gt, dtype=np.int64) * t_scale, gh * gw)
            h_index = np.tile(np.repeat(np.arange(gh, dtype=np.int64), gw), gt)
            w_index = np.tile(np.arange(gw, dtype=np.int64), gt * gh)
            pieces.append(np.stack([t_index, h_index, w_index]) + text_len + st_idx)
            st = ed + gt * gh * gw
        if st < len(tokens):
            st_idx = int(pieces[-1].max()) + 1 if pieces else 0
            text_len = len(tokens) - st
            pieces.append(np.broadcast_to(np.arange(text_len, dtype=np.int64), (3, text_len)) + st_idx)
        llm_positions = np.concatenate(pieces, axis=1) if pieces else np.zeros((3, 0), np.int64)
        position_ids[:, i, keep] = llm_positions
        top = int(llm_positions.max()) if llm_positions.size else -1
        deltas[i, 0] = top + 1 - seq
    return position_ids, deltas


def decode_position_ids(rope_deltas: np.ndarray, cache_length: int, seq_len: int = 1) -> np.ndarray:
    """Position ids (3, batch, seq_len) for tokens appended after ``cache_length`` cached ones.

    HF computes ``arange(seq_len) + cache_position[0] + rope_delta`` on all three
    rows; cache_length counts padding too, which the delta already accounts for.
    """
    deltas = np.asarray(rope_deltas, dtype=np.int64).reshape(-1, 1)
    pos = np.arange(seq_len, dtype=np.int64)[None, :] + cache_length + deltas
    return np.broadcast_to(pos[None], (3, *pos.shape)).copy()


def _text_only(batch: int, seq: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if mask is None:
        pos = np.broadcast_to(np.arange(seq, dtype=np.int64), (3, batch, seq)).copy()
        return pos, np.zeros((batch, 1), np.int64)
    m = mask.astype(np.int64)
    pos = np.cumsum(m, axis=-1) - 1
    pos[m == 0] = 1
    deltas = pos.max(axis=-1, keepdims=True) + 1 - seq
    return np.broadcast_to(pos[None], (3, batch, seq)).copy(), deltas.astype(np.int64)


def _index(tokens: list[int], value: int, start: int) -> int:
    try:
        return tokens.index(value, start)
    except ValueError:
        return len(tokens) + 1


def mrope_cos_sin(cfg: ModelConfig, position_ids: np.ndarray, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The rotary cos and sin (batch, seq, head_dim) that Qwen2-VL's M-RoPE applies at ``position_ids``
    (3, batch, seq): each frequency band takes its angle from the temporal, height or width position,
    per ``mrope_section``. Computed here so that a decoder graph can take them as inputs and use
    plain (or fused) rotary arithmetic; same float32 arithmetic as transformers' rotary embedding.
    """
    half = cfg.head_dim // 2
    inv_freq = (1.0 / (cfg.rope_theta ** (np.arange(0, cfg.head_dim, 2, dtype=np.int64).astype(np.float32)
                                         / cfg.head_dim))).astype(np.float32)
    freqs = np.asarray(position_ids, dtype=np.float32)[..., None] * inv_freq  # (3, batch, seq, half)
    band = np.repeat(np.arange(3), cfg.mrope_section)  # which position axis each frequency uses
    if len(band) != half:
        raise ValueError(f"mrope_section {cfg.mrope_section} does not add up to head_dim/2 = {half}")
    chosen = np.moveaxis(freqs[band, :, :, np.arange(half)], 0, -1)  # (batch, seq, half)
    emb = np.concatenate([chosen, chosen], axis=-1)
    return np.cos(emb).astype(dtype), np.sin(emb).astype(dtype)


def rope_rows(cfg: ModelConfig, position_ids: np.ndarray, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (seq, head_dim / 2) at ``position_ids`` (3, seq) for batch 1: the rows of the cos/sin
    caches that GroupQueryAttention's own rotary reads (rotate-half layout, each frequency once).

    Why the fused decoder needs only this: GroupQueryAttention rotates the token at sequence index ``i``
    with row ``i`` of its caches, so the host writes, at each new token's index, the M-RoPE angles of its
    three positions (:func:`mrope_cos_sin`'s first half). A generated token's three positions are equal,
    which makes its row plain RoPE; the decode rows of a whole generation are written once.
    """
    positions = np.asarray(position_ids).reshape(3, 1, -1)
    cos, sin = mrope_cos_sin(cfg, positions, dtype)
    half = cfg.head_dim // 2
    return np.ascontiguousarray(cos[0, :, :half]), np.ascontiguousarray(sin[0, :, :half])
