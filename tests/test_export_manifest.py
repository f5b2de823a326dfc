"""The export folder layout, the graph interfaces and manifest.json (written by export/, read by runtime/)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from vlm_sudoku.runtime import io_names as N
from vlm_sudoku.runtime.manifest import (
    EngineMismatchError,
    ExportMismatchError,
    Manifest,
    ManifestError,
    TensorRTInfo,
    weights_sha256,
)
from vlm_sudoku.runtime.model_config import GenerationTokens, ModelConfig


@pytest.fixture(params=["qwen2_vl", "qwen2_5_vl"])
def export(request: pytest.FixtureRequest) -> tuple[Path, Path]:
    return request.getfixturevalue(f"tiny_{request.param}_dir"), request.getfixturevalue(f"tiny_{request.param}_export")


def test_folder_layout_follows_transformers_js(export) -> None:
    _, out = export
    for name in ("config.json", "generation_config.json", "preprocessor_config.json", "manifest.json"):
        assert (out / name).is_file(), name
    for graph in N.GRAPHS:
        assert (out / N.graph_file(graph)).is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_graph_interfaces_are_exactly_as_specified(export) -> None:
    _, out = export
    manifest = Manifest.load(out)
    cfg = ModelConfig.from_folder(out)
    vision = manifest.graph(N.VISION_ENCODER)
    expected_vision = [N.PIXEL_VALUES, N.GRID_THW] + ([N.WINDOW_INDEX, N.CU_WINDOW_SEQLENS] if cfg.is_qwen2_5 else [])
    assert vision.input_names == expected_vision
    assert vision.output_names[0] == N.IMAGE_EMBEDS
    assert vision.inputs[0].shape == ("num_patches", cfg.vision.patch_dim) == ("num_patches", 3 * 2 * 14 * 14)
    assert vision.inputs[1].shape == ("num_images", 3)

    embed = manifest.graph(N.EMBED_TOKENS)
    assert embed.input_names == [N.INPUT_IDS] and embed.output_names == [N.INPUTS_EMBEDS]
    assert embed.inputs[0].shape == ("batch_size", "sequence_length")

    dec = manifest.graph(N.DECODER)
    assert dec.input_names == [N.INPUTS_EMBEDS, N.ATTENTION_MASK, N.POSITION_IDS, *N.past_names(cfg.num_layers)]
    assert dec.output_names == [N.LOGITS, *N.present_names(cfg.num_layers)]
    shapes = {t.name: t.shape for t in (*dec.inputs, *dec.outputs)}
    assert shapes[N.POSITION_IDS] == (3, "batch_size", "sequence_length")
    assert shapes[N.ATTENTION_MASK] == ("batch_size", "past_sequence_length + sequence_length")
    assert shapes[N.past_key(0)] == ("batch_size", cfg.num_kv_heads, "past_sequence_length", cfg.head_dim)
    assert shapes[N.LOGITS] == ("batch_size", "sequence_length", cfg.vocab_size)


def test_manifest_content(export) -> None:
    model_dir, out = export
    m = Manifest.load(out)
    cfg = ModelConfig.from_folder(model_dir)
    assert m.architecture == cfg.model_type
    assert m.source.weights_sha256 == weights_sha256(model_dir)
    for pkg in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime"):
        assert m.versions[pkg], pkg
    assert m.special_tokens.image_token_id == cfg.image_token_id
    assert m.special_tokens.eos_token_ids == GenerationTokens.from_folder(model_dir).eos_token_ids
    assert (m.image_policy.min_pixels, m.image_policy.max_pixels) == (56 * 56, 28 * 28 * 64)
    assert m.options["precisions"] == ["fp32"] and m.tensorrt is None
    assert m.created_at.endswith("+00:00")
    assert m.stats["seconds"] > 0 and m.stats["peak_rss_mb"] > 0
    assert all(g.sha256 and not g.external_data for g in m.graphs)


def test_manifest_round_trips(export) -> None:
    _, out = export
    m = Manifest.load(out)
    assert Manifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_check_source_names_the_mismatch(export) -> None:
    _, out = export
    m = Manifest.load(out)
    m.check_source(m.source.weights_sha256)
    with pytest.raises(ExportMismatchError, match="other weights"):
        m.check_source("0" * 64, what="/models/x")


def test_check_engine_refuses_other_gpus(export) -> None:
    _, out = export
    m = Manifest.load(out)
    with pytest.raises(EngineMismatchError, match="no TensorRT engines"):
        m.check_engine("NVIDIA H100 80GB HBM3", "9.0", "10.3.0")
    trt = TensorRTInfo("NVIDIA H100 80GB HBM3", "9.0", "10.3.0", "1.22.0", "fp16", "tensorrt")
    m = replace(m, tensorrt=trt)
    m.check_engine("NVIDIA H100 80GB HBM3", "9.0", "10.3.0")
    with pytest.raises(EngineMismatchError) as err:
        m.check_engine("Orin", "8.7", "10.3.0")
    assert "GPU 'NVIDIA H100 80GB HBM3' (this machine: 'Orin')" in str(err.value)
    assert "compute capability 9.0 (this machine: 8.7)" in str(err.value)
    with pytest.raises(EngineMismatchError, match="TensorRT 10.3.0 \\(this machine: 10.7.0\\)"):
        m.check_engine("NVIDIA H100 80GB HBM3", "9.0", "10.7.0")


def test_incomplete_or_foreign_folders_are_rejected(export, tmp_path: Path) -> None:
    _, out = export
    copy = shutil.copytree(out, tmp_path / "copy")
    (copy / N.graph_file(N.DECODER)).unlink()
    with pytest.raises(ManifestError, match="incomplete"):
        Manifest.load(copy)
    with pytest.raises(ManifestError, match="no manifest.json"):
        Manifest.load(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**raw, "schema_version": 99}))
    with pytest.raises(ManifestError, match="schema version"):
        Manifest.load(copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="unreadable"):
        Manifest.load(copy)
