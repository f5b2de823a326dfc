"""Read a Qwen2-VL / Qwen2.5-VL config.json once, into a frozen dataclass.

Hub checkpoints keep the text settings at the top level of config.json while
transformers >= 4.52 writes them under ``text_config``; both layouts occur in
the wild, so this is the only module that looks at raw keys. Everything else
(exporter, runtime, tools) reads ``ModelConfig`` fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..solver.errors import InputError

SUPPORTED_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")


class ModelFolderError(InputError):
    """A folder that is not a usable Qwen2-VL / Qwen2.5-VL model or export."""


def read_json_object(path: Path, what: str, error: type[Exception] = ModelFolderError,
                     missing: str | None = None) -> dict[str, Any]:
    """The JSON object in ``path``, or ``error`` with a one-line message saying what is wrong with it
    (absent: ``missing``, default "no such file"; unreadable; not an object)."""
    if not path.is_file():
        raise error(missing or f"{path}: no such file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: {what} is not a JSON object")
    return raw


@dataclass(frozen=True)
class VisionConfig:
    depth: int
    embed_dim: int  # width of the vision blocks
    num_heads: int
    out_hidden_size: int  # width of the merged image embeddings (= text hidden size)
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int
    in_channels: int
    window_size: int | None  # Qwen2.5-VL windowed attention; None for Qwen2-VL
    fullatt_block_indexes: tuple[int, ...]
    # Qwen2.5-VL scales video frame positions by seconds * tokens_per_second; None for Qwen2-VL.
    tokens_per_second: float | None = None
    hidden_act: str = "quick_gelu"  # Qwen2-VL's MLP activation (Qwen2.5-VL: silu); export/vision_fused.py checks it

    @property
    def patch_dim(self) -> int:
        """Length of one flattened patch row of ``pixel_values``."""
        return self.in_channels * self.temporal_patch_size * self.patch_size**2

    @property
    def factor(self) -> int:
        """Image sides snap to multiples of this (patch * merge = 28)."""
        return self.patch_size * self.spatial_merge_size


@dataclass(frozen=True)
class ModelConfig:
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    mrope_section: tuple[int, int, int]
    tie_word_embeddings: bool
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    vision: VisionConfig

    @property
    def is_qwen2_5(self) -> bool:
        return self.model_type == "qwen2_5_vl"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ModelConfig":
        model_type = raw.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ModelFolderError(
                f"unsupported model_type {model_type!r}: expected one of {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        text = dict(raw)
        text.update(raw.get("text_config") or {})
        vis = raw.get("vision_config") or {}
        try:
            hidden = int(text["hidden_size"])
            heads = int(text["num_attention_heads"])
            rope_scaling = text.get("rope_scaling") or raw.get("rope_scaling") or {}
            section = rope_scaling.get("mrope_section") or [16, 24, 24]
            is25 = model_type == "qwen2_5_vl"
            vision = VisionConfig(
                depth=int(vis["depth"]),
                embed_dim=int(vis["hidden_size"] if is25 else vis["embed_dim"]),
                num_heads=int(vis["num_heads"]),
                out_hidden_size=int(vis["out_hidden_size"] if is25 else vis.get("hidden_size", hidden)),
                patch_size=int(vis.get("patch_size", 14)),
                temporal_patch_size=int(vis.get("temporal_patch_size", 2)),
                spatial_merge_size=int(vis.get("spatial_merge_size", 2)),
                in_channels=int(vis.get("in_channels", vis.get("in_chans", 3))),
                window_size=int(vis.get("window_size", 112)) if is25 else None,
                fullatt_block_indexes=tuple(int(i) for i in vis.get("fullatt_block_indexes", ())) if is25 else (),
                tokens_per_second=float(vis.get("tokens_per_second", 4)) if is25 else None,
                hidden_act=str(vis.get("hidden_act", "silu" if is25 else "quick_gelu")),
            )
            return cls(
                model_type=model_type,
                num_layers=int(text["num_hidden_layers"]),
                hidden_size=hidden,
                num_heads=heads,
                num_kv_heads=int(text.get("num_key_value_heads", heads)),
                head_dim=int(text.get("head_dim") or hidden // heads),
                intermediate_size=int(text["intermediate_size"]),
                vocab_size=int(text["vocab_size"]),
                rms_norm_eps=float(text.get("rms_norm_eps", 1e-6)),
                rope_theta=float(text.get("rope_theta", 1_000_000.0)),
                mrope_section=tuple(int(s) for s in section),  # type: ignore[arg-type]
                tie_word_embeddings=bool(raw.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
                image_token_id=int(raw["image_token_id"]),
                video_token_id=int(raw["video_token_id"]),
                vision_start_token_id=int(raw["vision_start_token_id"]),
                vision_end_token_id=int(raw["vision_end_token_id"]),
                vision=vision,
            )
        except KeyError as exc:
            raise ModelFolderError(f"config.json lacks the key {exc.args[0]!r} for a {model_type} model") from None

    @classmethod
    def from_folder(cls, folder: str | Path) -> "ModelConfig":
        return cls.from_dict(read_json_object(
            Path(folder) / "config.json", "config.json",
            missing=f"{folder}: no config.json, so this is not a Hugging Face model or export folder"))


@dataclass(frozen=True)
class GenerationTokens:
    """bos / pad / eos ids, from generation_config.json with config.json as fallback.

    Hub checkpoints put the eos list (``<|im_end|>``, ``<|endoftext|>``) in
    generation_config.json and a single eos in config.json; generation uses the
    former, so it wins.
    """

    bos_token_id: int | None
    pad_token_id: int | None
    eos_token_ids: tuple[int, ...]

    @classmethod
    def from_dicts(cls, config: dict[str, Any], generation: dict[str, Any] | None) -> "GenerationTokens":
        def pick(key: str) -> Any:
            if generation and generation.get(key) is not None:
                return generation[key]
            text = config.get("text_config") or {}
            return config.get(key, text.get(key))

        eos = pick("eos_token_id")
        eos_ids = tuple(int(e) for e in eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (int(eos),))
        bos, pad = pick("bos_token_id"), pick("pad_token_id")
        return cls(
            bos_token_id=None if bos is None else int(bos),
            pad_token_id=None if pad is None else int(pad),
            eos_token_ids=eos_ids,
        )

    @classmethod
    def from_folder(cls, folder: str | Path) -> "GenerationTokens":
        folder = Path(folder)
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        gen_path = folder / "generation_config.json"
        try:
            gen = json.loads(gen_path.read_text(encoding="utf-8")) if gen_path.is_file() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFolderError(f"{gen_path}: unreadable generation_config.json ({exc})") from None
        return cls.from_dicts(raw, gen if isinstance(gen, dict) else None)
