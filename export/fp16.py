"""fp32 -> fp16 conversion of exported graphs, keeping overflow-prone nodes in fp32.

Qwen2-VL was trained in bf16, whose range is fp32's; fp16 tops out at 65504.
A plain fp16 cast of the graphs breaks in known places (the symptom on real
checkpoints is a stream of "!!!!" tokens). The conversion goes through
onnxruntime's ``float16`` converter with these nodes kept in fp32 (Casts are
inserted around them):

- RMSNorm / LayerNorm (``*_layernorm``, ``norm``, vision ``norm1``/``norm2``,
  merger ``ln_q``): the mean of x^2 overflows fp16 as soon as |x| > 256, which
  the residual stream of these models exceeds; HF itself upcasts here.
- Rotary angles and their cos/sin (``rotary_emb``, vision ``rotary``):
  position * inv_freq reaches thousands of radians where fp16 has a resolution
  of about one radian, so cos/sin would be noise; HF computes them in fp32.
- Softmax and the additive mask feeding it: the mask minimum (-3.4e38) becomes
  -inf in fp16, a fully masked row (left padding) then turns into NaN that
  spreads through the cache; and exp/sum in fp16 lose probability mass. HF
  runs the softmax in fp32 too.

Everything else (the matmuls, which hold the weights and the bandwidth) runs
in fp16. Logits stay fp32 at the output so that greedy argmax and sampling on
the host see the same values the graph computed.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import onnx
from onnx import external_data_helper, helper, shape_inference

from ..runtime import io_names

# (node-name pattern, why it stays fp32). The names come from the wrapper and HF
# module attribute names, see export/wrappers.py.
KEEP_FP32_SCOPES: tuple[tuple[str, str], ...] = (
    (r"/(input_layernorm|post_attention_layernorm|norm|norm1|norm2|ln_q)/", "RMSNorm/LayerNorm: x^2 overflows fp16"),
    (r"/(rotary_emb|rotary)/", "rotary angles need fp32 resolution"),
)
KEEP_FP32_OPS: tuple[str, ...] = ("Softmax",)
# Walking back from a Softmax through these finds the mask Add that feeds it.
_MASK_PATH_OPS = ("Cast", "Add")

# Graph outputs kept in fp32.
FP32_OUTPUTS: tuple[str, ...] = (io_names.LOGITS,)

# ONNX protobufs cannot exceed 2 GiB; bigger graphs keep their weights in a side file.
PROTO_LIMIT = 2**31 - 1
_INLINE_BYTES = 1024  # tensors below this stay inside the .onnx file


def fp32_node_names(model: onnx.ModelProto) -> set[str]:
    """Names of the nodes that must stay fp32 (see the module docstring for why)."""
    patterns = [re.compile(p) for p, _ in KEEP_FP32_SCOPES]
    keep = {n.name for n in model.graph.node if any(p.search(n.name) for p in patterns)}
    producer = {out: n for n in model.graph.node for out in n.output}
    for node in model.graph.node:
        if node.op_type not in KEEP_FP32_OPS:
            continue
        keep.add(node.name)
        stack = [node.input[0]]
        while stack:
            src = producer.get(stack.pop())
            if src is None or src.op_type not in _MASK_PATH_OPS or src.name in keep:
                continue
            keep.add(src.name)
            if src.op_type == "Cast":
                stack.append(src.input[0])
    return keep


def _drop_internal_value_info(model: onnx.ModelProto, keep: set[str]) -> None:
    """Keep tensors that flow between two fp32 nodes in fp32.

    onnxruntime's converter types every float value_info as fp16 and puts a
    Cast pair around each blocked node, so x^2 between the blocked Pow and
    ReduceMean of an RMSNorm would still be stored in fp16 (and overflow). A
    tensor without value_info is left alone: dropping the value_info of tensors
    produced and consumed only by blocked nodes keeps the whole chain fp32,
    with Casts only where it meets fp16 nodes.
    """
    producer = {out: n.name for n in model.graph.node for out in n.output}
    consumers: dict[str, list[str]] = {}
    for n in model.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n.name)
    outputs = {o.name for o in model.graph.output}
    internal = {
        name
        for name, prod in producer.items()
        if prod in keep and name not in outputs and consumers.get(name) and all(c in keep for c in consumers[name])
    }
    kept = [v for v in model.graph.value_info if v.name not in internal]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def _inline_small_tensors(model: onnx.ModelProto, base_dir: Path) -> None:
    """Load external tensors under 1 KiB into the proto (Constant values, shapes, inv_freq)."""
    for t in _all_tensors(model.graph):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        length = int(info.get("length", 1 << 40))
        if length >= _INLINE_BYTES:
            continue
        with open(base_dir / info["location"], "rb") as f:
            f.seek(int(info.get("offset", 0)))
            t.raw_data = f.read(length)
        del t.external_data[:]
        t.data_location = onnx.TensorProto.DEFAULT


def initializer_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers, whether in the proto or in external data."""
    total = 0
    for t in _all_tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            total += int(next((e.value for e in t.external_data if e.key == "length"), 0))
        else:
            total += len(t.raw_data) or 4 * len(t.float_data)
    return total


