"""A decoder graph built for decoding: onnxruntime's GroupQueryAttention with its own rotary, M-RoPE
angles as cos/sin cache inputs, logits of the last position only and the greedy token computed in the graph.

Why not the optimum export: that graph (export-notes.md, gpu.md) has ~7,000 nodes for the 2B shape,
most of them shape arithmetic, and decoding a token launches thousands of kernels; at batch 1 the
launches, not the memory traffic, set the pace (85 tokens/s where the bandwidth allows ~970). Even
replayed as a CUDA graph, each kernel costs a few microseconds however small its work, so this builder
writes the text model layer by layer with the fewest kernels a layer, as onnxruntime-genai's model
builder does for Llama-like models (about 12 nodes a layer):

- ``SkipSimplifiedLayerNormalization``: the residual add and the next RMSNorm in one kernel (fp32
  arithmetic whatever the weights' type);
- one q/k/v projection (the three matrices stacked, their biases too) feeding GroupQueryAttention's
  packed-QKV input;
- ``com.microsoft.GroupQueryAttention`` applying the rotary itself (``do_rotary``) from cos/sin caches
  of shape (rows, head_dim / 2) that the host fills: GroupQueryAttention rotates the token at sequence
  index ``i`` with row ``i``, so writing each token's M-RoPE angles at its index expresses M-RoPE (each
  frequency band's angle from the temporal, height or width position), which a rotary indexed by one
  position id could not (``runtime.rope.rope_rows``; the runtime writes a generation's rows once);
- the KV cache as (batch, kv_heads, length, head_dim) buffers: a growing cache on the CPU; on the GPU
  the same graph runs with past and present bound to one preallocated buffer (share-buffer mode),
  which is what CUDA graphs need;
- the LM head on the last position, and ``ArgMax`` so that a greedy step hands back one int64.

The weights come straight from the model's safetensors (fp32 or fp16 graph). Parity with transformers
is tested on tiny models (tests/test_gqa_decoder.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..runtime import io_names
from ..runtime.io_names import COS_CACHE, INPUTS_EMBEDS, LOGITS, NEXT_TOKEN, SEQLENS_K, SIN_CACHE, TOTAL_SEQUENCE_LENGTH
from ..runtime.model_config import ModelConfig
from .weights import Weights

OPSET = 17
# onnx's helper writes its own newest IR version (14 for onnx 1.23), which onnxruntime releases before 1.32
# refuse to load; IR 8 is what opset 17 needs and what the optimum graphs beside this one carry.
IR_VERSION = 8
MS_DOMAIN = "com.microsoft"


def _lm_head(w: Weights, tied: bool) -> np.ndarray:
    if not tied and "lm_head.weight" in w.tensors:
        return w.tensors["lm_head.weight"]
    return w.get("embed_tokens.weight")


class _Graph:
    def __init__(self, dtype: Any) -> None:
        from onnx import TensorProto

        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.dtype = dtype
        self.elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, outputs: int | list[str] = 1, domain: str = "",
           **attrs: Any) -> Any:
        from onnx import helper

        outs = outputs if isinstance(outputs, list) else [self.name(f"{hint}/out") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(hint), domain=domain, **attrs))
        return outs[0] if len(outs) == 1 else outs

    def save(self, name: str, inputs: list[Any], outputs: list[Any], out_path: Path) -> Path:
        """Write the graph (opset 17 + com.microsoft, IR 8); weights past 1.5 GB go to a side file (protobuf's
        2 GB limit)."""
        import onnx
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
                                  producer_name="vlm-sudoku", ir_version=IR_VERSION)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        large = sum(len(t.raw_data) for t in self.initializers) > 1_500_000_000
        onnx.save_model(model, str(out_path), save_as_external_data=large,
                        location=out_path.name + ".data" if large else None)
        return out_path

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, hint: str) -> str:
        w = self.const(f"{hint}.weight_t", weight.T.astype(self.dtype))
        y = self.op("MatMul", [x, w], hint)
        if bias is not None:
            y = self.op("Add", [y, self.const(f"{hint}.bias", bias.astype(self.dtype))], hint + "/bias")
        return y


def build_decoder(model_dir: str | Path, out_path: str | Path, precision: str = "fp32") -> Path:
    """Write the fused decoder of ``model_dir`` (a Qwen2-VL / Qwen2.5-VL folder) to ``out_path``."""
    from onnx import TensorProto, helper

    model_dir, out_path = Path(model_dir), Path(out_path)
    cfg = ModelConfig.from_folder(model_dir)
    dtype = {"fp32": np.float32, "fp16": np.float16}[precision]
    w = Weights.load(model_dir, "layers.0.self_attn.q_proj.weight", lambda name: "visual." not in name,
                     "language-model layers")
    g = _Graph(dtype)
    hd, heads, kv = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
    half = hd // 2
    elem = g.elem

    inputs = [
        helper.make_tensor_value_info(INPUTS_EMBEDS, elem, ["batch", "seq", cfg.hidden_size]),
        helper.make_tensor_value_info(COS_CACHE, elem, ["rope_rows", half]),
        helper.make_tensor_value_info(SIN_CACHE, elem, ["rope_rows", half]),
        helper.make_tensor_value_info(SEQLENS_K, TensorProto.INT32, ["batch"]),
        helper.make_tensor_value_info(TOTAL_SEQUENCE_LENGTH, TensorProto.INT32, []),
    ]
    outputs = [
        helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", 1, cfg.vocab_size]),
        helper.make_tensor_value_info(NEXT_TOKEN, TensorProto.INT64, ["batch", 1]),
    ]

    def rms(x: str, weight: np.ndarray, hint: str) -> str:
        return g.op("SimplifiedLayerNormalization", [x, g.const(hint + ".weight", weight.astype(dtype))], hint,
                    axis=-1, epsilon=cfg.rms_norm_eps, stash_type=1)

    def skip_rms(x: str, residual: str, weight: np.ndarray, hint: str) -> tuple[str, str]:
        """(normed, residual + x): the residual add and the next RMSNorm in one kernel."""
        outs = [g.name(hint + "/out"), "", "", g.name(hint + "/sum")]
        g.op("SkipSimplifiedLayerNormalization", [x, residual, g.const(hint + ".weight", weight.astype(dtype))], hint,
             outputs=outs, domain=MS_DOMAIN, epsilon=cfg.rms_norm_eps)
        return outs[0], outs[3]

    def stacked(names: list[str], bias: bool) -> np.ndarray:
        """q, k and v projections as one (the attention takes packed QKV): one matrix-vector product a step."""
        return np.concatenate([w.get(n + (".bias" if bias else ".weight")) for n in names], axis=0)

    residual = INPUTS_EMBEDS
    x = rms(INPUTS_EMBEDS, w.get("layers.0.input_layernorm.weight"), "layer0.input_norm")
    mlp_out = ""
    for i in range(cfg.num_layers):
        p = f"layers.{i}."
        if i > 0:
            x, residual = skip_rms(mlp_out, residual, w.get(p + "input_layernorm.weight"), f"layer{i}.input_norm")
        qkv_names = [p + f"self_attn.{n}_proj" for n in "qkv"]
        qkv = g.linear(x, stacked(qkv_names, False), stacked(qkv_names, True), f"layer{i}.qkv_proj")
        past_k, past_v = io_names.past_key(i), io_names.past_value(i)
        pres_k, pres_v = io_names.present_key(i), io_names.present_value(i)
        inputs += [helper.make_tensor_value_info(n, elem, ["batch", kv, "past_seq", hd]) for n in (past_k, past_v)]
        outputs += [helper.make_tensor_value_info(n, elem, ["batch", kv, "total_seq", hd]) for n in (pres_k, pres_v)]
        attn = g.op("GroupQueryAttention", [qkv, "", "", past_k, past_v, SEQLENS_K, TOTAL_SEQUENCE_LENGTH,
                                            COS_CACHE, SIN_CACHE],
                    f"layer{i}.attention", outputs=[g.name(f"layer{i}.attention/out"), pres_k, pres_v],
                    domain=MS_DOMAIN, num_heads=heads, kv_num_heads=kv, scale=float(hd) ** -0.5,
                    do_rotary=1, rotary_interleaved=0)[0]
        o = g.linear(attn, w.get(p + "self_attn.o_proj.weight"), None, f"layer{i}.o_proj")
        x, residual = skip_rms(o, residual, w.get(p + "post_attention_layernorm.weight"), f"layer{i}.post_norm")
        gate = g.linear(x, w.get(p + "mlp.gate_proj.weight"), None, f"layer{i}.gate_proj")
        up = g.linear(x, w.get(p + "mlp.up_proj.weight"), None, f"layer{i}.up_proj")
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate], f"layer{i}.sigmoid")], f"layer{i}.silu"), up],
                   f"layer{i}.gated")
        mlp_out = g.linear(act, w.get(p + "mlp.down_proj.weight"), None, f"layer{i}.down_proj")
    # The last position only: a prefill of hundreds of tokens needs one row of logits.
    start = g.const("slice.start", np.array([-1], dtype=np.int64))
    end = g.const("slice.end", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    axis = g.const("slice.axis", np.array([1], dtype=np.int64))
    last_out = g.op("Slice", [mlp_out, start, end, axis], "last_position")
    last_res = g.op("Slice", [residual, start, end, axis], "last_position/residual")
    x, _ = skip_rms(last_out, last_res, w.get("norm.weight"), "final_norm")
    logits = g.linear(x, _lm_head(w, cfg.tie_word_embeddings), None, "lm_head")
    if dtype != np.float32:
        logits = g.op("Cast", [logits], "logits/float", to=TensorProto.FLOAT)
    g.op("Identity", [logits], "logits", outputs=[LOGITS])
    g.op("ArgMax", [LOGITS], "greedy", outputs=[NEXT_TOKEN], axis=-1, keepdims=0)

    return g.save("qwen2_vl_gqa_decoder", inputs, outputs, out_path)


if __name__ == "__main__":  # python -m vlm_sudoku.export.gqa_decoder MODEL_DIR OUT.onnx [fp32|fp16]
    import sys

    print(build_decoder(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "fp32"))
