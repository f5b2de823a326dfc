"""A decoder graph built for decoding: onnxruntime's GroupQueryAttention, M-RoPE cos/sin as inputs,
logits of the last position only and the greedy token computed in the graph.

Why not the optimum export: that graph (export-notes.md, gpu.md) has ~7,000 nodes for the 2B shape,
most of them shape arithmetic, and decoding a token launches thousands of kernels; at batch 1 the
launches, not the memory traffic, set the pace (85 tokens/s where the bandwidth allows ~970). This
builder writes the text model layer by layer with fused operators, as onnxruntime-genai's model
builder does for Llama-like models, about 20 nodes a layer:

- ``SimplifiedLayerNormalization`` (RMSNorm) in fp32 arithmetic whatever the weights' type;
- q/k/v projections with their biases, rotary applied outside attention with cos/sin inputs (M-RoPE
  takes each frequency band's angle from the temporal, height or width position, which
  GroupQueryAttention's own rotary, indexed by a single position, cannot express; the host computes
  cos/sin with ``runtime.rope.mrope_cos_sin``);
- ``com.microsoft.GroupQueryAttention`` with the KV cache as (batch, kv_heads, length, head_dim)
  buffers: a growing cache on the CPU; on the GPU the same graph runs with past and present bound to
  one preallocated buffer (share-buffer mode), which is what CUDA graphs need;
- the LM head on the last position, and ``ArgMax`` so that a greedy step hands back one int64.

The weights come straight from the model's safetensors (fp32 or fp16 graph). Parity with transformers
is tested on tiny models (tests/test_gqa_decoder.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime import io_names
from ..runtime.io_names import COS, INPUTS_EMBEDS, LOGITS, NEXT_TOKEN, SEQLENS_K, SIN, TOTAL_SEQUENCE_LENGTH
from ..runtime.model_config import ModelConfig

OPSET = 17
# onnx's helper writes its own newest IR version (14 for onnx 1.23), which onnxruntime releases before 1.32
# refuse to load; IR 8 is what opset 17 needs and what the optimum graphs beside this one carry.
IR_VERSION = 8
MS_DOMAIN = "com.microsoft"


@dataclass
class _Weights:
    """The text model's tensors by role, whatever the checkpoint's naming generation."""

    tensors: dict[str, np.ndarray]
    prefix: str  # "model.language_model." (transformers >= 4.52) or "model."

    @classmethod
    def load(cls, folder: Path) -> "_Weights":
        from safetensors.numpy import load_file

        tensors: dict[str, np.ndarray] = {}
        for f in sorted(folder.glob("*.safetensors")):
            tensors.update(load_file(f))
        probe = "layers.0.self_attn.q_proj.weight"
        found = [k for k in tensors if k.endswith(probe) and "visual" not in k]
        if not found:
            raise ValueError(f"{folder}: no language-model layers in the safetensors files")
        return cls(tensors, found[0][: -len(probe)])

    def get(self, name: str) -> np.ndarray:
        return self.tensors[self.prefix + name]

    def lm_head(self, tied: bool) -> np.ndarray:
        if not tied and "lm_head.weight" in self.tensors:
            return self.tensors["lm_head.weight"]
        return self.get("embed_tokens.weight")


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

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, hint: str) -> str:
        w = self.const(f"{hint}.weight_t", weight.T.astype(self.dtype))
        y = self.op("MatMul", [x, w], hint)
        if bias is not None:
            y = self.op("Add", [y, self.const(f"{hint}.bias", bias.astype(self.dtype))], hint + "/bias")
        return y


def build_decoder(model_dir: str | Path, out_path: str | Path, precision: str = "fp32") -> Path:
    """Write the fused decoder of ``model_dir`` (a Qwen2-VL / Qwen2.5-VL folder) to ``out_path``."""
    import onnx
    from onnx import TensorProto, helper

    model_dir, out_path = Path(model_dir), Path(out_path)
    cfg = ModelConfig.from_folder(model_dir)
    dtype = {"fp32": np.float32, "fp16": np.float16}[precision]
    w = _Weights.load(model_dir)
    g = _Graph(dtype)
    hd, heads, kv = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
    half = hd // 2
    elem = g.elem

    inputs = [
        helper.make_tensor_value_info(INPUTS_EMBEDS, elem, ["batch", "seq", cfg.hidden_size]),
        helper.make_tensor_value_info(COS, elem, ["batch", "seq", hd]),
        helper.make_tensor_value_info(SIN, elem, ["batch", "seq", hd]),
        helper.make_tensor_value_info(SEQLENS_K, TensorProto.INT32, ["batch"]),
        helper.make_tensor_value_info(TOTAL_SEQUENCE_LENGTH, TensorProto.INT32, []),
    ]
    outputs = [
        helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", 1, cfg.vocab_size]),
        helper.make_tensor_value_info(NEXT_TOKEN, TensorProto.INT64, ["batch", 1]),
    ]
    # Shapes for the rotary reshapes: (batch, seq, heads, hd) <-> (batch, seq, heads*hd).
    split_half = g.const("rotary.split", np.array([half, half], dtype=np.int64))
    q_shape = g.const("shape.q", np.array([0, 0, heads, hd], dtype=np.int64))
    k_shape = g.const("shape.k", np.array([0, 0, kv, hd], dtype=np.int64))
    flat_q = g.const("shape.flat_q", np.array([0, 0, heads * hd], dtype=np.int64))
    flat_k = g.const("shape.flat_k", np.array([0, 0, kv * hd], dtype=np.int64))
    cos4 = g.op("Unsqueeze", [COS, g.const("axes.2", np.array([2], dtype=np.int64))], "rotary/cos")
    sin4 = g.op("Unsqueeze", [SIN, "axes.2"], "rotary/sin")

    def rotary(x: str, shape: str, flat: str, hint: str) -> str:
        x4 = g.op("Reshape", [x, shape], hint + "/heads")
        x1, x2 = g.op("Split", [x4, split_half], hint + "/split", outputs=2, axis=-1)
        rotated = g.op("Concat", [g.op("Neg", [x2], hint + "/neg"), x1], hint + "/rotate_half", axis=-1)
        mixed = g.op("Add", [g.op("Mul", [x4, cos4], hint + "/cos"), g.op("Mul", [rotated, sin4], hint + "/sin")],
                     hint + "/rotary")
        return g.op("Reshape", [mixed, flat], hint + "/flat")

    def rms(x: str, weight: np.ndarray, hint: str) -> str:
        return g.op("SimplifiedLayerNormalization", [x, g.const(hint + ".weight", weight.astype(dtype))], hint,
                    axis=-1, epsilon=cfg.rms_norm_eps, stash_type=1)

    h = INPUTS_EMBEDS
    for i in range(cfg.num_layers):
        p = f"layers.{i}."
        x = rms(h, w.get(p + "input_layernorm.weight"), f"layer{i}.input_norm")
        q = g.linear(x, w.get(p + "self_attn.q_proj.weight"), w.get(p + "self_attn.q_proj.bias"), f"layer{i}.q_proj")
        k = g.linear(x, w.get(p + "self_attn.k_proj.weight"), w.get(p + "self_attn.k_proj.bias"), f"layer{i}.k_proj")
        v = g.linear(x, w.get(p + "self_attn.v_proj.weight"), w.get(p + "self_attn.v_proj.bias"), f"layer{i}.v_proj")
        q = rotary(q, q_shape, flat_q, f"layer{i}.q")
        k = rotary(k, k_shape, flat_k, f"layer{i}.k")
        past_k, past_v = io_names.past_key(i), io_names.past_value(i)
        pres_k, pres_v = io_names.present_key(i), io_names.present_value(i)
        inputs += [helper.make_tensor_value_info(n, elem, ["batch", kv, "past_seq", hd]) for n in (past_k, past_v)]
        outputs += [helper.make_tensor_value_info(n, elem, ["batch", kv, "total_seq", hd]) for n in (pres_k, pres_v)]
        attn = g.op("GroupQueryAttention", [q, k, v, past_k, past_v, SEQLENS_K, TOTAL_SEQUENCE_LENGTH],
                    f"layer{i}.attention", outputs=[g.name(f"layer{i}.attention/out"), pres_k, pres_v],
                    domain=MS_DOMAIN, num_heads=heads, kv_num_heads=kv, scale=float(hd) ** -0.5)
        attn = attn[0]
        h = g.op("Add", [h, g.linear(attn, w.get(p + "self_attn.o_proj.weight"), None, f"layer{i}.o_proj")],
                 f"layer{i}.residual1")
        x = rms(h, w.get(p + "post_attention_layernorm.weight"), f"layer{i}.post_norm")
        gate = g.linear(x, w.get(p + "mlp.gate_proj.weight"), None, f"layer{i}.gate_proj")
        up = g.linear(x, w.get(p + "mlp.up_proj.weight"), None, f"layer{i}.up_proj")
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate], f"layer{i}.sigmoid")], f"layer{i}.silu"), up],
                   f"layer{i}.gated")
        h = g.op("Add", [h, g.linear(act, w.get(p + "mlp.down_proj.weight"), None, f"layer{i}.down_proj")],
                 f"layer{i}.residual2")
    # The last position only: a prefill of hundreds of tokens needs one row of logits.
    last = g.op("Slice", [h, g.const("slice.start", np.array([-1], dtype=np.int64)),
                          g.const("slice.end", np.array([np.iinfo(np.int64).max], dtype=np.int64)),
                          g.const("slice.axis", np.array([1], dtype=np.int64))], "last_position")
    x = rms(last, w.get("norm.weight"), "final_norm")
    logits = g.linear(x, w.lm_head(cfg.tie_word_embeddings), None, "lm_head")
    if dtype != np.float32:
        logits = g.op("Cast", [logits], "logits/float", to=TensorProto.FLOAT)
    g.op("Identity", [logits], "logits", outputs=[LOGITS])
    g.op("ArgMax", [LOGITS], "greedy", outputs=[NEXT_TOKEN], axis=-1, keepdims=0)

    graph = helper.make_graph(g.nodes, "qwen2_vl_gqa_decoder", inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
                              producer_name="vlm-sudoku", ir_version=IR_VERSION)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    large = sum(len(t.raw_data) for t in g.initializers) > 1_500_000_000
    onnx.save_model(model, str(out_path), save_as_external_data=large,
                    location=out_path.name + ".data" if large else None)
    return out_path


if __name__ == "__main__":  # python -m vlm_sudoku.export.gqa_decoder MODEL_DIR OUT.onnx [fp32|fp16]
    import sys

    print(build_decoder(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "fp32"))