def save_onnx(model: onnx.ModelProto, path: Path) -> list[str]:
    """Save a graph whose weights are all in memory, moving them to ``<file>_data`` past the 2 GiB limit.

    Returns the external data file names written (relative to the graph's folder).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if initializer_bytes(model) < PROTO_LIMIT - (64 << 20):
        onnx.save_model(model, str(path))
        return []
    location = path.name + "_data"
    onnx.save_model(
        model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location, size_threshold=1024
    )
    return [location]


@contextmanager
def _shape_only_value_infos() -> Iterator[None]:
    """Make onnxruntime's converter describe initializers from their dims, not their data.

    Its ``make_value_info_from_tensor`` calls ``numpy_helper.to_array`` just to read
    the shape: that copies every weight once more and fails on weights still in
    external data. The dims are in the TensorProto already.
    """
    from onnxruntime.transformers import float16

    original = float16.make_value_info_from_tensor
    float16.make_value_info_from_tensor = lambda t: helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
    try:
        yield
    finally:
        float16.make_value_info_from_tensor = original


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Initializers and node-attribute tensors (optimum also moves Constant values to external data)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def _stream_external_weights(model: onnx.ModelProto, src_dir: Path, dst: Path) -> str:
    """Rewrite the external weights for the converted graph, one tensor at a time.

    The converter only flips ``data_type`` of external initializers (their bytes
    are not loaded); here each tensor's fp32 bytes are read from the source file,
    converted (with the converter's clamping) when it became fp16, and appended
    to ``<dst>_data``. Memory stays at one tensor, so the 6 GB decoder of the
    2B shape converts on a 24 GB machine.
    """
    from onnxruntime.transformers.float16 import convert_np_to_float16

    location = dst.name + "_data"
    handles: dict[str, Any] = {}
    offset = 0
    with open(dst.parent / location, "wb") as out:
        for t in _all_tensors(model.graph):
            if t.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {e.key: e.value for e in t.external_data}
            f = handles.get(info["location"]) or handles.setdefault(info["location"], open(src_dir / info["location"], "rb"))
            f.seek(int(info.get("offset", 0)))
            data = f.read(int(info["length"]))
            if t.data_type == onnx.TensorProto.FLOAT16:  # converted: source bytes are still fp32
                data = convert_np_to_float16(np.frombuffer(data, dtype=np.float32)).astype(np.float16).tobytes()
            del t.external_data[:]
            if len(data) < _INLINE_BYTES:
                # Small values stay in the proto: some ops (ConstantOfShape) cannot read theirs from a file.
                t.data_location = onnx.TensorProto.DEFAULT
                t.raw_data = data
                continue
            pad = (-offset) % 4096  # page-aligned like onnx's own writer, so it can be memory-mapped
            out.write(b"\0" * pad)
            offset += pad
            out.write(data)
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(data)))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            offset += len(data)
    for f in handles.values():
        f.close()
    return location


def drop_repeated_nodes(graph: onnx.GraphProto) -> int:
    """Remove nodes that repeat an earlier node exactly, and repeated value_info entries; returns how many nodes.

    onnxruntime's converter before 1.32 inserts one ``X_cast_to_fp32`` Cast per consumer of a kept-fp32
    node's fp16 input, all with the same name and output, and onnxruntime then refuses the graph ("two nodes
    with same node name"); 1.32 shares one Cast. The repeats are identical, so keeping the first is exact.
    """
    seen: set[bytes] = set()
    produced: set[str] = set()
    kept = []
    for node in graph.node:
        key = node.SerializeToString(deterministic=True)
        if key in seen:
            continue
        clash = produced.intersection(node.output)
        if clash:
            raise ValueError(f"fp16 conversion: {sorted(clash)[0]} is written by two different nodes")
        seen.add(key)
        produced.update(node.output)
        kept.append(node)
    dropped = len(graph.node) - len(kept)
    if dropped:
        del graph.node[:]
        graph.node.extend(kept)
    infos, names = [], set()
    for info in graph.value_info:
        if info.name not in names:
            names.add(info.name)
            infos.append(info)
    if len(infos) != len(graph.value_info):
        del graph.value_info[:]
        graph.value_info.extend(infos)
    return dropped


def convert_to_fp16(src: Path, dst: Path) -> list[str]:
    """Write the fp16 variant of the fp32 graph ``src`` to ``dst``; returns external data files.

    Weights in external data are never all loaded at once (see
    ``_stream_external_weights``); a graph whose fp16 weights fit under the
    2 GiB limit is then saved as a single file.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src), load_external_data=False)
    _inline_small_tensors(model, src.parent)  # shape inference must see Constant values
    model = shape_inference.infer_shapes(model)
    keep = fp32_node_names(model)
    _drop_internal_value_info(model, keep)
    with _shape_only_value_infos():
        converted = convert_float_to_float16(
            model,
            keep_io_types=[o.name for o in model.graph.output if o.name in FP32_OUTPUTS],
            disable_shape_infer=True,
            node_block_list=sorted(keep),
        )
    del model
    drop_repeated_nodes(converted.graph)
    if not any(t.data_location == onnx.TensorProto.EXTERNAL for t in _all_tensors(converted.graph)):
        return save_onnx(converted, dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    location = _stream_external_weights(converted, src.parent, dst)
    if initializer_bytes(converted) < PROTO_LIMIT - (64 << 20):
        external_data_helper.load_external_data_for_model(converted, str(dst.parent))
        (dst.parent / location).unlink()
        return save_onnx(converted, dst)
    onnx.save_model(converted, str(dst))
    return [location]
