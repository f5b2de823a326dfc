"""`vlm-bench`: the transformers baseline and this runtime, side by side in one run on one device.

    vlm-bench --shape qwen2-vl-2b --export EXPORT_DIR --device cuda --json-out docs/benchmarks.json
    vlm-bench --model MODEL_DIR --export EXPORT_DIR --device cpu --rules-tokens 16 --digits-tokens 8

Every row reads the same 448x448 image and answers the product's two questions with a forced number
of tokens (rules ~150, digits ~90: stop tokens are ignored), so speed does not depend on what random
weights happen to say. Rows:

- baseline: transformers ``generate`` on the Hugging Face folder, greedy with a 512 cap (sdpa and eager),
  and the old slow settings (sampling, 3 beams, 2048 cap);
- runtime: the export's graphs through ``runtime.engine.Engine`` at every precision and decoder it has
  (optimum's traced decoder, the fused GroupQueryAttention one), image prefix shared by both questions.

Each row: load s, vision ms, time to first token (vision + prefill + first token), decode tokens/s,
the whole puzzle's seconds, peak memory, and its agreement with the fp32 greedy baseline over the digits
answer's first --agree-tokens tokens (teacher-forced share, first free-running divergence); rows over
the static KV cache also get their host time per decode step by part. The bandwidth floor
(language-model weight bytes / measured copy bandwidth) comes last.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image

from .machine import describe_cpu

IMAGE_SIDE = 448


@dataclass
class Row:
    device: str
    backend: str  # "transformers" | "onnxruntime"
    setting: str  # decoding settings or graph variant
    precision: str
    cuda_graph: bool
    load_s: float
    vision_ms: float
    ttft_ms: float
    decode_tok_s: float
    puzzle_s: float
    peak_mem_gb: float
    agreement: float  # teacher-forced: share of the fp32 baseline's greedy tokens this row predicts too
    first_divergence: int | None = None  # free-running greedy: first token unlike the baseline's (None: not run)
    step_us: dict[str, float] | None = None  # static-cache rows: host time per decode step, by part


def _image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8))


def _agreement(predicted: list[int], reference: list[int] | None) -> float:
    """Share of the reference tokens a row predicts when fed the reference's own prefix (teacher forcing):
    one near-tie does not turn every later token into a disagreement, as free-running comparison does."""
    if not reference:
        return float("nan")
    return sum(a == b for a, b in zip(predicted, reference)) / len(reference)


def _first_divergence(tokens: list[int], reference: list[int] | None) -> int | None:
    """Index of the first free-running token that differs from the reference (its length: none differs)."""
    if not reference:
        return None
    return next((i for i, (a, b) in enumerate(zip(tokens, reference)) if a != b), len(reference))


def _host_peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kilobytes


# -- transformers baseline ---------------------------------------------------------------------------
def _baseline_rows(model_dir: Path, device: str, rules_n: int, digits_n: int, agree_n: int
                   ) -> tuple[list[Row], list[int]]:
    import torch
    from transformers import AutoModelForImageTextToText

    from ..runtime.preprocess import ImageSettings, num_image_tokens, preprocess
    from ..runtime.prompts import QUESTIONS, prompt_ids
    from ..runtime.tokenizer import Tokenizer

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tok = Tokenizer.from_folder(model_dir)
    settings = ImageSettings.from_json(model_dir)
    pixel_values, grid = preprocess(_image(), settings)
    n_img = num_image_tokens(grid, settings.merge_size)
    prompts = {q: prompt_ids(tok, QUESTIONS[q], [n_img]) for q in ("rules", "digits")}
    half = torch.bfloat16 if device == "cuda" else torch.float32
    variants = [("greedy, 512 cap, sdpa", "sdpa", torch.float32, {}),
                ("greedy, 512 cap, sdpa", "sdpa", half, {}),
                ("greedy, 512 cap, eager", "eager", half, {}),
                ("sampling + 3 beams (2048 cap), sdpa", "sdpa", half, {"do_sample": True, "num_beams": 3})]
    if device != "cuda":  # no half precision on the CPU: one row per setting
        variants = [v for i, v in enumerate(variants) if v[0] not in (w[0] for w in variants[:i])]
    rows, reference = [], None
    for setting, attn, dtype, extra in variants:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype,
                                                            attn_implementation=attn).to(device).eval()
        load_s = time.perf_counter() - t
        pv = torch.from_numpy(pixel_values).to(device, dtype)
        g = torch.from_numpy(grid).to(device)

        def sync() -> None:
            if device == "cuda":
                torch.cuda.synchronize()

        def run(ids: list[int], n: int) -> tuple[float, list[int]]:
            sync()
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model.generate(input_ids=torch.tensor([ids], device=device),
                                     attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=device),
                                     pixel_values=pv, image_grid_thw=g, max_new_tokens=n, min_new_tokens=n,
                                     eos_token_id=None, pad_token_id=tok.specials.endoftext,
                                     **({"do_sample": False, "num_beams": 1, "temperature": None, "top_p": None,
                                         "top_k": None} if not extra else extra))
            sync()
            return time.perf_counter() - t0, out[0, len(ids):].tolist()

        run(prompts["digits"], 2)  # warm-up
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.visual(pv, grid_thw=g)
        sync()
        vision_s = time.perf_counter() - t0
        first = statistics.median(run(prompts["digits"], 1)[0] for _ in range(5))  # as the runtime rows' TTFT
        digits_s, _digits = run(prompts["digits"], digits_n)
        rules_s, _ = run(prompts["rules"], rules_n)
        peak = torch.cuda.max_memory_allocated() / 1024**3 if device == "cuda" else _host_peak_gb()
        free = None
        if not extra:  # greedy rows: the first (fp32) one is the reference the other rows are held to
            free = run(prompts["digits"], agree_n)[1]
            reference = reference or free

        def teacher_forced(ids: list[int], target: list[int]) -> list[int]:
            """The greedy choice at each position of ``target`` given its true prefix: one forward pass."""
            full = torch.tensor([ids + target[:-1]], device=device)
            with torch.no_grad():
                logits = model(input_ids=full, attention_mask=torch.ones_like(full), pixel_values=pv,
                               image_grid_thw=g).logits[0]
            return logits[len(ids) - 1:].argmax(-1).tolist()

        rows.append(Row(device, "transformers", setting, str(dtype).replace("torch.", ""), False, load_s,
                        1000 * vision_s, 1000 * first, (digits_n - 1) / max(1e-9, digits_s - first),
                        rules_s + digits_s, peak, _agreement(teacher_forced(prompts["digits"], reference), reference),
                        _first_divergence(free, reference) if free is not None else None))
        click.echo(json.dumps(asdict(rows[-1])), err=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows, reference or []


# -- this runtime ------------------------------------------------------------------------------------
def _runtime_variants(manifest: Any, device: str) -> list[tuple[str, str, bool]]:
    """(precision, decoder, CUDA graph) of every row an export allows on ``device``.

    Not run: a fused decoder that would not run wholly on the device (``engine.fused_decoder_fits``), and
    CUDA graphs off the GPU."""
    from ..runtime import io_names
    from ..runtime.engine import fused_decoder_fits

    fused = {g.precision for g in manifest.graphs if g.name == io_names.FUSED_DECODER}
    out = []
    for precision in manifest.precisions:
        if precision != "int4":
            out.append((precision, "optimum", False))
        if precision in fused and fused_decoder_fits(device, precision):
            out.append((precision, "fused", False))
            if device == "cuda":
                out.append((precision, "fused", True))
    return out


def _runtime_rows(export_dir: Path, device: str, rules_n: int, digits_n: int, reference: list[int] | None,
                  agree_n: int) -> list[Row]:
    from ..runtime import io_names
    from ..runtime.engine import Engine, StepSeconds
    from ..runtime.manifest import Manifest
    from ..runtime.prompts import shared_prompt

    manifest = Manifest.load(export_dir)
    provider = "cuda" if device == "cuda" else "cpu"
    rows = []
    for precision, decoder, cuda_graph in _runtime_variants(manifest, device):
        gpu_before = _gpu_used_gb() if device == "cuda" else 0.0
        t = time.perf_counter()
        try:
            engine = Engine(export_dir, provider=provider, precision=precision, decoder=decoder,
                            cuda_graph=cuda_graph)
        except Exception as exc:  # an fp32-sourced int4 graph cannot take CUDA graphs: say so, keep going
            click.echo(f"skipped {precision} {decoder} (CUDA graph {cuda_graph}): {exc}", err=True)
            continue
        load_s = time.perf_counter() - t
        engine.stop_ids = frozenset()
        image = _image()

        def with_prefix():
            """The image encoded and the shared prompt prefix prefilled, as the runtime's pipeline does."""
            encoded = engine.encode_image(image)
            prompt = shared_prompt(engine.tokenizer, [encoded.num_tokens])
            return encoded, prompt, engine.prefill(prompt.prefix_ids, [encoded])[1]

        def first_token() -> float:
            t0 = time.perf_counter()
            _encoded, prompt, cache = with_prefix()
            engine.generate(prompt.suffix_ids["digits"], past=cache, max_new_tokens=1)
            return time.perf_counter() - t0

        def puzzle() -> tuple[float, float, float]:
            t0 = time.perf_counter()
            encoded, prompt, cache = with_prefix()
            engine.generate(prompt.suffix_ids["rules"], past=cache, max_new_tokens=rules_n)
            digits = engine.generate(prompt.suffix_ids["digits"], past=cache, max_new_tokens=digits_n)
            rate = (len(digits.tokens) - 1) / max(1e-9, digits.decode_s)
            return encoded.preprocess_s + encoded.vision_s, rate, time.perf_counter() - t0

        def teacher_forced(target: list[int]) -> list[int]:
            _encoded, prompt, cache = with_prefix()
            logits, cache = engine.prefill(prompt.suffix_ids["digits"], past=cache)
            predicted = []
            for token in target:
                predicted.append(int(np.argmax(logits)))
                logits, cache = engine.prefill([token], past=cache)
            return predicted

        try:
            puzzle()  # warm-up (and the CUDA graph's capture)
            ttft_s = statistics.median(first_token() for _ in range(5))  # one call is at the mercy of a stray stall
            engine.step_seconds = StepSeconds()
            vision_s, rate, puzzle_s = puzzle()
            step_us = engine.step_seconds.per_step_us() if engine.step_seconds.steps else None
            _encoded, prompt, cache = with_prefix()
            free = engine.generate(prompt.suffix_ids["digits"], past=cache, max_new_tokens=agree_n).tokens
            predicted = teacher_forced(reference) if reference else []
            peak = (_gpu_used_gb() - gpu_before) if device == "cuda" else _host_peak_gb()
            setting = f"{decoder} decoder, shared prefix" + (", static cache" if engine.static_cache else "")
            rows.append(Row(device, "onnxruntime", setting, precision, cuda_graph, load_s, 1000 * vision_s,
                            1000 * ttft_s, rate, puzzle_s, peak, _agreement(predicted, reference),
                            _first_divergence(free, reference), step_us))
        except Exception as exc:  # one variant failing (a capture refused...) must not lose the others
            click.echo(f"failed {precision} {decoder} (CUDA graph {cuda_graph}): {exc}", err=True)
        else:
            click.echo(json.dumps(asdict(rows[-1])), err=True)  # kept on stderr should a later row crash
        del engine
    return rows


