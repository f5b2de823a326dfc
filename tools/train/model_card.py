"""The model card of the embedded default model (hf/README.md): recipe, accuracy, attribution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..eval_reader import SET_NOTES, cell_px_line
from . import recipe
from .data import Mix

ATTRIBUTION = (
    "Fine-tuned and validated with the newspaper Sudoku photos of B. Wicht's sudoku_dataset "
    "(github.com/wichtounet/sudoku_dataset, v2 training split), licensed CC-BY-4.0. The photos are not "
    "redistributed here; the weights were trained on them."
)


def card(model_dir: Path, state: dict[str, Any] | None = None, eval_rows: list[dict[str, Any]] | None = None) -> str:
    from ...runtime.clue_crops import CONFIG_KEY as CLUE_KEY, load_clue_crops
    from ...runtime.grid_view import CONFIG_KEY, load_grid_view
    from ...runtime.marks_map import CONFIG_KEY as MAP_KEY, load_layers
    from ...runtime.model_config import ModelConfig
    from ...runtime.text_crops import CONFIG_KEY as TEXT_KEY, load_text_crops

    cfg = ModelConfig.from_folder(model_dir)
    layers = load_layers(model_dir)
    crops = load_clue_crops(model_dir)
    lines_asked = load_text_crops(model_dir)
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
        *([f"- clue crops (runtime/clue_crops.py): declares them (`{CLUE_KEY}`, {crops.size} px), so each printed "
           "number of its killer and outside maps (a cage sum, a sandwich or little-killer total) is cut out of the "
           f"picture where the map puts it, enlarged to {crops.size}x{crops.size}, and asked on its own; the answer "
           "replaces the map's number"] if crops is not None else []),
        *([f"- text crops (runtime/text_crops.py): declares them (`{TEXT_KEY}`), so the {lines_asked.lines} lines of "
           f"words nearest the grid are cut out level, {lines_asked.height} px high, and each asked which rules given in "
           "words only (anti-knight, anti-king, non-consecutive, disjoint groups) it states; where they state any, "
           "together they set those rules"] if lines_asked is not None else []),
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
        lines += [f"- {line}" for r in eval_rows if (line := cell_px_line(r))]
    lines += ["", "## Data attribution", "", ATTRIBUTION, ""]
    return "\n".join(lines)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("state_json", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("eval_json", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def main(folder: Path, state_json: Path | None, eval_json: Path | None) -> None:
    """Write FOLDER/README.md, the model card of the hf folder FOLDER, with the runs of STATE_JSON (a state card:
    the recipe of every run its weights went through) and the eval_reader --json rows of EVAL_JSON."""
    state = json.loads(state_json.read_text()) if state_json else None
    rows = json.loads(eval_json.read_text()) if eval_json else None
    (folder / "README.md").write_text(card(folder, state, rows))
    click.echo(f"wrote {folder / 'README.md'}")


if __name__ == "__main__":
    main()
