"""Shared fixtures: tiny random Qwen2-VL / Qwen2.5-VL folders and their fp32 exports.

Built once per test session (a few seconds each on 2 cores) and reused by every
test file that needs a model or an export. They skip cleanly where the export
dependencies (torch, transformers, optimum) are absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _needs_export_stack() -> None:
    for mod in ("torch", "transformers", "optimum.exporters.onnx", "onnx"):
        pytest.importorskip(mod)


def _make(tmp_path_factory: pytest.TempPathFactory, shape: str) -> Path:
    _needs_export_stack()
    from vlm_sudoku.tools.make_random_model import make_random_model

    return make_random_model(shape, tmp_path_factory.mktemp(shape.replace(".", "_")) / "model", tokenizer=True)


def _export(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    from vlm_sudoku.export.exporter import ExportOptions, export_model

    out = tmp_path_factory.mktemp("export") / model_dir.parent.name
    export_model(model_dir, out, ExportOptions(precisions=("fp32",), check_tokens=16))
    return out


@pytest.fixture(scope="session")
def tiny_qwen2_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen2-VL folder (2 layers, vocabulary 512); treat as read-only."""
    return _make(tmp_path_factory, "tiny-qwen2-vl")


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen2.5-VL folder with windowed vision attention; treat as read-only."""
    return _make(tmp_path_factory, "tiny-qwen2.5-vl")


@pytest.fixture(scope="session")
def tiny_qwen2_vl_export(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_vl_dir: Path) -> Path:
    """fp32 vlm-export folder of ``tiny_qwen2_vl_dir`` (with manifest and parity); treat as read-only."""
    return _export(tmp_path_factory, tiny_qwen2_vl_dir)


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl_export(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_5_vl_dir: Path) -> Path:
    """fp32 vlm-export folder of ``tiny_qwen2_5_vl_dir`` (with manifest and parity); treat as read-only."""
    return _export(tmp_path_factory, tiny_qwen2_5_vl_dir)
