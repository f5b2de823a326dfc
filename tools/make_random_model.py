"""Write a Hugging Face Qwen2-VL / Qwen2.5-VL folder with random weights.

Nothing can be downloaded here, yet the exporter, the runtime and the
benchmarks all need a model folder. This tool writes one for a named shape:

- ``tiny-qwen2-vl`` / ``tiny-qwen2.5-vl``: a few hundred thousand parameters,
  for tests (vocabulary 512, special token ids inside it, windowed vision
  attention exercised for Qwen2.5-VL);
- ``qwen2-vl-2b`` / ``qwen2.5-vl-3b``: the real Qwen2-VL-2B-Instruct and
  Qwen2.5-VL-3B-Instruct configurations, for benchmarks.

The folder holds what the exporter reads: ``config.json`` (the flat layout of
the Hub checkpoints), ``generation_config.json``, ``preprocessor_config.json``
(pixel budget) and safetensors weights. There is no tokenizer.

Big shapes are never materialised twice: the model is built on the meta
device only to learn parameter names and shapes, and each tensor is drawn
directly in the target dtype and written shard by shard.

Usage::

    python -m vlm_sudoku.tools.make_random_model tiny-qwen2-vl /tmp/tiny
    python -m vlm_sudoku.tools.make_random_model qwen2-vl-2b /tmp/q2b --layers 4
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Token ids of the real Qwen2-VL / Qwen2.5-VL tokenizer.
_QWEN_TOKENS = {
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
}
# The tiny shapes keep the same roles at the top of a 512-token vocabulary.
_TINY_TOKENS = {
    "bos_token_id": 500,
    "eos_token_id": 501,
    "vision_start_token_id": 502,
    "vision_end_token_id": 503,
    "vision_token_id": 504,
    "image_token_id": 505,
    "video_token_id": 506,
}


@dataclass(frozen=True)
class Shape:
    """One named model shape: the config.json body and how to draw weights."""

    model_type: str
    config: dict[str, Any]
    preprocessor: dict[str, Any]
    generation: dict[str, Any]
    dtype: str  # dtype the weights are stored in
    init_std: float
    layer_key: str = "num_hidden_layers"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def preprocessor_config(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    # transformers 4.57's Qwen2VLImageProcessor ignores "size" unless min/max_pixels
    # are given too, so both spellings are written.
    return {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "do_convert_rgb": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
    }


def _generation(tokens: dict[str, int]) -> dict[str, Any]:
    return {
        "bos_token_id": tokens["bos_token_id"],
        "pad_token_id": tokens["bos_token_id"],
        "eos_token_id": [tokens["eos_token_id"], tokens["bos_token_id"]],
        "do_sample": False,
    }


_TINY_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 512,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "sliding_window": 4096,
    "max_window_layers": 2,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "use_cache": True,
}

SHAPES: dict[str, Shape] = {
    "tiny-qwen2-vl": Shape(
        model_type="qwen2_vl",
        config={
            "architectures": ["Qwen2VLForConditionalGeneration"],
            "model_type": "qwen2_vl",
            **_TINY_TEXT,
            **_TINY_TOKENS,
            "vision_config": {
                "depth": 2,
                "embed_dim": 32,
                "mlp_ratio": 4,
                "num_heads": 2,
                "in_chans": 3,
                "hidden_size": 64,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "spatial_patch_size": 14,
                "temporal_patch_size": 2,
            },
        },
        preprocessor=preprocessor_config(56 * 56, 28 * 28 * 64),
        generation=_generation(_TINY_TOKENS),
        dtype="float32",
        init_std=0.15,
        description="2-layer Qwen2-VL, vocabulary 512, for tests",
    ),
    "tiny-qwen2.5-vl": Shape(
        model_type="qwen2_5_vl",
        config={
            "architectures": ["Qwen2_5_VLForConditionalGeneration"],
            "model_type": "qwen2_5_vl",
            **_TINY_TEXT,
            **_TINY_TOKENS,
            "vision_config": {
                "depth": 2,
                "hidden_act": "silu",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "in_chans": 3,
                "out_hidden_size": 64,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "spatial_patch_size": 14,
                # 112 px windows = 4x4 merged tokens: images of 8+ merged tokens a side
                # get several windows, and block 0 is windowed while block 1 is full.
                "window_size": 112,
                "fullatt_block_indexes": [1],
                "tokens_per_second": 2,
                "temporal_patch_size": 2,
            },
        },
        preprocessor=preprocessor_config(56 * 56, 28 * 28 * 64),
        generation=_generation(_TINY_TOKENS),
        dtype="float32",
        init_std=0.15,
        description="2-layer Qwen2.5-VL with windowed vision attention, vocabulary 512, for tests",
    ),
    "qwen2-vl-2b": Shape(
        model_type="qwen2_vl",
        config={
            # Qwen/Qwen2-VL-2B-Instruct config.json
            "architectures": ["Qwen2VLForConditionalGeneration"],
            "model_type": "qwen2_vl",
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "hidden_size": 1536,
            "initializer_range": 0.02,
            "intermediate_size": 8960,
            "max_position_embeddings": 32768,
            "max_window_layers": 28,
            "num_attention_heads": 12,
            "num_hidden_layers": 28,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "sliding_window": 32768,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": 151936,
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            **_QWEN_TOKENS,
            "vision_config": {
                "depth": 32,
                "embed_dim": 1280,
                "mlp_ratio": 4,
                "num_heads": 16,
                "in_chans": 3,
                "hidden_size": 1536,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "spatial_patch_size": 14,
                "temporal_patch_size": 2,
            },
        },
        preprocessor=preprocessor_config(56 * 56, 28 * 28 * 1280),
        generation=_generation(_QWEN_TOKENS),
        dtype="bfloat16",
        init_std=0.02,
        description="Qwen2-VL-2B-Instruct shape (2.21 B parameters), random weights",
    ),
    "qwen2.5-vl-3b": Shape(
        model_type="qwen2_5_vl",
        config={
            # Qwen/Qwen2.5-VL-3B-Instruct config.json
            "architectures": ["Qwen2_5_VLForConditionalGeneration"],
            "model_type": "qwen2_5_vl",
            "attention_dropout": 0.0,
            "hidden_act": "silu",
            "hidden_size": 2048,
            "initializer_range": 0.02,
            "intermediate_size": 11008,
            "max_position_embeddings": 128000,
            "max_window_layers": 70,
            "num_attention_heads": 16,
            "num_hidden_layers": 36,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "sliding_window": 32768,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": 151936,
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            **_QWEN_TOKENS,
            "vision_config": {
                "depth": 32,
                "hidden_act": "silu",
                "hidden_size": 1280,
                "intermediate_size": 3420,
                "num_heads": 16,
                "in_chans": 3,
                "out_hidden_size": 2048,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "spatial_patch_size": 14,
                "window_size": 112,
                "fullatt_block_indexes": [7, 15, 23, 31],
                "tokens_per_second": 2,
                "temporal_patch_size": 2,
            },
        },
        preprocessor=preprocessor_config(56 * 56, 28 * 28 * 1280),
        generation=_generation(_QWEN_TOKENS),
        dtype="bfloat16",
        init_std=0.02,
        description="Qwen2.5-VL-3B-Instruct shape (3.75 B parameters), random weights",
    ),
}

_MODEL_CLASSES = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
}


def shape_config(name: str, *, num_layers: int | None = None, vision_depth: int | None = None) -> dict[str, Any]:
    """The config.json body of a named shape, optionally with fewer layers (for measurements)."""
    if name not in SHAPES:
        raise KeyError(f"unknown shape {name!r}: expected one of {', '.join(SHAPES)}")
    cfg = copy.deepcopy(SHAPES[name].config)
    if num_layers is not None:
        cfg["num_hidden_layers"] = num_layers
        cfg["max_window_layers"] = min(cfg.get("max_window_layers", num_layers), num_layers)
    if vision_depth is not None:
        vis = cfg["vision_config"]
        vis["depth"] = vision_depth
        if "fullatt_block_indexes" in vis:
            kept = [i for i in vis["fullatt_block_indexes"] if i < vision_depth]
            vis["fullatt_block_indexes"] = kept or [vision_depth - 1]
    return cfg


def _param_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every stored tensor, learned from a model built on the meta device."""
    import torch
    import transformers

    model_type = cfg["model_type"]
    config = transformers.AutoConfig.for_model(**cfg)
    cls = getattr(transformers, _MODEL_CLASSES[model_type])
    with torch.device("meta"):
        model = cls(config)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if cfg.get("tie_word_embeddings"):
        # save_pretrained drops the tied copy as well; from_pretrained re-ties it.
        shapes.pop("lm_head.weight", None)
    return shapes


