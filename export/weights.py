"""A model folder's tensors by role, read straight from its safetensors files (no torch).

The graph builders (export/gqa_decoder.py, export/vision_fused.py) write onnxruntime graphs from the
checkpoint's own tensors. Checkpoints on the Hub are bf16, which numpy (and safetensors' numpy reader)
cannot represent, so the files are read here from a memory map, bf16 widened to fp32 exactly, and only
the tensors a builder asks for are copied.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SAFETENSORS_FLOATS = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path: Path, want: Callable[[str], bool]) -> dict[str, np.ndarray]:
    """The tensors of one safetensors file whose names ``want`` accepts, read from a memory map. bf16
    tensors come back widened to fp32, exactly (a bf16 is the top half of an fp32)."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or not want(name):
            continue
        kind = info["dtype"]
        if kind not in _SAFETENSORS_FLOATS:
            raise ValueError(f"{path}: {name} is {kind}, not a float tensor")
        start, end = info["data_offsets"]
        raw = np.frombuffer(data[start:end], dtype=_SAFETENSORS_FLOATS[kind]).reshape(info["shape"])
        if kind == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = np.array(raw)  # a copy that outlives the map
    return tensors


@dataclass
class Weights:
    """Tensors of one part of a model, by name below the part's prefix, whatever the checkpoint's naming
    generation ("model.language_model." or "model." for the text model, "model.visual." or "visual."
    for the vision tower)."""

    tensors: dict[str, np.ndarray]
    prefix: str

    @classmethod
    def load(cls, folder: Path, probe: str, want: Callable[[str], bool], what: str) -> "Weights":
        """The tensors ``want`` accepts from every safetensors file of ``folder``; the prefix is what comes
        before ``probe``, a tensor the part must have (``what`` names the part in the error)."""
        tensors: dict[str, np.ndarray] = {}
        for f in sorted(Path(folder).glob("*.safetensors")):
            tensors.update(read_safetensors(f, want))
        found = [k for k in tensors if k.endswith(probe)]
        if not found:
            raise ValueError(f"{folder}: no {what} (...{probe}) in the safetensors files")
        return cls(tensors, found[0][: -len(probe)])

    def get(self, name: str) -> np.ndarray:
        return self.tensors[self.prefix + name]
