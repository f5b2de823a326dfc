"""A Qwen2-VL vision encoder graph written block by block with onnxruntime's fused operators.

Why not the optimum export: that graph (``vision_encoder``) carries about a hundred nodes a block, most of
them shape arithmetic and the pieces of the rotary, the attention and QuickGelu, so on a GPU a 448x448
image spends almost all of its encoder time in onnxruntime's per-node host overhead (25 ms for the 2B
shape's 32 blocks on an H100, where the arithmetic needs a few). Like export/gqa_decoder.py for the text
model, this builder writes the vision tower straight from the safetensors with the fewest kernels a
block, 13:

- ``SkipLayerNormalization``: the residual add, the bias of the Linear before it (attention ``proj``,
  MLP ``fc2``) and the next LayerNorm in one kernel (LayerNorm arithmetic in fp32 whatever the weights'
  type); the first block's ``norm1`` is an ONNX ``LayerNormalization`` with ``stash_type=1`` (fp32);
- one ``qkv`` MatMul + bias, split into q, k and v;
- ``com.microsoft.RotaryEmbedding`` on q and on k (rotate-half layout), from cos/sin caches of shape
  (num_patches, head_dim / 2) that the host fills (``runtime.vision_rope.vision_rope_rows``) and a
  position offset of 0: RotaryEmbedding rotates patch ``i`` with row ``i``, so writing each patch's 2D
  angles (its row's, then its column's frequencies) at its index expresses the 2D vision rotary, as
  gqa_decoder's cos/sin inputs express M-RoPE;
- ``com.microsoft.MultiHeadAttention`` without a mask: full attention over the patches of one image;
- ``fc1`` + bias, ``com.microsoft.QuickGelu`` (alpha 1.702), ``fc2`` (its bias rides in the next
  SkipLayerNormalization);
- the merger: ``ln_q`` (a SkipLayerNormalization closing the last block), the reshape that folds each
  merge window's ``spatial_merge_size**2`` patches into one row, Linear, ``com.microsoft.BiasGelu``
  (erf GELU, the bias folded in), Linear.

One image per call: the patches of a call attend to each other, all of them, which is transformers'
``cu_seqlens`` attention for one image (grid t = 1, what the image processor makes from a still). Several
images, or the frames of a video (t > 1, which transformers attends frame by frame), need one call each:
the runtime encodes one image per call (``Engine.encode_image`` refuses anything else).

The patch embedding is transformers' Conv3d with stride = kernel, i.e. a MatMul over the flattened
patches, which ``pixel_values`` (num_patches, C * T * P * P) already are. In the fp16 graph every
LayerNorm computes in fp32 and the rotary angles are computed on the host in fp32 (only their cos and sin
are cast), the two places export/fp16.py keeps in fp32 in the optimum graph; the attention's softmax runs in
fp32 inside MultiHeadAttention. Parity with transformers is tested in tests/test_vision_fused.py.

Qwen2.5-VL (window attention, RMSNorm, SwiGLU MLP) is not covered: :func:`build_vision_encoder` refuses it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime.io_names import COS_CACHE, IMAGE_EMBEDS, PIXEL_VALUES, SIN_CACHE
from ..runtime.model_config import ModelConfig
from .gqa_decoder import MS_DOMAIN, _Graph
from .weights import Weights

LAYER_NORM_EPS = 1e-6  # Qwen2-VL's vision LayerNorms (norm1, norm2, ln_q): nn.LayerNorm(dim, eps=1e-6)
QUICK_GELU_ALPHA = 1.702



def check_supported(model_dir: str | Path) -> ModelConfig:
    """The folder's config, or a ValueError saying why the fused vision encoder cannot be built for it."""
    model_dir = Path(model_dir)
    cfg = ModelConfig.from_folder(model_dir)
    if cfg.is_qwen2_5:
        raise ValueError("the fused vision encoder covers Qwen2-VL only: Qwen2.5-VL's vision tower (window "
                         "attention, RMSNorm, SwiGLU MLP) is not built by export/vision_fused.py; use the "
                         "optimum vision_encoder graph")
    v = cfg.vision
    if v.hidden_act != "quick_gelu":
        raise ValueError(f"the fused vision encoder supports hidden_act quick_gelu (Qwen2-VL), not {v.hidden_act!r}")
    if v.embed_dim % v.num_heads or (v.embed_dim // v.num_heads) % 4:
        raise ValueError(f"vision embed_dim {v.embed_dim} over {v.num_heads} heads: the 2D rotary needs a "
                         "head size that is a multiple of 4")
    return cfg


def build_vision_encoder(model_dir: str | Path, out_path: str | Path, precision: str = "fp32") -> Path:
    """Write the fused vision encoder of ``model_dir`` (a Qwen2-VL folder) to ``out_path``.

    Inputs: ``pixel_values`` (num_patches, C * T * P * P) and ``cos_cache`` / ``sin_cache``
    (num_patches, head_dim / 2), all in the graph's float type; output ``image_embeds``
    (num_patches / spatial_merge_size**2, text hidden size), same type."""
    from onnx import helper

    model_dir, out_path = Path(model_dir), Path(out_path)
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
    cfg = check_supported(model_dir)
    v = cfg.vision
    dtype = {"fp32": np.float32, "fp16": np.float16}[precision]
    w = Weights.load(model_dir, "blocks.0.attn.qkv.weight", lambda name: "visual." in name, "Qwen2-VL vision blocks")
    g = _Graph(dtype)
    dim, heads = v.embed_dim, v.num_heads
    head_dim = dim // heads
    unit = v.spatial_merge_size**2
    elem = g.elem

    inputs = [
        helper.make_tensor_value_info(PIXEL_VALUES, elem, ["num_patches", v.patch_dim]),
        helper.make_tensor_value_info(COS_CACHE, elem, ["num_patches", head_dim // 2]),
        helper.make_tensor_value_info(SIN_CACHE, elem, ["num_patches", head_dim // 2]),
    ]
    out_dim = w.get("merger.mlp.2.weight").shape[0]
    outputs = [helper.make_tensor_value_info(IMAGE_EMBEDS, elem, ["num_merged_patches", out_dim])]

    def vec(name: str) -> str:
        return g.const(name, w.get(name).astype(dtype))

    def skip_norm(x: str, residual: str, norm: str, bias: str, hint: str) -> tuple[str, str]:
        """(LayerNorm(x + bias + residual), x + bias + residual): residual add, bias and LayerNorm in one."""
        outs = [g.name(hint + "/out"), "", "", g.name(hint + "/sum")]
        g.op("SkipLayerNormalization", [x, residual, vec(norm + ".weight"), vec(norm + ".bias"), vec(bias)], hint,
             outputs=outs, domain=MS_DOMAIN, epsilon=LAYER_NORM_EPS)
        return outs[0], outs[3]

    # Patch embedding: Conv3d with stride = kernel over each flattened (C, T, P, P) patch = one MatMul.
    patch = w.get("patch_embed.proj.weight").reshape(dim, -1)
    if patch.shape[1] != v.patch_dim:
        raise ValueError(f"patch_embed weight {w.get('patch_embed.proj.weight').shape} does not match the "
                         f"config's patch of {v.patch_dim} values")
    shape = g.const("patches.shape", np.array([1, -1, v.patch_dim], dtype=np.int64))
    x = g.op("Reshape", [PIXEL_VALUES, shape], "patches")  # (1, num_patches, patch_dim): one image, batch 1
    residual = g.linear(x, patch, None, "patch_embed")
    x = g.op("LayerNormalization", [residual, vec("blocks.0.norm1.weight"), vec("blocks.0.norm1.bias")],
             "block0.norm1", axis=-1, epsilon=LAYER_NORM_EPS, stash_type=1)
    offset = g.const("rotary.position_offset", np.zeros(1, dtype=np.int64))  # patch i takes row i
    split = g.const("qkv.split", np.array([dim, dim, dim], dtype=np.int64))
    pending_bias = ""
    for i in range(v.depth):
        p = f"blocks.{i}."
        if i > 0:
            x, residual = skip_norm(x, residual, p + "norm1", pending_bias, f"block{i}.norm1")
        qkv = g.linear(x, w.get(p + "attn.qkv.weight"), w.get(p + "attn.qkv.bias"), f"block{i}.qkv")
        q, k, val = g.op("Split", [qkv, split], f"block{i}.split_qkv", outputs=3, axis=-1)
        q, k = (g.op("RotaryEmbedding", [t, offset, COS_CACHE, SIN_CACHE], f"block{i}.rotary_{n}", domain=MS_DOMAIN,
                     interleaved=0, num_heads=heads) for t, n in ((q, "q"), (k, "k")))
        attn = g.op("MultiHeadAttention", [q, k, val], f"block{i}.attention", domain=MS_DOMAIN, num_heads=heads,
                    scale=float(head_dim) ** -0.5)
        x = g.linear(attn, w.get(p + "attn.proj.weight"), None, f"block{i}.proj")
        x, residual = skip_norm(x, residual, p + "norm2", p + "attn.proj.bias", f"block{i}.norm2")
        x = g.linear(x, w.get(p + "mlp.fc1.weight"), w.get(p + "mlp.fc1.bias"), f"block{i}.fc1")
        x = g.op("QuickGelu", [x], f"block{i}.quick_gelu", domain=MS_DOMAIN, alpha=QUICK_GELU_ALPHA)
        x = g.linear(x, w.get(p + "mlp.fc2.weight"), None, f"block{i}.fc2")
        pending_bias = p + "mlp.fc2.bias"
    # Merger: ln_q closes the last block's residual; each merge window's patches (consecutive) become one row.
    x, _ = skip_norm(x, residual, "merger.ln_q", pending_bias, "merger.ln_q")
    merged = g.op("Reshape", [x, g.const("merger.shape", np.array([-1, unit * dim], dtype=np.int64))], "merger.fold")
    x = g.linear(merged, w.get("merger.mlp.0.weight"), None, "merger.fc1")
    x = g.op("BiasGelu", [x, vec("merger.mlp.0.bias")], "merger.gelu", domain=MS_DOMAIN)
    x = g.op("MatMul", [x, g.const("merger.fc2.weight_t", w.get("merger.mlp.2.weight").T.astype(dtype))], "merger.fc2")
    g.op("Add", [x, vec("merger.mlp.2.bias")], "merger.fc2/bias", outputs=[IMAGE_EMBEDS])

    return g.save("qwen2_vl_fused_vision", inputs, outputs, out_path)


if __name__ == "__main__":  # python -m vlm_sudoku.export.vision_fused MODEL_DIR OUT.onnx [fp32|fp16]
    import sys

    print(build_vision_encoder(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "fp32"))