def _draw(name: str, shape: tuple[int, ...], std: float, dtype: Any, gen: Any) -> Any:
    import torch

    if name.endswith("norm.weight") or name.endswith(("norm1.weight", "norm2.weight", "ln_q.weight")):
        # Norm gains near one, as after training, with a little spread so they matter.
        t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
    elif name.endswith("bias") and ("norm" in name or "ln_q" in name):
        t = 0.1 * torch.randn(shape, generator=gen)
    else:
        t = std * torch.randn(shape, generator=gen)
    return t.to(dtype)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _plan_shards(shapes: dict[str, tuple[int, ...]], itemsize: int, max_bytes: int) -> list[list[str]]:
    """Group tensor names into shards of at most ``max_bytes`` (a bigger tensor gets its own)."""
    plan: list[list[str]] = [[]]
    size = 0
    for name, shp in shapes.items():
        nbytes = _numel(shp) * itemsize
        if plan[-1] and size + nbytes > max_bytes:
            plan.append([])
            size = 0
        plan[-1].append(name)
        size += nbytes
    return plan


def make_random_model(
    name: str,
    out_dir: str | Path,
    *,
    seed: int = 0,
    num_layers: int | None = None,
    vision_depth: int | None = None,
    max_shard_bytes: int = 2 * 1024**3,
    tokenizer: bool = False,
) -> Path:
    """Write the named random model into ``out_dir`` and return the folder.

    Tensors are drawn one at a time in the stored dtype and written shard by
    shard (at most ``max_shard_bytes`` held in memory), so the 2B/3B shapes
    need only a few GB of RAM. With ``tokenizer`` a small Qwen2-style tokenizer
    fills the vocabulary (its special tokens at the top, as in the real one) and
    the config's token ids follow it, so the runtime can read the folder too.
    """
    import torch
    from safetensors.torch import save_file

    shape = SHAPES[name] if name in SHAPES else None
    cfg = shape_config(name, num_layers=num_layers, vision_depth=vision_depth)
    assert shape is not None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, shape.dtype)
    cfg = {**cfg, "torch_dtype": shape.dtype}
    generation = dict(shape.generation)
    if tokenizer:
        cfg, generation = _with_tokenizer(cfg, generation, out)

    shapes = _param_shapes(cfg)
    itemsize = torch.empty((), dtype=dtype).element_size()
    plan = _plan_shards(shapes, itemsize, max_shard_bytes)

    for f in list(out.glob("model*.safetensors")) + list(out.glob("model.safetensors.index.json")):
        f.unlink()
    gen = torch.Generator().manual_seed(seed)
    weight_map: dict[str, str] = {}
    for i, names in enumerate(plan, 1):
        fname = "model.safetensors" if len(plan) == 1 else f"model-{i:05d}-of-{len(plan):05d}.safetensors"
        # Only this shard's tensors are alive at a time.
        shard = {n: _draw(n, shapes[n], shape.init_std, dtype, gen) for n in names}
        save_file(shard, str(out / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(names, fname))
        del shard
    if len(plan) > 1:
        total = sum(_numel(s) * itemsize for s in shapes.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")

    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    (out / "preprocessor_config.json").write_text(json.dumps(shape.preprocessor, indent=2) + "\n")
    return out


def _with_tokenizer(cfg: dict[str, Any], generation: dict[str, Any], out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write a tokenizer that fills ``cfg``'s vocabulary and point every token id at it."""
    from ..runtime.tokenizer import Tokenizer
    from .make_tokenizer import QWEN2_VL_SPECIAL_TOKENS, build_tokenizer

    vocab = int(cfg.get("vocab_size") or cfg["text_config"]["vocab_size"])
    build_tokenizer(out, vocab_size=vocab - len(QWEN2_VL_SPECIAL_TOKENS))
    sp = Tokenizer.from_folder(out).specials
    ids = {"bos_token_id": sp.endoftext, "eos_token_id": sp.im_end, "vision_start_token_id": sp.vision_start,
           "vision_end_token_id": sp.vision_end, "vision_token_id": sp.vision_pad, "image_token_id": sp.image_pad,
           "video_token_id": sp.video_pad}
    cfg = {**cfg, **ids}
    generation = {**generation, "bos_token_id": sp.endoftext, "pad_token_id": sp.endoftext,
                  "eos_token_id": [sp.im_end, sp.endoftext]}
    return cfg, generation


def main(argv: list[str] | None = None) -> int:
    """Command line: ``make_random_model SHAPE OUT_DIR [--seed N] [--layers N] [--vision-depth N] [--tokenizer]``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layers", type=int, default=None, help="fewer text layers (measurements)")
    parser.add_argument("--vision-depth", type=int, default=None, help="fewer vision blocks (measurements)")
    parser.add_argument("--tokenizer", action="store_true", help="write a tokenizer too (the runtime needs one)")
    args = parser.parse_args(argv)
    out = make_random_model(
        args.shape, args.out_dir, seed=args.seed, num_layers=args.layers, vision_depth=args.vision_depth,
        tokenizer=args.tokenizer,
    )
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
