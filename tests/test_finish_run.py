"""tools/train/finish_run: a run's files as they come back from the GPU machine -> checkpoint, package, scores."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from click.testing import CliRunner


def _came_back(model_dir: Path, run: Path) -> None:
    """What finish.sh returns: the w32 shards loose, the fp16 shards as hf_*, the small files in small.tgz."""
    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    final = run / "remote"
    model.save_pretrained(final / "w32", max_shard_size="200KB")
    model.to(torch.float16).save_pretrained(final / "hf", max_shard_size="200KB")
    for f in model_dir.iterdir():  # train.loop's export_folder: the processor files beside the fp16 weights,
        if f.is_file() and f.suffix != ".safetensors" and not (final / "hf" / f.name).exists():
            (final / "hf" / f.name).write_bytes(f.read_bytes())
    pre = json.loads((final / "hf" / "preprocessor_config.json").read_text())  # ... as a --context-view run has
    pre["vlm_sudoku_grid_view"] = {"size": 112, "margin": 8, "context": 112}  # them (the base has no such view)
    (final / "hf" / "preprocessor_config.json").write_text(json.dumps(pre))
    (final / "w32" / "state.json").write_text(json.dumps({"step": 3, "samples": 6}))
    run.mkdir(exist_ok=True)
    with tarfile.open(run / "small.tgz", "w:gz") as tar:
        for f in sorted(final.rglob("*")):
            if f.is_file() and f.suffix != ".safetensors":
                tar.add(f, arcname=str(f.relative_to(final)))
    for f in (final / "w32").glob("*.safetensors"):
        f.rename(run / f.name)
    for f in (final / "hf").glob("*.safetensors"):
        f.rename(run / ("hf_" + f.name))
    for f in sorted(final.rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    final.rmdir()


def test_a_run_that_came_back_is_placed_packaged_and_measured(tiny_qwen2_vl_dir, tmp_path) -> None:
    from vlm_sudoku.tools.train.finish_run import main

    run = tmp_path / "run"
    _came_back(tiny_qwen2_vl_dir, run)
    assert len(list(run.glob("model-*.safetensors"))) > 1  # sharded, as the 16 MB limit makes it
    result = CliRunner().invoke(main, [str(run), "--base", str(tiny_qwen2_vl_dir), "--count", "2",
                                       "--sets", "rendered-classic", "--no-parity"])
    assert result.exit_code == 0, result.output
    w32 = run / "final" / "w32"
    assert (w32 / "state.json").exists() and (w32 / "model.safetensors.index.json").exists()
    assert len(list(w32.glob("model-*.safetensors"))) > 1 and list((run / "final" / "hf").glob("model-*.safetensors"))
    assert (run / "hf1" / "model.safetensors").exists() and (run / "package" / "manifest.json").exists()
    rows = json.loads((run / "eval.json").read_text())
    assert [r["set"] for r in rows] == ["rendered-classic"] and rows[0]["images"] == 2
    assert "| rendered-classic | 2 |" in result.output
    # the processor files are the run's own (a run with --context-view declares it there, the base does not)
    shipped = json.loads((run / "hf1" / "preprocessor_config.json").read_text())
    assert shipped["vlm_sudoku_grid_view"] == {"size": 112, "margin": 8, "context": 112}
    assert "vlm_sudoku_grid_view" not in json.loads((tiny_qwen2_vl_dir / "preprocessor_config.json").read_text())
    assert not (run / "hf1" / "model.safetensors.index.json").exists()  # the shards' index stays with the shards
    again = CliRunner().invoke(main, [str(run), "--base", str(tiny_qwen2_vl_dir), "--count", "1",
                                      "--sets", "rendered-classic", "--no-parity"])
    assert again.exit_code == 0, again.output  # run twice: the files are already in place


def test_nothing_to_finish_is_a_clear_error(tiny_qwen2_vl_dir, tmp_path) -> None:
    from vlm_sudoku.tools.train.finish_run import main

    result = CliRunner().invoke(main, [str(tmp_path), "--base", str(tiny_qwen2_vl_dir)])
    assert result.exit_code == 1 and "no model-*.safetensors shards" in result.output


