"""tools/train/readout.py: the average precision of each read-out bit of a checkpoint."""

from __future__ import annotations

import json
import shutil

import numpy as np
from click.testing import CliRunner

from vlm_sudoku.tools.train.readout import average_precision, bit_names, main


def test_average_precision_ranks_positives_against_negatives() -> None:
    truth = np.array([1, 0, 1, 0, 0])
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.3, 0.2]), truth) == 1.0  # every positive first
    assert average_precision(np.array([0.1, 0.9, 0.2, 0.8, 0.7]), truth) == (1 / 4 + 2 / 5) / 2
    assert average_precision(np.array([0.5, 0.4]), np.array([0, 0])) is None


def test_readout_scores_every_trained_bit_and_says_which_are_untrained(tiny_qwen2_vl_dir, tmp_path) -> None:
    """A random head over a tiny model: every trained bit with positives gets an AP in (0, 1]; a head saved before
    the join and text rows leaves those untrained, and a folder without a head is a one-line error."""
    import torch

    from vlm_sudoku.runtime.grid_view import CONFIG_KEY
    from vlm_sudoku.tools.train.loop import AuxHead, load_model

    folder = tmp_path / "model"
    shutil.copytree(tiny_qwen2_vl_dir, folder)
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    pre[CONFIG_KEY] = {"size": 224, "margin": 20, "context": 168}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    head = AuxHead(load_model(folder, None, "cpu"), "cpu")
    torch.save(head.linear.state_dict(), folder / "aux_head.pt")
    args = [str(folder), "--base", str(folder), "--samples", "6", "--kinds", "killer,thermo,antiking", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output.splitlines()[-1])
    assert list(scores) == bit_names()
    with_positives = [r for r in scores.values() if r["positives"]]
    assert with_positives and all(r["trained"] and 0 < r["ap"] <= 1 for r in with_positives)
    assert scores["killer"]["positives"] and scores["join:cage_right"]["positives"]
    narrow = {k: v[:49 + 16 + 9 + 11] for k, v in head.linear.state_dict().items()}  # a head of runs 20-23
    torch.save(narrow, folder / "aux_head.pt")
    scores = json.loads(CliRunner().invoke(main, args).output.splitlines()[-1])
    assert scores["killer"]["trained"] and not any(r["trained"] for k, r in scores.items() if ":" in k)
    (folder / "aux_head.pt").unlink()
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code == 1 and "has no aux_head.pt" in missing.output
