"""The fused GroupQueryAttention decoder (export/gqa_decoder.py) against transformers, on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from vlm_sudoku.export.gqa_decoder import (  # noqa: E402
    COS, INPUTS_EMBEDS, LOGITS, NEXT_TOKEN, SEQLENS_K, SIN, TOTAL_SEQUENCE_LENGTH, build_decoder, past_names,
    present_names,
)
from vlm_sudoku.runtime.cli import default_model_dir  # noqa: E402
from vlm_sudoku.runtime.model_config import ModelConfig  # noqa: E402
from vlm_sudoku.runtime.rope import decode_position_ids, get_rope_index, mrope_cos_sin  # noqa: E402

STEPS = 24


def _prompt(cfg: ModelConfig, grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a prompt holding one image of ``grid`` patches, and its image grid."""
    merged = grid[0] * grid[1] * grid[2] // 4
    ids = [1, 2, 3, cfg.vision_start_token_id, *([cfg.image_token_id] * merged), cfg.vision_end_token_id, 4, 5, 6]
    return np.asarray([ids], dtype=np.int64), np.asarray([grid], dtype=np.int64)


def _reference(model, embeds: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """transformers' last-position logits for the whole sequence (no cache: an independent path)."""
    lm = model.model.language_model
    with torch.no_grad():
        hidden = lm(inputs_embeds=torch.from_numpy(embeds), position_ids=torch.from_numpy(positions)).last_hidden_state
        return model.lm_head(hidden[:, -1:]).numpy()


@pytest.mark.parametrize("which", ["tiny_qwen2_vl_dir", "tiny_qwen2_5_vl_dir", "default"])
def test_gqa_decoder_matches_transformers(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    folder = default_model_dir() / "hf" if which == "default" else request.getfixturevalue(which)
    cfg = ModelConfig.from_folder(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    session = ort.InferenceSession(str(build_decoder(folder, tmp_path / "decoder.onnx")),
                                   providers=["CPUExecutionProvider"])
    table = model.get_input_embeddings().weight.detach().numpy()

    ids, grid = _prompt(cfg, (1, 8, 8))
    positions, deltas = get_rope_index(cfg, ids, image_grid_thw=grid)
    rng = np.random.default_rng(0)
    embeds = table[ids[0]][None].copy()
    image = ids[0] == cfg.image_token_id
    embeds[0, image] = rng.normal(0, float(table.std()), (int(image.sum()), cfg.hidden_size))  # as if from vision
    embeds = embeds.astype(np.float32)

    past = {n: np.zeros((1, cfg.num_kv_heads, 0, cfg.head_dim), np.float32)
            for i in range(cfg.num_layers) for n in past_names(i)}
    step_embeds, step_positions, length = embeds, positions, 0
    all_embeds, all_positions = embeds, positions
    tokens, reference = [], []
    for step in range(STEPS):
        cos, sin = mrope_cos_sin(cfg, step_positions)
        total = length + step_embeds.shape[1]
        feeds = {INPUTS_EMBEDS: step_embeds, COS: cos, SIN: sin, SEQLENS_K: np.array([total - 1], np.int32),
                 TOTAL_SEQUENCE_LENGTH: np.array(total, np.int32), **past}
        names = [LOGITS, NEXT_TOKEN] + [n for i in range(cfg.num_layers) for n in present_names(i)]
        logits, next_token, *presents = session.run(names, feeds)
        expected = _reference(model, all_embeds, all_positions)
        if step == 0:
            assert np.abs(logits - expected).max() < 1e-3
        assert int(next_token[0, 0]) == int(logits[0, -1].argmax())
        tokens.append(int(next_token[0, 0]))
        reference.append(int(expected[0, -1].argmax()))
        past = dict(zip([n for i in range(cfg.num_layers) for n in past_names(i)], presents))
        length = total
        step_embeds = table[[tokens[-1]]][None].astype(np.float32)
        step_positions = decode_position_ids(deltas, length)
        all_embeds = np.concatenate([all_embeds, step_embeds], axis=1)
        all_positions = np.concatenate([all_positions, step_positions], axis=2)
    assert tokens == reference


@pytest.fixture(scope="module")
def fused_export(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_vl_dir: Path) -> Path:
    from vlm_sudoku.export.exporter import ExportOptions, export_model

    out = tmp_path_factory.mktemp("fused") / "export"
    export_model(tiny_qwen2_vl_dir, out, ExportOptions(fused_decoder=True, check_tokens=0))
    return out


@pytest.mark.parametrize("io_binding", [False, True])
def test_engine_decodes_the_same_with_either_decoder(fused_export: Path, io_binding: bool) -> None:
    """The runtime's two decoder graphs give the same greedy tokens: image prefix shared by both questions."""
    from PIL import Image

    from vlm_sudoku.runtime.engine import Engine

    from .engine_helpers import shared_prefix_tokens

    image = Image.fromarray(np.random.default_rng(5).integers(0, 255, (120, 150, 3), dtype=np.uint8))
    results = []
    for decoder in ("optimum", "fused"):
        engine = Engine(fused_export, provider="cpu", decoder=decoder, io_binding=io_binding)
        assert engine.fused == (decoder == "fused")
        results.append(shared_prefix_tokens(engine, image, 32))
    assert results[0] == results[1]
    assert Engine(fused_export, provider="cpu").fused  # "auto" prefers the fused graph


def test_asking_for_a_missing_fused_decoder_is_a_clear_error(tiny_qwen2_vl_export: Path) -> None:
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.manifest import ManifestError

    assert not Engine(tiny_qwen2_vl_export, provider="cpu").fused
    with pytest.raises(ManifestError, match="--fused-decoder"):
        Engine(tiny_qwen2_vl_export, provider="cpu", decoder="fused")


def test_int4_fused_decoder_export_and_decode(tiny_qwen2_vl_dir: Path, tmp_path: Path) -> None:
    """--precision int4 quantizes the fused decoder's MatMuls (MatMulNBits); the engine decodes with it and
    reads the image with the float graphs."""
    import onnx
    from PIL import Image

    from vlm_sudoku.export.exporter import ExportOptions, export_model
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.manifest import Manifest

    from .engine_helpers import shared_prefix_tokens

    with pytest.raises(ValueError, match="fused decoder only"):
        ExportOptions(precisions=("fp32", "int4"))
    with pytest.raises(ValueError, match="float precision"):
        ExportOptions(precisions=("int4",), fused_decoder=True)
    out = tmp_path / "export"
    export_model(tiny_qwen2_vl_dir, out, ExportOptions(precisions=("fp32", "int4"), fused_decoder=True, check_tokens=0))
    spec = Manifest.load(out).graph("decoder_gqa", "int4")
    assert spec.file == "onnx/decoder_gqa_q4.onnx"
    ops = {n.op_type for n in onnx.load(str(out / spec.file)).graph.node}
    assert "MatMulNBits" in ops and "MatMul" not in ops
    assert (out / spec.file).stat().st_size < (out / "onnx" / "decoder_gqa.onnx").stat().st_size / 3
    engine = Engine(out, provider="cpu", precision="int4")
    assert engine.fused and engine.precision == "int4"
    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (100, 100, 3), dtype=np.uint8))
    tokens = shared_prefix_tokens(engine, image, 16)
    assert [len(t) for t in tokens] == [16, 16]
    assert Engine(out, provider="cpu").precision != "int4"  # asked for, never the default
