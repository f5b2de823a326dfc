"""fp16 graphs: they load on CPU onnxruntime, give finite outputs, keep the guarded nodes in fp32, and agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from vlm_sudoku.export.exporter import ExportOptions, export_model  # noqa: E402
from vlm_sudoku.export.fp16 import fp32_node_names  # noqa: E402
from vlm_sudoku.runtime import io_names as N  # noqa: E402
from vlm_sudoku.runtime.manifest import Manifest  # noqa: E402


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def fp16_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = request.getfixturevalue(f"tiny_{request.param}_dir")
    out = tmp_path_factory.mktemp("fp16") / request.param
    export_model(model_dir, out, ExportOptions(precisions=("fp16",), check_tokens=16))
    return out


def test_only_fp16_files_are_kept(fp16_export: Path) -> None:
    manifest = Manifest.load(fp16_export)
    assert manifest.precisions == ["fp16"]
    assert sorted(p.name for p in (fp16_export / "onnx").iterdir()) == sorted(
        Path(N.graph_file(g, "fp16")).name for g in N.GRAPHS
    )


def test_io_dtypes(fp16_export: Path) -> None:
    """Weights and the KV cache are fp16; logits stay fp32 for the host's argmax."""
    manifest = Manifest.load(fp16_export)
    dec = {t.name: t.dtype for t in (*manifest.graph(N.DECODER, "fp16").inputs, *manifest.graph(N.DECODER, "fp16").outputs)}
    assert dec[N.INPUTS_EMBEDS] == "float16" and dec[N.past_key(0)] == "float16" and dec[N.present_value(0)] == "float16"
    assert dec[N.LOGITS] == "float32" and dec[N.POSITION_IDS] == "int64"
    vis = manifest.graph(N.VISION_ENCODER, "fp16")
    assert vis.inputs[0].dtype == "float16" and vis.outputs[0].dtype == "float16"


def test_guarded_nodes_stay_fp32(fp16_export: Path) -> None:
    """RMSNorm, rotary and softmax (with its mask add) compute in fp32 inside the fp16 graphs."""
    model = onnx.load(str(fp16_export / N.graph_file(N.DECODER, "fp16")))
    model = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in (*model.graph.value_info, *model.graph.output)}
    by_name = {n.name: n for n in model.graph.node}
    for name in ("/language_model/layers.0/input_layernorm/ReduceMean", "/language_model/rotary_emb/Cos",
                 "/language_model/layers.1/self_attn/Softmax", "/language_model/norm/Pow"):
        node = by_name[name]
        assert types[node.output[0]] == onnx.TensorProto.FLOAT, name
    # x^2 flows from Pow to ReduceMean in fp32, without an fp16 round trip in between
    for layer in ("layers.0/input_layernorm", "layers.1/post_attention_layernorm", "norm"):
        pow_node, mean = by_name[f"/language_model/{layer}/Pow"], by_name[f"/language_model/{layer}/ReduceMean"]
        assert mean.input[0] == pow_node.output[0], layer
    # and the big matmuls really are fp16
    q = by_name["/language_model/layers.0/self_attn/q_proj/MatMul"]
    assert types[q.output[0]] == onnx.TensorProto.FLOAT16


def test_fp32_node_rules_find_norms_rotary_and_softmax(tiny_qwen2_5_vl_export: Path) -> None:
    for graph in (N.DECODER, N.VISION_ENCODER):
        keep = fp32_node_names(onnx.load(str(tiny_qwen2_5_vl_export / N.graph_file(graph))))
        assert any("Softmax" in k for k in keep)
        assert any("/rotary" in k for k in keep)
        assert any("norm" in k for k in keep)
        # the additive mask feeding each softmax
        assert sum(k.endswith("Softmax") for k in keep) <= sum("/Add" in k and "attn" in k for k in keep)


