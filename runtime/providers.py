"""Which onnxruntime execution provider runs the graphs, and why.

``auto`` takes the fastest one that can work here (TensorRT, then CUDA, then
CPU) and says on stderr why it fell back, as the original pipeline did for
flash-attention; naming one makes the choice strict: an error instead of a
fallback. The runtime never assumes a particular onnxruntime build (PyPI CPU,
onnxruntime-gpu, NVIDIA's Jetson wheels): it asks the installed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..solver.errors import InputError
from .gpu import detect_gpu, tensorrt_version
from .manifest import EngineMismatchError, Manifest

NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
CHOICES = ("auto", "cpu", "cuda", "tensorrt")


class ProviderError(InputError):
    """The requested execution provider cannot run here."""


@dataclass(frozen=True)
class ProviderChoice:
    name: str  # cpu | cuda | tensorrt
    notes: list[str] = field(default_factory=list)  # why auto fell back (for stderr)

    @property
    def device(self) -> str:
        return "cpu" if self.name == "cpu" else "cuda"

    def session_providers(self, export_dir: Path, manifest: Manifest | None, cuda_options: dict[str, Any] | None = None
                          ) -> list[Any]:
        """What ``InferenceSession(providers=...)`` gets: the choice, then its fallbacks for unsupported nodes."""
        cuda = (NAMES["cuda"], {"device_id": 0, **(cuda_options or {})})
        if self.name == "tensorrt":
            assert manifest is not None and manifest.tensorrt is not None
            trt = {"trt_engine_cache_enable": "1", "trt_engine_cache_path": str(export_dir / manifest.tensorrt.cache_dir),
                   "trt_fp16_enable": "1"}
            return [(NAMES["tensorrt"], trt), cuda, NAMES["cpu"]]
        if self.name == "cuda":
            return [cuda, NAMES["cpu"]]
        return [NAMES["cpu"]]


def available() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _why_not(name: str, present: list[str], manifest: Manifest | None) -> str | None:
    """None if ``name`` can run here, else the reason in a few words."""
    if name == "cpu":
        return None
    if NAMES[name] not in present:
        hint = "install onnxruntime-gpu" if name == "cuda" else "install onnxruntime-gpu with TensorRT 10"
        return f"this onnxruntime has no {NAMES[name]} ({hint})"
    gpu = detect_gpu()
    if gpu is None:
        return "no NVIDIA GPU is visible"
    if name == "tensorrt":
        if tensorrt_version() is None:
            return "libnvinfer (TensorRT) is not installed"
        if manifest is None or manifest.tensorrt is None:
            return "the export has no TensorRT engines (vlm-export --tensorrt builds them on this GPU)"
        try:
            manifest.check_engine(gpu[0], gpu[1], tensorrt_version() or "")
        except EngineMismatchError as exc:
            return str(exc)
    return None


def choose(requested: str, manifest: Manifest | None = None, present: list[str] | None = None) -> ProviderChoice:
    """The provider to use for ``requested`` (auto, cpu, cuda, tensorrt)."""
    if requested not in CHOICES:
        raise ProviderError(f"unknown provider {requested!r} (choose from {', '.join(CHOICES)})")
    present = available() if present is None else present
    order = ["tensorrt", "cuda", "cpu"] if requested == "auto" else [requested]
    notes: list[str] = []
    for name in order:
        reason = _why_not(name, present, manifest)
        if reason is None:
            return ProviderChoice(name, notes)
        if requested != "auto":
            raise ProviderError(f"--provider {name} cannot run here: {reason}")
        notes.append(f"not using {name}: {reason}")
    raise AssertionError("the CPU provider is always available")
