"""How well a model reads puzzles: grid-exact rate, cell accuracy, rules-exact rate, per data set.

    python -m vlm_sudoku.tools.eval_reader EXPORT_DIR [--sets photos-val,rendered-classic,rendered-variants] [--count 200]
    python -m vlm_sudoku.tools.eval_reader MODEL_DIR --backend torch     # transformers, for comparison

Data sets: the fixed validation split of the newspaper photos (tools/train/photos.py)
and rendered puzzles from seeds the training never draws. The ONNX backend runs
the product's own runtime; the torch backend runs transformers' generate on the
same prompts. Prints a table and, with --json, one object.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import click
from PIL import Image

from ..runtime.answers import parse_digits_answer, parse_rules_answer
from ..solver.errors import VlmSudokuError
from ..solver.puzzle import Puzzle

EVAL_SEED_BASE = 10**12  # training draws seeds below 2**62 from its own stream; these are fixed and listed


class Reader(Protocol):
    def read(self, image: Image.Image, questions: tuple[str, ...]) -> dict[str, str]: ...


@dataclass
class Item:
    name: str
    image: Image.Image
    puzzle: Puzzle  # the truth: givens + rules
    check_rules: bool = True


@dataclass
class Score:
    images: int = 0
    grid_exact: int = 0
    cells: int = 0
    cells_right: int = 0
    rules_checked: int = 0
    rules_exact: int = 0
    unreadable: int = 0
    confusion: Counter = field(default_factory=Counter)  # (true, read) symbol pairs that differ
    seconds: float = 0.0

    def row(self, name: str) -> dict:
        return {
            "set": name, "images": self.images,
            "grid_exact": self.grid_exact / max(1, self.images),
            "cell_accuracy": self.cells_right / max(1, self.cells),
            "rules_exact": self.rules_exact / max(1, self.rules_checked) if self.rules_checked else None,
            "unreadable": self.unreadable,
            "top_confusions": [f"{t}->{r} x{k}" for (t, r), k in self.confusion.most_common(8)],
            "seconds_per_image": self.seconds / max(1, self.images),
        }


def same_rules(a: Puzzle, b: Puzzle) -> bool:
    return (a.size, a.regions, a.box) == (b.size, b.regions, b.box) and sorted(map(repr, a.constraints)) == sorted(
        map(repr, b.constraints))


def score_item(item: Item, answers: dict[str, str], score: Score) -> None:
    truth = item.puzzle
    n = truth.size
    score.images += 1
    sym = truth.alphabet.symbol
    try:
        read = parse_digits_answer(answers["digits"], n)
    except VlmSudokuError:
        read = None
        score.unreadable += 1
    score.cells += n * n
    if read is not None:
        right = sum(read[r][c] == truth.givens[r][c] for r in range(n) for c in range(n))
        score.cells_right += right
        score.grid_exact += right == n * n
        for r in range(n):
            for c in range(n):
                if read[r][c] != truth.givens[r][c]:
                    score.confusion[(sym(truth.givens[r][c]), sym(read[r][c]))] += 1
    if item.check_rules and "rules" in answers:
        score.rules_checked += 1
        try:
            score.rules_exact += same_rules(parse_rules_answer(answers["rules"]), truth)
        except VlmSudokuError:
            pass


def photo_items(count: int | None = None) -> Iterator[Item]:
    from .train.photos import load_photos, split

    from ..runtime.image_io import load_image

    _train, val = split(load_photos())
    for p in val[:count]:
        yield Item(p.path.name, load_image(p.path), p.puzzle)


def rendered_items(kinds: str, count: int, sizes: tuple[int, ...]) -> Iterator[Item]:
    from .render import sample

    for i in range(count):
        r = sample(EVAL_SEED_BASE + i, sizes=sizes, kinds=kinds)
        yield Item(f"seed{EVAL_SEED_BASE + i}", r.image, r.puzzle)


SETS: dict[str, Callable[[int], Iterator[Item]]] = {
    "photos-val": lambda n: photo_items(None),
    "rendered-classic": lambda n: rendered_items("classic", n, (9,)),
    "rendered-classic-all-sizes": lambda n: rendered_items("classic", n, (4, 6, 9, 16)),
    "rendered-variants": lambda n: rendered_items(",".join(_variant_kinds()), n, (4, 6, 9, 16)),
}


def _variant_kinds() -> tuple[str, ...]:
    from .render.puzzles import VARIANT_KINDS

    return VARIANT_KINDS


def evaluate(reader: Reader, sets: list[str], count: int, progress: bool = True) -> list[dict]:
    rows = []
    for name in sets:
        score = Score()
        items = list(SETS[name](count))
        with click.progressbar(items, label=name, file=sys.stderr) if progress else _nullbar(items) as bar:
            for item in bar:
                t = time.perf_counter()
                answers = reader.read(item.image, ("rules", "digits"))
                score.seconds += time.perf_counter() - t
                score_item(item, answers, score)
        rows.append(score.row(name))
    return rows


class _nullbar:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return self.items

    def __exit__(self, *exc):
        return False


def table(rows: list[dict]) -> str:
    lines = ["| data set | images | grid exact | cell accuracy | rules exact | unreadable | s/image | top confusions (true->read) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        rules = "-" if r["rules_exact"] is None else f"{100 * r['rules_exact']:.1f}%"
        lines.append(f"| {r['set']} | {r['images']} | {100 * r['grid_exact']:.1f}% | {100 * r['cell_accuracy']:.2f}% | "
                     f"{rules} | {r['unreadable']} | {r['seconds_per_image']:.2f} | {', '.join(r['top_confusions'][:5])} |")
    return "\n".join(lines)


@click.command()
@click.argument("model", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--backend", type=click.Choice(["onnx", "torch"]), default="onnx", show_default=True)
@click.option("--sets", default="photos-val,rendered-classic,rendered-variants", show_default=True)
@click.option("--count", default=200, show_default=True, help="Rendered images per rendered set.")
@click.option("--provider", default="auto", show_default=True, help="onnx backend: cpu, cuda, tensorrt or auto.")
@click.option("--json", "as_json", is_flag=True)
def main(model: Path, backend: str, sets: str, count: int, provider: str, as_json: bool) -> None:
    """Score a model's reading of puzzle images."""
    names = [s.strip() for s in sets.split(",") if s.strip()]
    unknown = [s for s in names if s not in SETS]
    if unknown:
        raise click.BadParameter(f"unknown set(s) {unknown}; known: {', '.join(SETS)}", param_hint="--sets")
    if backend == "torch":
        from ..export.torch_backend import TorchPipeline

        reader: Reader = TorchPipeline(model)
    else:
        from ..runtime.pipeline import Pipeline

        reader = Pipeline.load(model, provider=provider)
    rows = evaluate(reader, names, count)
    click.echo(json.dumps(rows) if as_json else table(rows))


if __name__ == "__main__":
    main()
