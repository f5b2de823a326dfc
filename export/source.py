"""Inspect a local Hugging Face model folder before anything is loaded or written.

Every problem a user can cause by pointing at the wrong folder is found here,
cheaply, and reported as one line: not a folder, no config.json, an
unsupported model_type, no safetensors weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from ..runtime.manifest import ImagePolicy, weight_files, weights_sha256
from ..runtime.model_config import GenerationTokens, ModelConfig, ModelFolderError
from .errors import MissingWeightsError

# Files the runtime needs besides the graphs, copied verbatim when present
# (tokenizer and preprocessor files are optional for the export itself).
COPIED_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.json",
    "chat_template.jinja",
)


@dataclass(frozen=True)
class SourceModelInfo:
    path: Path
    cfg: ModelConfig
    hf_architecture: str
    tokens: GenerationTokens
    image_policy: ImagePolicy
    weight_files: tuple[Path, ...]
    weights_sha256: str
    config_sha256: str
    num_params: int  # stored tensors, from the safetensors headers (a tied lm_head counts once)

    @property
    def weight_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.weight_files)

    def files_to_copy(self) -> list[Path]:
        return [self.path / name for name in COPIED_FILES if (self.path / name).is_file()]


def inspect_model_dir(model_dir: str | Path) -> SourceModelInfo:
    """Validate a model folder and hash its weights; raises InputError subclasses with one-line messages."""
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise ModelFolderError(f"{path}: no such folder")
    if not path.is_dir():
        raise ModelFolderError(f"{path}: not a folder (expected a Hugging Face model folder)")
    cfg = ModelConfig.from_folder(path)  # raises on missing/unsupported config.json
    files = weight_files(path)
    if not files:
        others = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
        hint = f" (found {', '.join(others[:3])}: convert them to safetensors)" if others else ""
        raise MissingWeightsError(f"{path}: no *.safetensors weights{hint}")
    raw = json.loads((path / "config.json").read_text(encoding="utf-8"))
    archs = raw.get("architectures") or []
    preprocessor = path / "preprocessor_config.json"
    try:
        pre_raw = json.loads(preprocessor.read_text(encoding="utf-8")) if preprocessor.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{preprocessor}: unreadable ({exc})") from None
    return SourceModelInfo(
        path=path.resolve(),
        cfg=cfg,
        hf_architecture=str(archs[0]) if archs else "",
        tokens=GenerationTokens.from_folder(path),
        image_policy=ImagePolicy.from_preprocessor_config(pre_raw),
        weight_files=tuple(files),
        weights_sha256=weights_sha256(path),
        config_sha256=hashlib.sha256((path / "config.json").read_bytes()).hexdigest(),
        num_params=sum(safetensors_param_count(p) for p in files),
    )


def safetensors_param_count(path: Path) -> int:
    """Number of parameters in a safetensors file, from its JSON header; a corrupt header is a folder error."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100 * 1024 * 1024:
                raise ValueError("header larger than 100 MB")
            header = json.loads(f.read(size))
        return sum(
            math.prod(int(d) for d in meta["shape"]) for name, meta in header.items() if name != "__metadata__"
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error) as exc:
        raise ModelFolderError(f"{path}: not a valid safetensors file ({type(exc).__name__})") from None
