"""Write rendered puzzles and their labels to a folder.

Each image i gets its own seed (derived from --seed and i), so any image can be
made again alone with ``vlm_sudoku.tools.render.sample(seed, ...)`` under the
same options (saved in DIR/render.json) and the same fonts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from multiprocessing import get_context
from pathlib import Path

import click

from ...solver.errors import VlmSudokuError
from . import STYLES, sample
from .fonts import FONTS_ENV, default_fonts
from .puzzles import SIZES, parse_kinds


def image_seed(seed: int, index: int) -> int:
    """The seed of image ``index`` in a run started with ``seed`` (63 bits, stable across Python versions)."""
    digest = hashlib.sha256(f"vlm-sudoku-render:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _csv_ints(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma list of sizes") from None
    bad = [s for s in sizes if s not in SIZES]
    if bad or not sizes:
        raise click.BadParameter(f"sizes must be among {', '.join(map(str, SIZES))}, got {value!r}")
    return sizes


def _kinds(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return parse_kinds(value)
    except VlmSudokuError as exc:
        raise click.BadParameter(str(exc)) from None


def _styles(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    styles = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [s for s in styles if s not in STYLES]
    if bad or not styles:
        raise click.BadParameter(f"styles must be among {', '.join(STYLES)}, got {value!r}")
    return styles


_JOB: dict = {}


def _init(job: dict) -> None:
    _JOB.update(job)


def _one(index: int) -> dict:
    job = _JOB
    seed = image_seed(job["seed"], index)
    item = sample(seed, sizes=job["sizes"], kinds=job["kinds"], styles=job["styles"], jpeg=job["format"] != "jpg")
    name = f"{index:0{job['digits']}d}.{job['format']}"
    path = Path(job["out"]) / name
    if job["format"] == "jpg":
        item.image.save(path, "JPEG", quality=item.jpeg_quality or job["quality"])
    else:
        item.image.save(path, "PNG", compress_level=1)
    return item.label(name)


@click.command(epilog="Example: python -m vlm_sudoku.tools.render --out /tmp/r --count 1000 --seed 1 --kinds all")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the images and labels.jsonl.")
@click.option("--count", default=100, show_default=True, type=click.IntRange(1), help="Number of images.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the whole run.")
@click.option("--sizes", default="4,6,9,16", show_default=True, callback=_csv_ints, help="Grid sizes to draw from.")
@click.option("--kinds", default="all", show_default=True, callback=_kinds, help="'classic', 'all' or a comma list of variant kinds.")
@click.option("--styles", default=",".join(STYLES), show_default=True, callback=_styles, help="Comma list of styles.")
@click.option("--format", "fmt", default="jpg", show_default=True, type=click.Choice(["jpg", "png"]), help="Image file format.")
@click.option("--quality", default=92, show_default=True, type=click.IntRange(1, 100), help="JPEG quality where the damage chose none.")
@click.option("--workers", default=os.cpu_count() or 1, show_default=True, type=click.IntRange(1), help="Processes.")
@click.option("--fonts", "font_dir", default=None, type=click.Path(file_okay=False, exists=True), help=f"Extra font folder (like ${FONTS_ENV}).")
def main(out: Path, count: int, seed: int, sizes: tuple[int, ...], kinds: tuple[str, ...], styles: tuple[str, ...],
         fmt: str, quality: int, workers: int, font_dir: str | None) -> None:
    """Render COUNT seeded puzzle pictures into OUT, with OUT/labels.jsonl (one JSON line per image)."""
    if font_dir:
        os.environ[FONTS_ENV] = os.pathsep.join([font_dir, *filter(None, [os.environ.get(FONTS_ENV)])])
    out.mkdir(parents=True, exist_ok=True)
    fonts = default_fonts()
    if fonts.builtin_only:
        click.echo("warning: no fonts found, using Pillow's built-in font only", err=True)
    job = {"out": str(out), "seed": seed, "sizes": sizes, "kinds": kinds, "styles": styles, "format": fmt,
           "quality": quality, "digits": max(5, len(str(count - 1)))}
    (out / "render.json").write_text(json.dumps({**job, "count": count, "fonts": [f.name for f in fonts.fonts]}, indent=1) + "\n")
    start = time.perf_counter()
    bar = None
    done = 0
    with open(out / "labels.jsonl", "w", encoding="utf-8") as labels:
        if workers == 1:
            _init(job)
            results = map(_one, range(count))
            pool = None
        else:
            pool = get_context("fork").Pool(workers, initializer=_init, initargs=(job,))
            results = pool.imap(_one, range(count), chunksize=4)
        try:
            for label in results:
                labels.write(json.dumps(label, ensure_ascii=False) + "\n")
                done += 1
                if bar is None and time.perf_counter() - start > 2.0:
                    bar = click.progressbar(length=count, label="rendering", file=click.get_text_stream("stderr"))
                    bar.__enter__()
                    bar.update(done)
                elif bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
            if pool is not None:
                pool.close()
                pool.join()
    seconds = time.perf_counter() - start
    click.echo(f"{count} images in {seconds:.1f} s ({count / seconds:.1f} images/s, {workers} worker(s)) -> {out}", err=True)


if __name__ == "__main__":
    main()
