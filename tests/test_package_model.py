"""Packaging a model with ONNX graphs that read their weights from the shipped safetensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlm_sudoku.runtime.engine import Engine
from vlm_sudoku.runtime.manifest import Manifest


@pytest.fixture(scope="module")
def fp16_model(tiny_qwen2_vl_dir, tmp_path_factory) -> Path:
    import shutil

    import torch
    from transformers import AutoModelForImageTextToText

    out = tmp_path_factory.mktemp("fp16") / "model"
    shutil.copytree(tiny_qwen2_vl_dir, out)
    for f in out.glob("*.safetensors"):
        f.unlink()
    AutoModelForImageTextToText.from_pretrained(tiny_qwen2_vl_dir, dtype=torch.float16).save_pretrained(out)
    return out


def test_packaged_graphs_share_the_weights_and_match_transformers(fp16_model, tmp_path: Path) -> None:
    from vlm_sudoku.export.torch_backend import TorchPipeline
    from vlm_sudoku.runtime.preprocess import preprocess
    from vlm_sudoku.runtime.prompts import prompt_ids, QUESTIONS
    from vlm_sudoku.tools.package_model import package

    out = tmp_path / "pkg"
    summary = package(fp16_model, out, check_tokens=8)
    weights = (out / "hf" / "model.safetensors").stat().st_size
    shared = sum(g["shared_fp16_bytes"] for g in summary["graphs"].values())
    inline = sum(g["inline_bytes"] for g in summary["graphs"].values())
    assert shared >= 0.9 * weights and inline < 0.1 * shared  # the graphs read the weights; no second copy
    for name, counts in summary["graphs"].items():  # each graph, the fused decoder's stacked q/k/v included
        if counts["shared_fp16_bytes"]:
            assert counts["inline_bytes"] < 0.05 * counts["shared_fp16_bytes"], name
    manifest = Manifest.load(out)
    assert {g.file for g in manifest.graphs} == {"vision_encoder.onnx", "embed_tokens.onnx", "decoder_model_merged.onnx",
                                                 "decoder_gqa.onnx"}

    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (120, 90, 3), dtype=np.uint8))
    baseline = TorchPipeline(out / "hf")  # transformers on the shipped fp16 weights, computed in fp32
    for decoder in ("fused", "optimum"):
        engine = Engine(out, provider="cpu", decoder=decoder)
        engine.stop_ids = frozenset()
        enc = engine.encode_image(image)
        ids = prompt_ids(engine.tokenizer, QUESTIONS["digits"], [enc.num_tokens])
        got = engine.generate(ids, images=[enc], max_new_tokens=24).tokens
        pixel_values, grid = preprocess(image, engine.image_settings)
        assert got == baseline.generate_ids(ids, pixel_values, grid, 24, stop=False)


def test_package_refuses_to_overwrite(fp16_model, tmp_path: Path) -> None:
    import click

    from vlm_sudoku.tools.package_model import package

    (tmp_path / "pkg").mkdir()
    with pytest.raises(click.ClickException, match="exists"):
        package(fp16_model, tmp_path / "pkg")
