"""The model card of the embedded default model (hf/README.md): recipe, accuracy, attribution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..eval_reader import SET_NOTES
from . import recipe
from .data import Mix

ATTRIBUTION = (
    "Fine-tuned and validated with the newspaper Sudoku photos of B. Wicht's sudoku_dataset "
    "(github.com/wichtounet/sudoku_dataset, v2 training split), licensed CC-BY-4.0. The photos are not "
    "redistributed here; the weights were trained on them."
)


def card(model_dir: Path, state: dict[str, Any] | None = None, eval_rows: list[dict[str, Any]] | None = None) -> str:
    from ...runtime.grid_view import CONFIG_KEY, load_grid_view
    from ...runtime.marks_map import CONFIG_KEY as MAP_KEY, load_layers
    from ...runtime.model_config import ModelConfig

    cfg = ModelConfig.from_folder(model_dir)
    layers = load_layers(model_dir)
    view = load_grid_view(model_dir) or recipe.GRID_VIEW
    weights = model_dir / "model.safetensors"
    params = f"{weights.stat().st_size / 2 / 1e6:.1f} M (fp16)" if weights.exists() else "?"
    lines = [
        "---",
        "license: apache-2.0",
        "library_name: transformers",
        "pipeline_tag: image-text-to-text",
        "tags: [qwen2_vl, sudoku, ocr]",
        "---",
        "# vlm-sudoku embedded default model",
        "",
        "A small Qwen2-VL (same classes, processor and chat template as Qwen2-VL-2B-Instruct, its own",
        "tokenizer) that answers vlm-sudoku's two questions about a puzzle picture: the rules, as compact",
        "JSON (docs/rules-format.md), and the given digits, one line per row"
        + (", and draws the markings of the rules it names as maps." if layers else "."),
        "",
        f"- parameters: {params}; vision {cfg.vision.embed_dim} wide x {cfg.vision.depth} blocks, "
        f"language model {cfg.hidden_size} wide x {cfg.num_layers} layers, vocabulary {cfg.vocab_size}",
        f"- input: the grid view (runtime/grid_view.py): the grid located in the picture and warped to "
        f"{view.size}x{view.size} pixels, its border {view.margin} px inside the edges"
        + (f", after the whole picture shrunk to fit {view.context}x{view.context} (the context view, a first "
           "image: rules printed beside the grid)" if view.context else "")
        + f" (`{CONFIG_KEY}` in preprocessor_config.json); the runtime and the torch backend do this "
        "before Qwen2-VL's own preprocessing",
        *([f"- marks map (runtime/marks_map.py, docs/rules-format.md): declares the layers {', '.join(layers)} "
           f"(`{MAP_KEY}` in preprocessor_config.json), so after its rules answer it is asked to draw each of them "
           "that the answer names, one code per cell, and code turns the maps into those rules"] if layers else []),
        f"- tokenizer: byte-level BPE of {recipe.VOCAB_SIZE} trained on {recipe.TOKENIZER_PUZZLES} sampled puzzles' "
        f"answers (seed {recipe.TOKENIZER_SEED}); cell references stay whole",
        f"- initial weights: seed {recipe.MODEL_SEED}",
        "",
        "## Training recipe",
        "",
        "Rendered puzzles (tools/render: sizes 4/6/9/16, every supported variant, app / newspaper / book",
        "layouts, photo damage) made on the fly, plus augmented training photos. Data mix (each run's overrides below) "
        f"(tools/train/data.py `Mix` defaults): {Mix()}.",
        "During training only, a linear read-out on the vision tower's merged tokens learns the symbol,",
        "row and column of the cell under each token (tools/train/loop.py `AuxHead`); it is not shipped.",
    ]
    if state:
        lines += ["", "Run: " + json.dumps({k: v for k, v in state.items() if k != "wall_seconds"})]
    if eval_rows:
        lines += ["", "## Measured reading accuracy", "",
                  "As vlm-solve reads (tools/eval_reader.py through the ONNX runtime: the digits of three grid views "
                  "combined; then the reading check):", "",
                  "| data set | images | grid exact | after the reading check | cell accuracy | rules exact |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in eval_rows:
            rules = "-" if r.get("rules_exact") is None else f"{100 * r['rules_exact']:.1f}%"
            checked = "-" if r.get("grid_exact_checked") is None else f"{100 * r['grid_exact_checked']:.1f}%"
            lines.append(f"| {r['set']} | {r['images']} | {100 * r['grid_exact']:.1f}% | {checked} | "
                         f"{100 * r['cell_accuracy']:.2f}% | {rules} |")
        lines += [""] + [f"- {r['set']}: {SET_NOTES[r['set']]}" for r in eval_rows if r["set"] in SET_NOTES]
    lines += ["", "## Data attribution", "", ATTRIBUTION, ""]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m vlm_sudoku.tools.train.model_card HF_DIR STATE_JSON EVAL_JSON
    import sys

    folder = Path(sys.argv[1])
    state = json.loads(Path(sys.argv[2]).read_text()) if len(sys.argv) > 2 else None
    rows = json.loads(Path(sys.argv[3]).read_text()) if len(sys.argv) > 3 else None
    (folder / "README.md").write_text(card(folder, state, rows))
