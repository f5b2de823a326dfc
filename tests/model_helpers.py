"""Copies of the default model's export that declare more of the recipe than it was trained on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vlm_sudoku.runtime.cli import default_model_dir


def default_model_declaring(tmp_path: Path, settings: dict[str, Any]) -> Path:
    """A copy of the default model's export whose preprocessor configs (the export's and its hf/ folder's) add
    ``settings``: what a folder declares decides what the pipeline and the training ask, whatever the weights
    learnt."""
    folder = tmp_path / "model"
    shutil.copytree(default_model_dir(), folder)
    for pre in (folder / "preprocessor_config.json", folder / "hf" / "preprocessor_config.json"):
        raw = json.loads(pre.read_text())
        raw.update(settings)
        pre.write_text(json.dumps(raw, indent=2) + "\n")
    return folder
