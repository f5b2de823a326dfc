"""tools/bench_gemv builds the graphs it times: every form must compute the same products, or its table
compares different work (the transB forms store the weights transposed)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from vlm_sudoku.tools.bench_gemv import mlp_graph, products_graph

FORMS = ("MatMul", "FusedMatMul", "Gemm", "WeightLeft")


def _run(model, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = [int(d) for d in session.get_inputs()[0].shape]
    return [np.asarray(y, dtype=np.float32).reshape(-1) for y in session.run(None, {"x": x.reshape(shape)})]


@pytest.mark.parametrize("k,n", [(16, 24), (40, 8)])
def test_product_forms_agree(k: int, n: int) -> None:
    x = np.random.default_rng(3).normal(0, 1, (1, k)).astype(np.float16)
    outs = {form: _run(products_graph(form, k, n, 3, np.random.default_rng(7)), x) for form in FORMS}
    w = products_graph("MatMul", k, n, 3, np.random.default_rng(7)).graph.initializer
    from onnx import numpy_helper

    expected = [x.astype(np.float32) @ numpy_helper.to_array(t).astype(np.float32) for t in w if t.name.startswith("w")]
    for form, ys in outs.items():
        assert len(ys) == 3
        for y, e in zip(ys, expected):
            np.testing.assert_allclose(y, e.reshape(-1), rtol=2e-2, atol=2e-2, err_msg=form)


@pytest.mark.parametrize("stacked", [False, True])
def test_mlp_forms_agree(stacked: bool) -> None:
    hidden, inter = 16, 32
    x = np.random.default_rng(4).normal(0, 1, (1, hidden)).astype(np.float16)
    reference = _run(mlp_graph("MatMul", False, hidden, inter, 2, np.random.default_rng(9)), x)[0]
    for form in (*FORMS, "MoE"):  # (MoE: onnxruntime's mixture-of-experts node with one expert)
        y = _run(mlp_graph(form, stacked, hidden, inter, 2, np.random.default_rng(9)), x)[0]
        np.testing.assert_allclose(y, reference, rtol=2e-2, atol=2e-2, err_msg=f"{form} stacked={stacked}")
    assert np.abs(reference).max() > 1e-3  # the chain did not collapse to zeros
