"""Errors the exporter raises on purpose; the CLI prints each as one line and exits 1.

Bad user input (a folder that is not a model, an unsupported model_type, an
output folder holding another model) derives from ``InputError``; failures of
the export itself derive from ``ExportError``.
"""

from __future__ import annotations

from ..runtime.model_config import ModelFolderError
from ..solver.errors import InputError, VlmSudokuError

__all__ = [
    "ExportError",
    "MissingWeightsError",
    "ModelFolderError",
    "NoDiskSpaceError",
    "OutputFolderInUseError",
    "TensorRTUnavailableError",
    "UnsupportedArchitecture",
]


class ExportError(VlmSudokuError):
    """The export could not be completed (the folder given was fine)."""

    exit_code = 1


class UnsupportedArchitecture(InputError):
    """No ONNX config is registered for this model_type / graph."""

    def __init__(self, model_type: str, known: list[str] | tuple[str, ...]) -> None:
        super().__init__(f"unsupported model_type {model_type!r}: vlm-export knows {', '.join(sorted(known))}")


class MissingWeightsError(InputError):
    """The model folder has a config but no safetensors weights."""


class OutputFolderInUseError(InputError):
    """The output folder holds another model's export (or something else); --force replaces it."""


class NoDiskSpaceError(ExportError):
    """Not enough free space where the export is written."""


class TensorRTUnavailableError(ExportError):
    """--tensorrt was asked for but TensorRT (or its onnxruntime provider, or a GPU) is missing."""
