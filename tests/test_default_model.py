"""The embedded default model, as README's first command runs it: shipped export, example photo, solution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vlm_sudoku.runtime.cli import default_model_dir
from vlm_sudoku.runtime.clue_crops import load_clue_crops
from vlm_sudoku.runtime.text_crops import load_text_crops
from vlm_sudoku.runtime.image_io import load_image
from vlm_sudoku.runtime.manifest import Manifest
from vlm_sudoku.runtime.marks_map import load_layers
from vlm_sudoku.solver.puzzle import Puzzle
from vlm_sudoku.solver.solve import solve
from vlm_sudoku.tools.train.photos import read_dat

from .paths import ROOT
from .test_cli_solve import run

EXAMPLE = ROOT / "examples" / "image162.jpg"


def test_shipped_model_is_a_valid_export_within_the_size_budget() -> None:
    folder = default_model_dir()
    manifest = Manifest.load(folder)
    assert manifest.architecture == "qwen2_vl"
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert total <= 24_000_000, f"the default model takes {total} bytes"
    card = (folder / "hf" / "README.md").read_text()
    assert "CC-BY-4.0" in card  # the photos' attribution
    layers = load_layers(folder)  # a model that declares a marks map names its layers in its card
    assert not layers or f"declares the layers {', '.join(layers)} " in card
    crops = load_clue_crops(folder)  # and the clue crops it is asked
    assert crops is None or f"declares them (`vlm_sudoku_clue_crops`, {crops.size} px)" in card


def test_the_model_card_is_written_from_the_folder_its_runs_and_its_measured_rows(tmp_path: Path) -> None:
    """tools/train/model_card: the card of a copy of the shipped hf folder says what the folder declares, each
    run of the state card and each measured row (with grids exact by cell size where measured); a folder that is not one is a one-line usage error."""
    from click.testing import CliRunner

    from vlm_sudoku.tools.train.model_card import main

    folder = tmp_path / "hf"
    shutil.copytree(default_model_dir() / "hf", folder)
    (folder / "README.md").unlink()
    state, rows = tmp_path / "state.json", tmp_path / "eval.json"
    state.write_text(json.dumps({"runs": [{"run": 21, "data_seed": 19}]}))
    rows.write_text(json.dumps([{"set": "photos-val", "images": 32, "grid_exact": 1.0, "grid_exact_checked": 1.0,
                                 "cell_accuracy": 1.0, "rules_exact": 0.5},
                                {"set": "rendered-classic", "images": 3, "grid_exact": 2 / 3, "grid_exact_checked": 2 / 3,
                                 "cell_accuracy": 0.99, "rules_exact": 1.0,
                                 "grid_exact_by_cell_px": {"<20": {"images": 1, "grid_exact": 0.0},
                                                           ">=40": {"images": 2, "grid_exact": 1.0}}}]))
    result = CliRunner().invoke(main, [str(folder), str(state), str(rows)])
    assert result.exit_code == 0, result.output
    card = (folder / "README.md").read_text()
    assert '"run": 21, "data_seed": 19' in card and "| photos-val | 32 | 100.0% | 100.0% | 100.00% | 50.0% |" in card
    assert ("clue crops (runtime/clue_crops.py): declares them" in card) == (load_clue_crops(folder) is not None)
    assert ("text crops (runtime/text_crops.py): declares them" in card) == (load_text_crops(folder) is not None)
    assert "- rendered-classic: grids read exactly, by the grid's cell size in the picture: <20 px 0 of 1, >=40 px 2 of 2" in card
    assert "CC-BY-4.0" in card
    missing = CliRunner().invoke(main, [str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_readme_example_is_read_and_solved() -> None:
    truth = Puzzle.create(9, read_dat(EXAMPLE.with_suffix(".dat")))
    proc = run(str(EXAMPLE), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    expected = "".join("".join(str(v) if v else "." for v in row) for row in truth.givens)
    assert out["grid"] == expected
    assert out["status"] == "solved"
    assert out["solution"] == "".join("".join(map(str, row)) for row in solve(truth).solutions[0])
    assert out["views"] == 3 and out["timings"]["more_views"] > 0 and out["grid_found"] is True
    assert "no grid found" not in proc.stderr
    text = run(str(EXAMPLE))  # as README's first command prints it
    assert text.returncode == 0 and "read: 9x9 sudoku (digits from 3 grid views)" in text.stdout
    assert "| more views " in text.stdout


def test_onnx_export_and_pytorch_weights_give_the_same_answers() -> None:
    pytest.importorskip("torch")
    from vlm_sudoku.export.torch_backend import TorchPipeline
    from vlm_sudoku.runtime.pipeline import Pipeline

    image = load_image(EXAMPLE)
    onnx = Pipeline.load(default_model_dir(), provider="cpu").read(image)
    torch_answers = TorchPipeline(default_model_dir() / "hf", device="cpu").read(image)
    assert onnx == torch_answers


def test_the_torch_baseline_says_it_reads_one_view_without_the_check() -> None:
    """--backend torch (transformers' generate: tokens, no per-token choices) reads one grid view and runs no
    reading check, says so on stderr, and still solves the example as the ONNX runtime does."""
    pytest.importorskip("torch")
    proc = run(str(EXAMPLE), "--backend", "torch", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "one grid view and no reading check with --backend torch" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "solved" and out["views"] == 1


def test_a_picture_without_a_grid_is_read_whole_and_vlm_solve_says_so(tmp_path) -> None:
    """A page of text: the locator finds no grid, the grid-view model reads the whole picture, and vlm-solve
    says on stderr that such a reading is unlikely to be right (and grid_found is false in --json)."""
    from PIL import Image, ImageDraw

    page = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(page)
    for y in range(10, 470, 14):
        draw.text((10, y), "Place the digits 1-9 once in every row, column and box. " * 2, fill="black")
    page.save(tmp_path / "page.png")
    proc = run(str(tmp_path / "page.png"), "--json")
    assert "no grid found in the picture: the model read the whole picture" in proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["grid_found"] is False


def test_precision_the_export_lacks_is_a_one_line_error() -> None:
    from .test_cli_solve import assert_one_line_error

    assert_one_line_error(run(str(EXAMPLE), "--precision", "int4"), 1, "no int4 graphs in this export")
