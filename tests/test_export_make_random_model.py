"""tools/make_random_model.py: named shapes, real sizes for the big ones, loadable folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vlm_sudoku.runtime.model_config import GenerationTokens, ModelConfig  # noqa: E402
from vlm_sudoku.tools import make_random_model as mrm  # noqa: E402


@pytest.mark.parametrize(
    "shape,params,layers,hidden",
    [("qwen2-vl-2b", 2.209e9, 28, 1536), ("qwen2.5-vl-3b", 3.755e9, 36, 2048)],
)
def test_big_shapes_have_the_real_sizes(shape: str, params: float, layers: int, hidden: int) -> None:
    """Counted on the meta device: nothing is allocated."""
    cfg = mrm.shape_config(shape)
    total = sum(mrm._numel(s) for s in mrm._param_shapes(cfg).values())
    assert abs(total - params) / params < 0.005
    mc = ModelConfig.from_dict(cfg)
    assert (mc.num_layers, mc.hidden_size, mc.vocab_size, mc.tie_word_embeddings) == (layers, hidden, 151936, True)
    assert mc.mrope_section == (16, 24, 24) and mc.rope_theta == 1e6 and mc.image_token_id == 151655


def test_qwen2_vl_2b_matches_the_brief() -> None:
    mc = ModelConfig.from_dict(mrm.shape_config("qwen2-vl-2b"))
    assert (mc.num_heads, mc.num_kv_heads, mc.intermediate_size) == (12, 2, 8960)
    assert (mc.vision.depth, mc.vision.embed_dim, mc.vision.num_heads) == (32, 1280, 16)


@pytest.mark.parametrize("shape", ["tiny-qwen2-vl", "tiny-qwen2.5-vl"])
def test_tiny_special_tokens_are_in_the_vocabulary(shape: str) -> None:
    mc = ModelConfig.from_dict(mrm.shape_config(shape))
    ids = (mc.image_token_id, mc.video_token_id, mc.vision_start_token_id, mc.vision_end_token_id)
    assert all(0 <= i < mc.vocab_size for i in ids)
    if mc.is_qwen2_5:
        assert mc.vision.fullatt_block_indexes and len(mc.vision.fullatt_block_indexes) < mc.vision.depth


def test_tiny_folder_loads_in_transformers_without_missing_keys(tiny_qwen2_5_vl_dir: Path) -> None:
    model, info = transformers.AutoModelForImageTextToText.from_pretrained(
        tiny_qwen2_5_vl_dir, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()
    # The fixture's folder carries a tokenizer: the generation ids follow its special tokens.
    from vlm_sudoku.runtime.tokenizer import Tokenizer

    sp = Tokenizer.from_folder(tiny_qwen2_5_vl_dir).specials
    tokens = GenerationTokens.from_folder(tiny_qwen2_5_vl_dir)
    assert tokens.eos_token_ids == (sp.im_end, sp.endoftext) and tokens.pad_token_id == sp.endoftext
    pre = json.loads((tiny_qwen2_5_vl_dir / "preprocessor_config.json").read_text())
    assert pre["max_pixels"] == 28 * 28 * 64


def test_sharded_write_is_loadable_and_deterministic(tmp_path: Path) -> None:
    a = mrm.make_random_model("tiny-qwen2-vl", tmp_path / "a", max_shard_bytes=200_000)
    b = mrm.make_random_model("tiny-qwen2-vl", tmp_path / "b")
    shards = sorted(p.name for p in a.glob("*.safetensors"))
    assert len(shards) > 1 and (a / "model.safetensors.index.json").is_file()
    ma = transformers.AutoModelForImageTextToText.from_pretrained(a)
    mb = transformers.AutoModelForImageTextToText.from_pretrained(b)
    for (na, pa), (nb, pb) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert na == nb and torch.equal(pa, pb), na


def test_reduced_depth_for_measurements() -> None:
    cfg = mrm.shape_config("qwen2.5-vl-3b", num_layers=2, vision_depth=4)
    assert cfg["num_hidden_layers"] == 2 and cfg["vision_config"]["depth"] == 4
    assert cfg["vision_config"]["fullatt_block_indexes"] == [3]
    with pytest.raises(KeyError, match="unknown shape"):
        mrm.shape_config("qwen-7b")
