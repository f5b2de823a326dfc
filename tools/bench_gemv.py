"""Which ONNX form of a decoder layer's matrix-vector products runs fastest on this GPU, batch 1.

    python -m vlm_sudoku.tools.bench_gemv [--hidden 1536 --intermediate 8960 --qkv 2048 --layers 28]

A decode step reads every weight once, so its pace is the matrix-vector products' bandwidth. cuBLAS
picks its kernel from the operand layout and shape, and onnxruntime reaches it through several ops; this
times each form on the 2B shape's products, with ``--layers`` distinct weight matrices a graph (more
bytes than the GPU's L2 cache, as in a real step), every graph replayed as a CUDA graph as the runtime
does. The forms: ``MatMul`` on (in, out) weights (what the fused decoder writes), com.microsoft
``FusedMatMul`` with ``transB`` on (out, in) weights (PyTorch's own layout), ``Gemm`` with ``transB``;
and for the MLP, gate and up as two products or as one stacked product split after it, or the whole SwiGLU
MLP as one com.microsoft ``MoE`` node with a single expert (CUTLASS grouped GEMMs with the activation fused:
the one onnxruntime route to fp16 weight products that is not cuBLAS). Prints a table: microseconds a
product and the bandwidth it reached. A development tool: the fused decoder's
builder (export/gqa_decoder.py) takes the winner.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

MS = "com.microsoft"
MLP_ONLY = ("MoE",)  # forms of a whole MLP, not of one product


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], weights: dict[str, np.ndarray]) -> Any:
    from onnx import helper, numpy_helper

    graph = helper.make_graph(nodes, "bench", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                             ir_version=8)


def _random(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    return (rng.standard_normal((k, n), dtype=np.float32) * k ** -0.5).astype(np.float16)


# WeightLeft's reshapes: the activation row as a column, the product's column back as a (1, 1, n) row
SHAPES = {"as_column": np.array([-1, 1], dtype=np.int64), "as_row": np.array([1, 1, -1], dtype=np.int64)}


def _product(form: str, x: str, weight: str, out: str) -> list[Any]:
    from onnx import helper

    if form == "MatMul":
        return [helper.make_node("MatMul", [x, weight], [out])]
    if form == "FusedMatMul":
        return [helper.make_node("FusedMatMul", [x, weight], [out], domain=MS, transB=1)]
    if form == "WeightLeft":  # y^T = W x^T: cuBLAS sees m = 1 instead of n = 1; the reshapes cost no kernel
        return [helper.make_node("Reshape", [x, "as_column"], [out + "_xcol"]),
                helper.make_node("MatMul", [weight, out + "_xcol"], [out + "_ycol"]),
                helper.make_node("Reshape", [out + "_ycol", "as_row"], [out])]
    return [helper.make_node("Gemm", [x, weight], [out], transB=1)]


def _layout(form: str, w: np.ndarray) -> np.ndarray:
    """``w`` is (in, out); the other forms store (out, in)."""
    return np.ascontiguousarray(w if form == "MatMul" else w.T)


def products_graph(form: str, k: int, n: int, layers: int, rng: np.random.Generator) -> Any:
    """``layers`` independent (k -> n) products of one input vector."""
    from onnx import TensorProto, helper

    x_shape = [1, k] if form == "Gemm" else [1, 1, k]
    y_shape = [1, n] if form == "Gemm" else [1, 1, n]
    weights: dict[str, np.ndarray] = {f"w{i}": _layout(form, _random(rng, k, n)) for i in range(layers)}
    if form == "WeightLeft":
        weights.update(SHAPES)
    nodes = [node for i in range(layers) for node in _product(form, "x", f"w{i}", f"y{i}")]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT16, x_shape)],
                  [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT16, y_shape) for i in range(layers)], weights)


def mlp_graph(form: str, stacked: bool, hidden: int, inter: int, layers: int, rng: np.random.Generator) -> Any:
    """``layers`` SwiGLU MLPs in a chain (down(silu(gate x) * up x)), gate and up apart or stacked; the ``MoE``
    form is com.microsoft MoE with one expert, always taken: gate and up stacked, SwiGLU and down in one node
    (its CUDA kernels are CUTLASS grouped GEMMs with the activation fused, not cuBLAS)."""
    from onnx import TensorProto, helper

    shape = [1, hidden] if form == "Gemm" else [1, 1, hidden]
    weights: dict[str, np.ndarray] = dict(SHAPES) if form == "WeightLeft" else {}
    nodes, x = [], "x"
    if form == "MoE":
        weights["route"] = np.ones((1, 1), dtype=np.float16)  # one expert, always taken whole
        nodes.append(helper.make_node("Reshape", [x, "as_token"], ["x_token"]))
        weights["as_token"] = np.array([1, hidden], dtype=np.int64)
        x = "x_token"
    for i in range(layers):
        gate = _random(rng, hidden, inter)
        up = _random(rng, hidden, inter)
        down = _random(rng, inter, hidden)
        if form == "MoE":  # (expert, out, in) weights, gate and up rows interleaved (swiglu_fusion=1: both EPs have it)
            weights[f"gu{i}"] = np.ascontiguousarray(np.stack([gate.T, up.T], axis=1).reshape(2 * inter, hidden)[None])
            weights[f"d{i}"] = np.ascontiguousarray(down.T[None])
            nodes.append(helper.make_node(
                "MoE", [x, "route", f"gu{i}", "", f"d{i}"], [f"x{i + 1}"], domain=MS, k=1, activation_type="swiglu",
                swiglu_fusion=1, activation_alpha=1.0, activation_beta=0.0, normalize_routing_weights=1))
            x = f"x{i + 1}"
            continue
        if stacked:
            weights[f"gu{i}"] = _layout(form, np.concatenate([gate, up], axis=1))
            nodes += [*_product(form, x, f"gu{i}", f"gu{i}_y"),  # opset 17: equal halves without a split input
                      helper.make_node("Split", [f"gu{i}_y"], [f"g{i}_y", f"u{i}_y"], axis=-1)]
        else:
            weights[f"g{i}"], weights[f"u{i}"] = _layout(form, gate), _layout(form, up)
            nodes += [*_product(form, x, f"g{i}", f"g{i}_y"), *_product(form, x, f"u{i}", f"u{i}_y")]
        weights[f"d{i}"] = _layout(form, down)
        nodes += [helper.make_node("Sigmoid", [f"g{i}_y"], [f"s{i}"]),
                  helper.make_node("Mul", [f"g{i}_y", f"s{i}"], [f"silu{i}"]),
                  helper.make_node("Mul", [f"silu{i}", f"u{i}_y"], [f"h{i}"]),
                  *_product(form, f"h{i}", f"d{i}", f"x{i + 1}")]
        x = f"x{i + 1}"
    if form == "MoE":
        weights["as_input"] = np.array(shape, dtype=np.int64)
        nodes.append(helper.make_node("Reshape", [x, "as_input"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [x], ["y"]))
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT16, shape)],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT16, shape)], weights)


def time_graph(model: Any, provider: str, repeat: int, config: dict[str, str] | None = None,
               provider_options: dict[str, str] | None = None) -> float:
    """Median seconds a run, inputs and outputs bound on the device, replayed as a CUDA graph on CUDA.
    ``provider_options`` go to the CUDA execution provider (e.g. tunable_op_enable=1, tunable_op_tuning_enable=1:
    onnxruntime's TunableOp, which times the GEMM implementations it has for each shape and keeps the fastest)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.onnx"
        onnx.save_model(model, str(path))
        if provider == "cuda":
            options = {"device_id": "0", "enable_cuda_graph": "1", "use_tf32": "0", **(provider_options or {})}
            providers: list[Any] = [("CUDAExecutionProvider", options)]
            device = "cuda"
        else:
            providers, device = ["CPUExecutionProvider"], "cpu"
        session_options = ort.SessionOptions()
        for key, value in (config or {}).items():
            session_options.add_session_config_entry(key, value)
        session = ort.InferenceSession(str(path), session_options, providers=providers)
    binding = session.io_binding()
    for i in session.get_inputs():
        shape = [int(d) for d in i.shape]
        binding.bind_ortvalue_input(i.name, ort.OrtValue.ortvalue_from_numpy(
            np.random.default_rng(1).normal(0, 1, shape).astype(np.float16), device, 0))
    for o in session.get_outputs():
        binding.bind_ortvalue_output(o.name, ort.OrtValue.ortvalue_from_shape_and_type(
            [int(d) for d in o.shape], np.float16, device, 0))
    times = []
    for i in range(repeat + 3):
        t = time.perf_counter()
        session.run_with_iobinding(binding)
        if i >= 3:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _pairs(items: tuple[str, ...], flag: str) -> dict[str, str]:
    bad = [item for item in items if "=" not in item]
    if bad:
        raise click.BadParameter(f"expected KEY=VALUE, got {bad[0]!r}", param_hint=flag)
    return dict(item.split("=", 1) for item in items)


@click.command()
@click.option("--hidden", default=1536, show_default=True)
@click.option("--intermediate", default=8960, show_default=True)
@click.option("--qkv", default=2048, show_default=True, help="Stacked q/k/v width (heads + 2 kv heads, x head_dim).")
@click.option("--layers", default=28, show_default=True, help="Distinct weights a graph.")
@click.option("--repeat", default=50, show_default=True)
@click.option("--provider", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--forms", default="MatMul,FusedMatMul,Gemm,WeightLeft,MoE", show_default=True,
              help="MoE: the MLP table only (onnxruntime's MoE op with one expert).")
@click.option("--config", "configs", multiple=True, metavar="KEY=VALUE",
              help="Session config entry, e.g. ep.cuda.enable_gemm_auto_tune=1 (onnxruntime-gpu 1.31's GEMM tuner).")
@click.option("--provider-option", "provider_options", multiple=True, metavar="KEY=VALUE",
              help="CUDA execution provider option, e.g. tunable_op_enable=1 and tunable_op_tuning_enable=1.")
def main(hidden: int, intermediate: int, qkv: int, layers: int, repeat: int, provider: str, forms: str,
         configs: tuple[str, ...], provider_options: tuple[str, ...]) -> None:
    config = _pairs(configs, "--config")
    cuda_options = _pairs(provider_options, "--provider-option")
    rng = np.random.default_rng(0)
    form_list = forms.split(",")
    shapes = {"qkv": (hidden, qkv), "o_proj": (hidden, hidden), "gate/up": (hidden, intermediate),
              "gate+up stacked": (hidden, 2 * intermediate), "down": (intermediate, hidden)}
    print(f"| product | k x n | form | us a product | GB/s |\n|---|---|---|---:|---:|")
    for label, (k, n) in shapes.items():
        for form in (f for f in form_list if f not in MLP_ONLY):
            seconds = time_graph(products_graph(form, k, n, layers, rng), provider, repeat, config, cuda_options) / layers
            print(f"| {label} | {k}x{n} | {form} | {seconds * 1e6:.1f} | {2 * k * n / seconds / 1e9:.0f} |", flush=True)
    layers = min(layers, 16)  # 16 MLPs of the 2B shape are 1.3 GB: under protobuf's 2 GB, far over the L2 cache
    print(f"\n| MLP ({layers} layers, SwiGLU) | form | us a layer | GB/s |\n|---|---|---:|---:|")
    for stacked in (False, True):
        for form in (f for f in form_list if stacked or f not in MLP_ONLY):  # (MoE stacks gate and up itself)
            seconds = time_graph(mlp_graph(form, stacked, hidden, intermediate, layers, rng), provider, repeat, config,
                                 cuda_options) / layers
            label = ("gate+up stacked, one MoE node" if form in MLP_ONLY else "gate+up stacked, split") if stacked \
                else "gate, up apart"
            print(f"| {label} | {form} | {seconds * 1e6:.1f} | {6 * hidden * intermediate / seconds / 1e9:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
