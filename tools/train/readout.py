"""How much the vision tokens of a trained checkpoint carry, as its training-only read-out (loop.AuxHead) ranks them.

    python -m vlm_sudoku.tools.train.readout CKPT [--samples 60] [--json]

CKPT is a folder with the model's weights and its ``aux_head.pt`` (a run's ``final/w32``). Rendered samples are drawn
from a data seed no run trains on; for every bit of the read-out (data.MARKINGS, data.JOINS, data.TEXT_GROUPS) it prints
the average precision over the merged tokens that are labelled (1.0: every token with the bit ranked above every one
without). Why: the rules answer is only as good as what the image tokens say, and a read-out that ranks a marking,
a join or a rule's words well is the first sign a run has taught the vision tower to see it; docs/benchmarks.md has
kept such figures by hand since run 10.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from .data import JOINS, MARKINGS, TEXT_GROUPS, Mix, SampleMaker

SEED = 987_654  # no run has trained on it (runs take seeds 1-99)


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Mean of the precision at each positive, scores ranked high to low; None without a positive."""
    positives = int(truth.sum())
    if not positives:
        return None
    order = np.argsort(-scores, kind="stable")
    hits = truth[order].astype(bool)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / positives)


def bit_names() -> list[str]:
    return [*MARKINGS, *(f"join:{j}" for j in JOINS), *(f"text:{t}" for t in TEXT_GROUPS)]


def measure(ckpt: Path, base: Path, samples: int, kinds: str) -> dict[str, dict]:
    """Per read-out bit: its average precision and its positive tokens over ``samples`` rendered samples."""
    import torch

    from .loop import AuxHead, load_model

    if not (ckpt / "aux_head.pt").exists():
        raise click.ClickException(f"{ckpt} has no aux_head.pt: the read-out is kept in a run's final/w32 folder")
    model = load_model(base, ckpt, "cpu").eval()
    head = AuxHead(model, "cpu")
    head.load(ckpt / "aux_head.pt")
    trained = head.loaded_rows  # (an older head: fewer rows)
    maker = SampleMaker(base, seed=SEED, mix=Mix(photo_rate=0.0, kinds=kinds, per_picture=1), photos_dir=None)
    rows = np.concatenate([np.arange(r.start, r.stop) for r, _columns in head.BIT_PARTS])
    columns = np.concatenate([np.arange(c.start, c.stop) for _rows, c in head.BIT_PARTS])
    scores, labels = [], []
    with torch.no_grad(), click.progressbar(range(samples), label="samples", file=sys.stderr) as bar:
        for i in bar:
            s = maker(i)
            if s.token_labels is None:
                continue
            model.model.visual(torch.from_numpy(s.pixel_values), grid_thw=torch.from_numpy(s.grid_thw))
            scores.append(head.linear(head.features.float()).numpy()[:, rows])
            head.features = None
            labels.append(s.token_labels[:, columns])
    score, label = np.concatenate(scores), np.concatenate(labels)
    out: dict[str, dict] = {}
    for k, (name, row) in enumerate(zip(bit_names(), rows)):
        known = label[:, k] >= 0
        was_trained = bool(row < trained)
        ap = average_precision(score[known, k], label[known, k] == 1) if was_trained else None
        out[name] = {"ap": ap, "trained": was_trained, "positives": int((label[known, k] == 1).sum()),
                     "tokens": int(known.sum())}
    return out


@click.command()
@click.argument("ckpt", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--base", type=click.Path(path_type=Path, exists=True, file_okay=False),
              default=Path(__file__).resolve().parents[2] / "runtime" / "default_model" / "hf", show_default=True,
              help="The folder of the model's tokenizer and preprocessor settings (its context view, grid view).")
@click.option("--samples", default=60, show_default=True)
@click.option("--kinds", default="all", show_default=True, help="Puzzle kinds drawn (render.puzzles.parse_kinds).")
@click.option("--json", "as_json", is_flag=True)
def main(ckpt: Path, base: Path, samples: int, kinds: str, as_json: bool) -> None:
    """Average precision of each read-out bit of CKPT on rendered samples."""
    result = measure(ckpt, base, samples, kinds)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo("| read-out bit | average precision | positive tokens | labelled tokens |")
    click.echo("|---|---:|---:|---:|")
    for name, r in result.items():
        ap = "untrained" if not r["trained"] else "-" if r["ap"] is None else f"{r['ap']:.2f}"
        click.echo(f"| {name} | {ap} | {r['positives']} | {r['tokens']} |")


if __name__ == "__main__":
    main()
