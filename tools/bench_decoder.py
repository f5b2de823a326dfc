"""Decoding speed of the optimum decoder graph against the fused GroupQueryAttention decoder.

    python -m vlm_sudoku.tools.bench_decoder EXPORT_DIR [--prompt 280] [--tokens 90] [--provider cpu]

Both graphs of one export (made with ``vlm-export --fused-decoder``) decode the same number of tokens
after the same text prefill, through the runtime engine's own loop (``Engine(decoder=...)``), so the
difference is the graph: the optimum export's shape arithmetic and unfused attention against ~35
fused nodes a layer. Prints a table; medians of --repeat runs after one warm-up.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import click

from ..runtime.engine import Engine
from .machine import describe_cpu

DECODERS = {"optimum decoder (traced)": "optimum", "fused GQA decoder": "fused"}


def _run(engine: Engine, prompt: int, tokens: int) -> tuple[float, float]:
    """(prefill s, decode s) of one greedy generation, stop tokens ignored."""
    gen = engine.generate([1] * prompt, max_new_tokens=tokens)
    return gen.prefill_s, gen.decode_s


@click.command()
@click.argument("export_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--prompt", default=280, show_default=True, help="Prompt tokens prefilled first.")
@click.option("--tokens", default=90, show_default=True, help="Tokens decoded after the prefill.")
@click.option("--repeat", default=3, show_default=True)
@click.option("--provider", default="cpu", show_default=True)
def main(export_dir: Path, prompt: int, tokens: int, repeat: int, provider: str) -> None:
    engines = {name: Engine(export_dir, provider=provider, decoder=d) for name, d in DECODERS.items()}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for _ in range(repeat + 1):  # the first round warms up; rounds alternate the graphs
        for name, engine in engines.items():
            engine.stop_ids = frozenset()
            runs[name].append(_run(engine, prompt, tokens))
    click.echo(f"Machine: {describe_cpu()}; provider {provider}; {export_dir}; prompt {prompt} tokens, "
               f"{tokens} decoded, median of {repeat}")
    click.echo("| decoder graph | prefill ms | decode ms/token | decode tokens/s |")
    click.echo("|---|---:|---:|---:|")
    for name, rows in runs.items():
        prefill = statistics.median(r[0] for r in rows[1:])
        decode = statistics.median(r[1] for r in rows[1:]) / (tokens - 1)  # the first token comes from the prefill
        click.echo(f"| {name} | {1000 * prefill:.1f} | {1000 * decode:.2f} | {1 / decode:.0f} |")


if __name__ == "__main__":
    main()
