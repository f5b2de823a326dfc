"""Where the time of one puzzle goes in the ONNX runtime, and what sharing the prompt prefix saves.

    python -m vlm_sudoku.tools.bench_runtime EXPORT_DIR [IMAGE...] [--repeat 3] [--provider auto]

For each image (default: five of the shared newspaper photos) it runs the whole
read (preprocess, vision, prefix prefill, both questions, the digits of the
further grid views) with and without the shared prefix, and prints medians per
stage, the share of the time spent inside onnxruntime (model compute) against
everything else (Python, numpy, tokenizer), and the machine.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import click

from ..runtime.gpu import detect_gpu
from ..runtime.image_io import load_image
from ..runtime.grid_view import ZOOMS
from ..runtime.pipeline import Pipeline
from .machine import describe_cpu

DEFAULT_IMAGES = ["image1.jpg", "image10.jpg", "image100.jpg", "image1000.jpg", "image1031.jpg"]


def _one(pipe: Pipeline, image) -> dict[str, float]:
    engine = pipe.engine
    before = sum(engine.ort_seconds().values())
    t = time.perf_counter()
    reading = pipe.read_image(image)
    total = time.perf_counter() - t
    ort = sum(engine.ort_seconds().values()) - before
    row = {"total": total, "onnxruntime": ort, "other": total - ort,
           "grid view": reading.viewed.seconds if reading.viewed else 0.0, "preprocess": sum(e.preprocess_s for e in reading.encoded),
           "vision": sum(e.vision_s for e in reading.encoded), "prefix prefill": reading.prefix_s}
    for q, g in reading.answers.items():
        row[f"{q} prefill"] = g.prefill_s
        row[f"{q} decode"] = g.decode_s
        row[f"{q} tokens"] = len(g.tokens)
    row["more views"] = reading.more_views_s
    return row


@click.command()
@click.argument("export_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("images", nargs=-1, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--repeat", default=3, show_default=True)
@click.option("--provider", default="auto", show_default=True)
@click.option("--max-new-tokens", default=512, show_default=True)
@click.option("--decoder", type=click.Choice(["auto", "fused", "optimum"]), default="auto", show_default=True,
              help="Decoder graph: the fused one (vlm-export --fused-decoder) or optimum's.")
@click.option("--cuda-graph/--no-cuda-graph", "cuda_graph", default=None,
              help="Replay decode steps as CUDA graphs (default: whenever the CUDA provider runs an fp16 fused decoder).")
@click.option("--views", type=click.IntRange(1, len(ZOOMS)), default=len(ZOOMS), show_default=True,
              help="Grid views the digits are read from (vlm-solve --views).")
def main(export_dir: Path, images: tuple[Path, ...], repeat: int, provider: str, max_new_tokens: int,
         decoder: str, cuda_graph: bool | None, views: int) -> None:
    from .train.photos import DEFAULT_DIR

    paths = list(images) or [DEFAULT_DIR / n for n in DEFAULT_IMAGES]
    pictures = [load_image(p) for p in paths]
    results: dict[str, list[dict[str, float]]] = {}
    for shared in (True, False):
        pipe = Pipeline.load(export_dir, provider=provider, max_new_tokens=max_new_tokens, share_prefix=shared,
                             decoder=decoder, cuda_graph=cuda_graph, views=views)
        _one(pipe, pictures[0])  # warm-up
        rows = [_one(pipe, img) for _ in range(repeat) for img in pictures]
        results["shared prefix" if shared else "no sharing"] = rows
    keys = list(results["shared prefix"][0])
    gpu = detect_gpu() if pipe.engine.choice.device == "cuda" else None
    click.echo(f"Machine: {describe_cpu()}{f', GPU {gpu[0]}' if gpu else ''}; provider {pipe.provider_name} "
               f"({pipe.precision}); {'fused' if pipe.engine.fused else 'optimum'} decoder"
               f"{', static cache' if pipe.engine.static_cache else ''}{', CUDA graph' if pipe.engine.cuda_graph else ''}; "
               f"export {export_dir}; {views} grid view{'s' if views > 1 else ''} for the digits; "
               f"{len(pictures)} images x {repeat}")
    click.echo("| stage | " + " | ".join(f"{k} (median)" for k in results) + " |")
    click.echo("|---|" + "---:|" * len(results))
    for key in keys:
        cells = []
        for rows in results.values():
            v = statistics.median(r.get(key, 0.0) for r in rows)
            cells.append(f"{v:.0f}" if key.endswith("tokens") else f"{1000 * v:.1f} ms")
        click.echo(f"| {key} | " + " | ".join(cells) + " |")
    share = [statistics.median(r["onnxruntime"] / r["total"] for r in rows) for rows in results.values()]
    saved = statistics.median(r["total"] for r in results["no sharing"]) - statistics.median(
        r["total"] for r in results["shared prefix"])
    click.echo(f"\nonnxruntime share of the read: {', '.join(f'{100 * s:.0f}%' for s in share)}; "
               f"sharing the prefix saves {1000 * saved:.0f} ms per puzzle")


if __name__ == "__main__":
    main()
