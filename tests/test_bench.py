"""vlm-bench on a tiny model on the CPU: every row is there, and the runtime says what transformers says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")


def test_bench_rows_and_agreement(tiny_qwen2_vl_dir: Path, tmp_path: Path) -> None:
    from vlm_sudoku.export.exporter import ExportOptions, export_model
    from vlm_sudoku.tools.bench import main

    export = tmp_path / "export"
    export_model(tiny_qwen2_vl_dir, export, ExportOptions(fused_decoder=True, check_tokens=0))
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["--model", str(tiny_qwen2_vl_dir), "--export", str(export), "--device", "cpu",
                                       "--rules-tokens", "10", "--digits-tokens", "12", "--agree-tokens", "16",
                                       "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    rows = record["rows"]
    settings = {(r["backend"], r["setting"]) for r in rows}
    assert ("transformers", "greedy, 512 cap, sdpa") in settings and ("transformers", "greedy, 512 cap, eager") in settings
    assert {("onnxruntime", "optimum decoder, shared prefix"), ("onnxruntime", "fused decoder, shared prefix")} <= settings
    for r in rows:
        assert r["decode_tok_s"] > 0 and r["puzzle_s"] > 0 and r["ttft_ms"] > 0
        if r["backend"] == "onnxruntime" or r["setting"].startswith("greedy"):
            assert r["agreement"] == 1.0  # greedy, fp32: the same tokens as the transformers fp32 baseline
            assert r["first_divergence"] == 16  # none of the 16 free-running tokens differs
    assert "| onnxruntime | fused decoder" in result.output


def test_gpu_rows_skip_what_cannot_run_there(tiny_qwen2_vl_dir: Path, tmp_path: Path) -> None:
    """On CUDA: no fp32 fused row (its attention would run on the CPU), CUDA-graph rows for fused graphs."""
    from vlm_sudoku.export.exporter import ExportOptions, export_model
    from vlm_sudoku.runtime.manifest import Manifest
    from vlm_sudoku.tools.bench import _runtime_variants

    export = tmp_path / "export"
    export_model(tiny_qwen2_vl_dir, export, ExportOptions(precisions=("fp32", "fp16", "int4"), fused_decoder=True,
                                                          check_tokens=0))
    manifest = Manifest.load(export)
    assert _runtime_variants(manifest, "cuda") == [
        ("fp32", "optimum", False), ("fp16", "optimum", False), ("fp16", "fused", False), ("fp16", "fused", True),
        ("int4", "fused", False), ("int4", "fused", True)]
    assert ("fp32", "fused", False) in _runtime_variants(manifest, "cpu")
    # what the engine's CUDA-graph default reads: the int4 graph was made from the fp16 one (fp16 activations)
    embeds = {p: next(t.dtype for t in manifest.graph("decoder_gqa", p).inputs if t.name == "inputs_embeds")
              for p in ("fp32", "fp16", "int4")}
    assert embeds == {"fp32": "float32", "fp16": "float16", "int4": "float16"}
