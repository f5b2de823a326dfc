"""Every tensor name of the exported graphs, in one dependency-free place.

The exporter (export/) and the runtime (runtime/) both import this module, so
a renamed input cannot drift between the two. The names follow the
onnx-community / transformers.js Qwen2-VL exports so other ONNX tooling can
read our folders too.
"""

from __future__ import annotations

# File names inside EXPORT_DIR/onnx/ (an "_fp16" / "_q4" suffix marks variants).
VISION_ENCODER = "vision_encoder"
EMBED_TOKENS = "embed_tokens"
DECODER = "decoder_model_merged"
GRAPHS = (VISION_ENCODER, EMBED_TOKENS, DECODER)
# Optional: the decoder rebuilt with fused operators (export/gqa_decoder.py, `vlm-export --fused-decoder`).
FUSED_DECODER = "decoder_gqa"
# Optional: the Qwen2-VL vision encoder rebuilt with fused operators (export/vision_fused.py, `--fused-vision`).
FUSED_VISION = "vision_fused"
PRECISION_SUFFIX = {"fp32": "", "fp16": "_fp16", "int4": "_q4"}

# vision_encoder
PIXEL_VALUES = "pixel_values"  # (num_patches, C * temporal * patch * patch)
GRID_THW = "grid_thw"  # (num_images, 3) int64
WINDOW_INDEX = "window_index"  # Qwen2.5-VL only: (num_merged_patches,) int64
CU_WINDOW_SEQLENS = "cu_window_seqlens"  # Qwen2.5-VL only: (num_windows + 1,) int64
IMAGE_EMBEDS = "image_embeds"  # (num_merged_patches, text_hidden)
# vision_fused: pixel_values, then COS_CACHE / SIN_CACHE (below) of shape (num_patches, vision head_dim / 2), the
# 2D vision rotary of each patch computed on the host (runtime.vision_rope.vision_rope_rows); one image per call.

# embed_tokens
INPUT_IDS = "input_ids"  # (batch, seq) int64
INPUTS_EMBEDS = "inputs_embeds"  # (batch, seq, hidden)

# decoder_model_merged
ATTENTION_MASK = "attention_mask"  # (batch, past + seq) int64
POSITION_IDS = "position_ids"  # (3, batch, seq) int64: M-RoPE temporal/height/width rows
LOGITS = "logits"  # (batch, seq, vocab); the fused decoder: (batch, 1, vocab), the last position

# decoder_gqa (besides inputs_embeds, logits and the cache names)
# (rows, head_dim / 2), rows >= total length: the rotary angles of every sequence index (M-RoPE, computed on
# the host by runtime.rope.rope_rows); GroupQueryAttention reads the rows of the new tokens' indices.
COS_CACHE = "cos_cache"
SIN_CACHE = "sin_cache"
LEGACY_COS = "cos"  # fused decoders written before the rotary moved into the attention (refused: re-export)
SEQLENS_K = "seqlens_k"  # (batch,) int32: total length - 1
TOTAL_SEQUENCE_LENGTH = "total_sequence_length"  # () int32
NEXT_TOKEN = "next_token"  # (batch, 1) int64: the greedy token, computed in the graph


def past_key(layer: int) -> str:
    return f"past_key_values.{layer}.key"


def past_value(layer: int) -> str:
    return f"past_key_values.{layer}.value"


def present_key(layer: int) -> str:
    return f"present.{layer}.key"


def present_value(layer: int) -> str:
    return f"present.{layer}.value"


def past_names(num_layers: int) -> list[str]:
    """Cache inputs in graph order: key then value for each layer."""
    return [n for i in range(num_layers) for n in (past_key(i), past_value(i))]


def present_names(num_layers: int) -> list[str]:
    """Cache outputs in graph order: key then value for each layer."""
    return [n for i in range(num_layers) for n in (present_key(i), present_value(i))]


def graph_file(graph: str, precision: str = "fp32") -> str:
    """Relative path of a graph inside an export folder, e.g. onnx/decoder_model_merged_fp16.onnx."""
    return f"onnx/{graph}{PRECISION_SUFFIX[precision]}.onnx"