def test_fp16_parity_is_reported_and_finite(fp16_export: Path) -> None:
    (report,) = Manifest.load(fp16_export).parity
    assert report.precision == "fp16" and report.passed  # passed = finite for reduced precisions
    assert report.max_new_tokens == 16
    # measured on the tiny models: 16/16 tokens, prefill |dlogit| ~1e-2 against fp32 PyTorch
    assert report.agreement >= 0.5
    assert np.isfinite(report.prefill_max_abs_diff) and report.prefill_max_abs_diff < 0.1


def test_external_data_graphs_convert_by_streaming(
    tiny_qwen2_vl_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The >2 GB path (weights in external data, converted tensor by tensor) gives the same graph."""
    import onnxruntime as ort

    from vlm_sudoku.export import fp16

    src = tmp_path / "src" / "decoder.onnx"
    src.parent.mkdir()
    model = onnx.load(str(tiny_qwen2_vl_export / N.graph_file(N.DECODER)))
    # As optimum writes big graphs: Constant node values go to external data too (convert_attribute).
    onnx.save_model(
        model, str(src), save_as_external_data=True, location="decoder.onnx_data", size_threshold=0,
        convert_attribute=True,
    )

    in_memory = fp16.convert_to_fp16(tiny_qwen2_vl_export / N.graph_file(N.DECODER), tmp_path / "a" / "d.onnx")
    assert in_memory == []
    small = fp16.convert_to_fp16(src, tmp_path / "b" / "d.onnx")
    assert small == []  # fp16 weights fit in one file again
    monkeypatch.setattr(fp16, "PROTO_LIMIT", 1 << 20)  # pretend the graph is huge
    big = fp16.convert_to_fp16(src, tmp_path / "c" / "d.onnx")
    assert big == ["d.onnx_data"] and (tmp_path / "c" / "d.onnx_data").stat().st_size > 100_000

    rng = np.random.default_rng(0)
    feeds = {
        N.INPUTS_EMBEDS: rng.standard_normal((1, 5, 64)).astype(np.float16),
        N.ATTENTION_MASK: np.ones((1, 5), np.int64),
        N.POSITION_IDS: np.broadcast_to(np.arange(5), (3, 1, 5)).astype(np.int64),
        **{n: np.zeros((1, 2, 0, 16), np.float16) for n in N.past_names(2)},
    }
    outs = [
        ort.InferenceSession(str(tmp_path / d / "d.onnx"), providers=["CPUExecutionProvider"]).run([N.LOGITS], feeds)[0]
        for d in "abc"
    ]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def _graph_with_repeated_cast(clash: bool = False):
    """x -> Cast (twice, as onnxruntime < 1.32's fp16 converter writes it) -> Add; or two different writers."""
    from onnx import TensorProto, helper

    cast = helper.make_node("Cast", ["x"], ["x_cast_to_fp32"], to=TensorProto.FLOAT, name="x_cast_to_fp32_node")
    other = helper.make_node("Relu", ["x32"], ["x_cast_to_fp32"], name="relu") if clash else cast
    info = helper.make_tensor_value_info("x_cast_to_fp32", TensorProto.FLOAT, [2])
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x16"], ["x"], to=TensorProto.FLOAT16, name="to16"), cast, other,
         helper.make_node("Add", ["x_cast_to_fp32", "x_cast_to_fp32"], ["y"], name="add")],
        "g", [helper.make_tensor_value_info("x16", TensorProto.FLOAT, [2]),
              helper.make_tensor_value_info("x32", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], value_info=[info, info])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_repeated_casts_of_older_converters_are_dropped() -> None:
    import onnxruntime as ort

    from vlm_sudoku.export.fp16 import drop_repeated_nodes

    model = _graph_with_repeated_cast()
    assert drop_repeated_nodes(model.graph) == 1
    assert [n.name for n in model.graph.node] == ["to16", "x_cast_to_fp32_node", "add"]
    assert len(model.graph.value_info) == 1
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([1.5, -2.0], dtype=np.float32)
    assert np.array_equal(session.run(None, {"x16": x, "x32": x})[0], 2 * x)
    clashing = _graph_with_repeated_cast(clash=True)
    with pytest.raises(ValueError, match="two different nodes"):
        drop_repeated_nodes(clashing.graph)
