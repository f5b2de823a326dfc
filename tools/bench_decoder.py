"""Decoding speed of the optimum decoder graph against the fused GroupQueryAttention decoder.

    python -m vlm_sudoku.tools.bench_decoder EXPORT_DIR [--prompt 280] [--tokens 90] [--provider cpu]

Both graphs decode the same number of tokens after the same prefill, driven the same plain way
(numpy feeds, cache handed back each step; the optimum row is the runtime engine's own loop, with its
embedding graph, the fused row computes its rotary angles on the host each step), so the difference
is mostly the graph: the optimum export's
shape arithmetic and unfused attention against ~35 fused nodes a layer. The fused graph is built
from the Hugging Face weights in EXPORT_DIR/hf (the packaged default model) or from EXPORT_DIR
itself. Prints a table; medians of --repeat runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from ..runtime.engine import Engine
from ..runtime.model_config import ModelConfig
from ..runtime.providers import NAMES
from ..runtime.rope import mrope_cos_sin
from .machine import describe_cpu


def _optimum_run(engine: Engine, prompt: int, tokens: int) -> tuple[float, float]:
    """(prefill s, decode s) of the export's own decoder through the engine (no stop tokens)."""
    engine.stop_ids = frozenset()
    ids = [1] * prompt
    gen = engine.generate(ids, max_new_tokens=tokens)
    return gen.prefill_s, gen.decode_s


def _fused_run(session, cfg: ModelConfig, prompt: int, tokens: int) -> tuple[float, float]:
    from ..export.gqa_decoder import (COS, INPUTS_EMBEDS, NEXT_TOKEN, SEQLENS_K, SIN, TOTAL_SEQUENCE_LENGTH,
                                      past_names, present_names)

    rng = np.random.default_rng(0)
    past_keys = [n for i in range(cfg.num_layers) for n in past_names(i)]
    outs = [NEXT_TOKEN] + [n for i in range(cfg.num_layers) for n in present_names(i)]
    past = {n: np.zeros((1, cfg.num_kv_heads, 0, cfg.head_dim), np.float32) for n in past_keys}
    length, step, timings = 0, prompt, []
    for _ in range(tokens + 1):
        t = time.perf_counter()  # host work of a step (inputs, rotary angles) counts, as in the engine's loop
        embeds = rng.normal(0, 0.02, (1, step, cfg.hidden_size)).astype(np.float32)
        positions = np.broadcast_to(np.arange(length, length + step), (3, 1, step))
        cos, sin = mrope_cos_sin(cfg, positions)
        total = length + step
        _next, *presents = session.run(outs, {INPUTS_EMBEDS: embeds, COS: cos, SIN: sin,
                                              SEQLENS_K: np.array([total - 1], np.int32),
                                              TOTAL_SEQUENCE_LENGTH: np.array(total, np.int32), **past})
        timings.append(time.perf_counter() - t)
        past = dict(zip(past_keys, presents))
        length, step = total, 1
    return timings[0], sum(timings[1:])


@click.command()
@click.argument("export_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--prompt", default=280, show_default=True, help="Prompt tokens prefilled first.")
@click.option("--tokens", default=90, show_default=True, help="Tokens decoded after the prefill.")
@click.option("--repeat", default=3, show_default=True)
@click.option("--provider", default="cpu", show_default=True)
def main(export_dir: Path, prompt: int, tokens: int, repeat: int, provider: str) -> None:
    import onnxruntime as ort

    from ..export.gqa_decoder import build_decoder

    hf = export_dir / "hf" if (export_dir / "hf" / "config.json").exists() else export_dir
    cfg = ModelConfig.from_folder(hf)
    engine = Engine(export_dir, provider=provider)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_decoder(hf, Path(tmp) / "decoder_gqa.onnx")
        session = ort.InferenceSession(str(path), providers=[NAMES[provider]])
        rows = {"optimum decoder (export)": [], "fused GQA decoder": []}
        for _ in range(repeat + 1):  # the first round warms up
            rows["optimum decoder (export)"].append(_optimum_run(engine, prompt, tokens))
            rows["fused GQA decoder"].append(_fused_run(session, cfg, prompt, tokens))
    click.echo(f"Machine: {describe_cpu()}; provider {provider}; {hf}; prompt {prompt} tokens, {tokens} decoded, "
               f"median of {repeat}")
    click.echo("| decoder graph | prefill ms | decode ms/token | decode tokens/s |")
    click.echo("|---|---:|---:|---:|")
    for name, runs in rows.items():
        prefill = statistics.median(r[0] for r in runs[1:])
        decode = statistics.median(r[1] for r in runs[1:]) / tokens
        click.echo(f"| {name} | {1000 * prefill:.1f} | {1000 * decode:.2f} | {1 / decode:.0f} |")


if __name__ == "__main__":
    main()
