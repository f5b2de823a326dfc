"""A minimal numpy + onnxruntime greedy loop over the three exported graphs.

This is the reference the exporter's parity check and the export tests use to
prove the graphs say what PyTorch says: plain numpy in and out, no IO binding,
no KV preallocation, CPU by default. The production runtime replaces it; keep
this one small and obviously correct rather than fast.

The loop, step by step (each step mirrors transformers' generate for Qwen2-VL):
1. ``embed_tokens(input_ids)`` gives the prompt embeddings;
2. ``vision_encoder`` gives one row per merged patch, written at the rows of
   the image pad tokens, in order (HF ``masked_scatter``);
3. M-RoPE position ids and rope deltas come from :mod:`runtime.rope`;
4. prefill runs the decoder with an empty (length 0) cache;
5. each next token is the argmax of the last logits; its position is
   cache length + rope delta on all three rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import io_names
from .model_config import ModelConfig
from .rope import decode_position_ids, get_rope_index
from .vision_windows import get_window_index

_ORT_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


class _Graph:
    """An onnxruntime session that casts numpy inputs to the dtypes the graph declares."""

    def __init__(self, path: Path, providers: Sequence[str] | None, threads: int | None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=list(providers or ["CPUExecutionProvider"]))
        self.input_types = {i.name: _ORT_TO_NUMPY[i.type] for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cast = {k: np.ascontiguousarray(v, dtype=self.input_types[k]) for k, v in feeds.items() if k in self.input_types}
        return dict(zip(self.output_names, self.session.run(None, cast)))


@dataclass
class OnnxGraphs:
    """The three sessions of one precision of an export folder."""

    cfg: ModelConfig
    vision: _Graph
    embed: _Graph
    decoder: _Graph
    precision: str = "fp32"

    @classmethod
    def load(
        cls,
        export_dir: str | Path,
        precision: str = "fp32",
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> "OnnxGraphs":
        root = Path(export_dir)
        cfg = ModelConfig.from_folder(root)
        graphs = {g: _Graph(root / io_names.graph_file(g, precision), providers, threads) for g in io_names.GRAPHS}
        return cls(cfg, graphs[io_names.VISION_ENCODER], graphs[io_names.EMBED_TOKENS], graphs[io_names.DECODER], precision)


@dataclass
class GreedyResult:
    tokens: np.ndarray  # (batch, new_tokens) int64
    prefill_logits: np.ndarray  # (batch, prompt_len, vocab) float32
    step_logits: list[np.ndarray] = field(default_factory=list)  # last-position logits of every step


def encode_images(
    graphs: OnnxGraphs, pixel_values: np.ndarray, image_grid_thw: np.ndarray, per_image: bool = False
) -> np.ndarray:
    """Image embeddings (num_merged_patches, hidden) for all images, in prompt order.

    ``per_image`` runs the vision graph once per image; results are the same
    (attention is block-diagonal per image), memory is lower (the graph's
    attention mask is num_patches squared).
    """
    grid = np.asarray(image_grid_thw, dtype=np.int64).reshape(-1, 3)
    if per_image and len(grid) > 1:
        sizes = np.prod(grid, axis=1)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        parts = [
            encode_images(graphs, pixel_values[starts[i] : starts[i + 1]], grid[i : i + 1]) for i in range(len(grid))
        ]
        return np.concatenate(parts, axis=0)
    feeds: dict[str, Any] = {io_names.PIXEL_VALUES: pixel_values, io_names.GRID_THW: grid}
    if io_names.WINDOW_INDEX in graphs.vision.input_types:
        window_index, cu_window_seqlens = get_window_index(grid, graphs.cfg.vision)
        feeds[io_names.WINDOW_INDEX] = window_index
        feeds[io_names.CU_WINDOW_SEQLENS] = cu_window_seqlens
    out = graphs.vision.run(feeds)[io_names.IMAGE_EMBEDS]
    return out.astype(np.float32)


def greedy_generate(
    graphs: OnnxGraphs,
    input_ids: np.ndarray,
    attention_mask: np.ndarray | None = None,
    pixel_values: np.ndarray | None = None,
    image_grid_thw: np.ndarray | None = None,
    max_new_tokens: int = 16,
    eos_token_ids: Sequence[int] = (),
    per_image: bool = False,
    keep_step_logits: bool = False,
) -> GreedyResult:
    """Greedy decoding through the three graphs; stops early only if every row hit an eos id."""
    cfg = graphs.cfg
    input_ids = np.asarray(input_ids, dtype=np.int64)
    batch, seq = input_ids.shape
    mask = np.ones_like(input_ids) if attention_mask is None else np.asarray(attention_mask, dtype=np.int64)

    embeds = graphs.embed.run({io_names.INPUT_IDS: input_ids})[io_names.INPUTS_EMBEDS].astype(np.float32)
    if pixel_values is not None:
        image_embeds = encode_images(graphs, pixel_values, image_grid_thw, per_image=per_image)
        rows = input_ids == cfg.image_token_id
        if int(rows.sum()) != len(image_embeds):
            raise ValueError(f"{int(rows.sum())} image tokens in the prompt but {len(image_embeds)} image embeddings")
        embeds[rows] = image_embeds  # row-major over (batch, seq), like HF masked_scatter

    position_ids, rope_deltas = get_rope_index(cfg, input_ids, image_grid_thw, None, mask)
    kv_shape = (batch, cfg.num_kv_heads, 0, cfg.head_dim)
    past = {n: np.zeros(kv_shape, np.float32) for n in io_names.past_names(cfg.num_layers)}
    present_names = io_names.present_names(cfg.num_layers)

    def step(emb: np.ndarray, pos: np.ndarray) -> np.ndarray:
        out = graphs.decoder.run(
            {io_names.INPUTS_EMBEDS: emb, io_names.ATTENTION_MASK: mask, io_names.POSITION_IDS: pos, **past}
        )
        for p_name, n in zip(io_names.past_names(cfg.num_layers), present_names):
            past[p_name] = out[n]
        return out[io_names.LOGITS].astype(np.float32)

    logits = step(embeds, position_ids)
    prefill = logits
    tokens: list[np.ndarray] = []
    steps: list[np.ndarray] = []
    finished = np.zeros(batch, dtype=bool)
    for _ in range(max_new_tokens):
        last = logits[:, -1, :]
        if keep_step_logits:
            steps.append(last)
        nxt = last.argmax(axis=-1).astype(np.int64)
        tokens.append(nxt)
        if eos_token_ids:
            finished |= np.isin(nxt, list(eos_token_ids))
            if finished.all():
                break
        if len(tokens) == max_new_tokens:
            break
        cache_len = mask.shape[1]
        mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
        emb = graphs.embed.run({io_names.INPUT_IDS: nxt[:, None]})[io_names.INPUTS_EMBEDS]
        logits = step(emb, decode_position_ids(rope_deltas, cache_len))
    return GreedyResult(tokens=np.stack(tokens, axis=1), prefill_logits=prefill, step_logits=steps)