def _gpu_used_gb() -> float:
    import subprocess

    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=False).stdout.split()
    return float(out[0]) / 1024 if out else float("nan")


def _floor(model_dir: Path, device: str) -> str:
    """Decode-speed ceiling: the language model's weights must be read once per token."""
    from ..runtime.model_config import ModelConfig

    cfg = ModelConfig.from_folder(model_dir)
    per_layer = (cfg.hidden_size * (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim
                 + cfg.num_heads * cfg.head_dim * cfg.hidden_size + 3 * cfg.hidden_size * cfg.intermediate_size)
    params = cfg.num_layers * per_layer + cfg.vocab_size * cfg.hidden_size
    if device != "cuda":
        return f"language model: {params / 1e6:.1f} M parameters ({2 * params / 1e9:.3f} GB in fp16)"
    import torch

    a = torch.empty(256 * 1024**2, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        b.copy_(a)
    torch.cuda.synchronize()
    bandwidth = 2 * 20 * a.numel() / (time.perf_counter() - t)  # read + write
    ceiling = bandwidth / (2 * params)
    return (f"language model: {params / 1e9:.2f} B parameters, {2 * params / 1e9:.2f} GB in fp16; copy bandwidth "
            f"{bandwidth / 1e12:.2f} TB/s: fp16 decode floor {1000 / ceiling:.2f} ms/token, {ceiling:.0f} tokens/s")


def _device_name(device: str) -> str:
    from ..runtime.gpu import detect_gpu

    gpu = detect_gpu() if device == "cuda" else None
    return gpu[0] if gpu else describe_cpu()


@click.command(name="vlm-bench")
@click.option("--model", "model_dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Hugging Face folder (default: build random weights of --shape).")
@click.option("--shape", default="qwen2-vl-2b", show_default=True, help="tools/make_random_model shape, without --model.")
@click.option("--export", "export_dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="vlm-export folder of the same model (runtime rows); without it only the baseline runs.")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--rules-tokens", default=150, show_default=True)
@click.option("--digits-tokens", default=90, show_default=True)
@click.option("--agree-tokens", default=256, show_default=True,
              help="Greedy tokens of the digits answer each row is compared on with the fp32 baseline.")
@click.option("--baseline/--no-baseline", default=True, show_default=True)
@click.option("--json-out", type=click.Path(path_type=Path), help="Write the rows (with device and command) here.")
def main(model_dir: Path | None, shape: str, export_dir: Path | None, device: str, rules_tokens: int,
         digits_tokens: int, agree_tokens: int, baseline: bool, json_out: Path | None) -> None:
    """Time the transformers baseline and this runtime on one device, in one run."""
    with tempfile.TemporaryDirectory() as tmp:
        if model_dir is None:
            from .make_random_model import make_random_model

            click.echo(f"building random weights of {shape}", err=True)
            model_dir = make_random_model(shape, Path(tmp) / "model", tokenizer=True)
        rows, reference = [], None
        if baseline:
            base, reference = _baseline_rows(model_dir, device, rules_tokens, digits_tokens, agree_tokens)
            rows += base
        if export_dir is not None:
            rows += _runtime_rows(export_dir, device, rules_tokens, digits_tokens, reference, agree_tokens)
        floor = _floor(model_dir, device)
    name = _device_name(device)
    for r in rows:  # the device by name, not "cuda": rows are compared across machines
        r.device = name
    click.echo(f"Device: {name}; {rules_tokens} + {digits_tokens} tokens a puzzle, {IMAGE_SIDE}x{IMAGE_SIDE} image")
    click.echo("| backend | setting | precision | CUDA graph | load s | vision ms | TTFT ms | decode tok/s | "
               f"puzzle s | peak mem GB | agreement ({agree_tokens}) | first divergence |")
    click.echo("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        click.echo(f"| {r.backend} | {r.setting} | {r.precision} | {'yes' if r.cuda_graph else 'no'} | {r.load_s:.2f} | "
                   f"{r.vision_ms:.1f} | {r.ttft_ms:.1f} | {r.decode_tok_s:.1f} | {r.puzzle_s:.3f} | "
                   f"{r.peak_mem_gb:.2f} | {100 * r.agreement:.1f}% | "
                   f"{'-' if r.first_divergence is None else r.first_divergence} |")
    stepped = [r for r in rows if r.step_us]
    if stepped:
        click.echo("\nHost time per decode step (static cache), microseconds:")
        click.echo("| precision | CUDA graph | inputs (cos/sin, seqlens) | embedding run | decoder run | token read | sum |")
        click.echo("|---|---|---:|---:|---:|---:|---:|")
        for r in stepped:
            u = r.step_us or {}
            click.echo(f"| {r.precision} | {'yes' if r.cuda_graph else 'no'} | {u['inputs']:.0f} | {u['embed']:.0f} | "
                       f"{u['decoder']:.0f} | {u['readback']:.0f} | {sum(u.values()):.0f} |")
    click.echo(floor)
    if json_out is not None:
        record = {"device": name, "python": platform.python_version(), "rules_tokens": rules_tokens,
                  "digits_tokens": digits_tokens, "agree_tokens": agree_tokens, "floor": floor, "rows": [asdict(r) for r in rows]}
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
