"""``vlm-export``: a Qwen2-VL / Qwen2.5-VL folder becomes an ONNX export folder.

The command stays thin: it parses options, calls ``export.exporter`` or
``export.parity``, prints a summary, and turns every ``VlmSudokuError`` into
one line on stderr with the error's exit status. No traceback reaches the
user; set ``VLM_SUDOKU_DEBUG=1`` to see one for unexpected failures.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click

from ..runtime.manifest import Manifest, ParityReport
from ..solver.errors import InputError, VlmSudokuError

PROG = "vlm-export"
# The embedded default model, once trained, lives in the repository (see product.md).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "default"

EPILOG = """\b
Examples:
  vlm-export ./Qwen2-VL-2B-Instruct -o ./qwen2vl-onnx
  vlm-export ./model -o ./export --precision fp32 --precision fp16
  vlm-export ./model -o ./export --check-only --check-tokens 64
  vlm-export ./model -o ./export --precision fp16 --tensorrt   (GPU with TensorRT)
  vlm-export ./model -o ./export --precision fp16 --fused-decoder --fused-vision
"""


def _quiet_libraries() -> None:
    """Tracer and deprecation warnings from torch/transformers/optimum are noise to a CLI user."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # "Loading checkpoint shards" bars: transformers reads this when it is first imported (lazily, later).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("transformers", "optimum", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
    except ImportError:
        pass


def _parity_line(p: ParityReport) -> str:
    tokens = f"{p.tokens_equal}/{p.max_new_tokens} greedy tokens equal"
    if p.first_divergence is not None and p.top2_margin_at_divergence is not None:
        tokens += f" (first divergence at {p.first_divergence}, top-2 margin {p.top2_margin_at_divergence:.2e})"
    verdict = "ok" if p.passed else "FAILED"
    return f"{p.precision} parity {verdict}: prefill max |dlogit| {p.prefill_max_abs_diff:.2e}, {tokens}"


def _summary(manifest: Manifest, reused: bool, out: Path) -> list[str]:
    lines = []
    what = "reused" if reused else "exported"
    stats = manifest.stats
    cost = f" in {stats['seconds']:.1f} s, peak {stats['peak_rss_mb'] / 1024:.2f} GB" if stats and not reused else ""
    lines.append(f"{what} {manifest.architecture} ({', '.join(manifest.precisions)}) to {out}{cost}")
    lines += [_parity_line(p) for p in manifest.parity]
    if manifest.tensorrt:
        t = manifest.tensorrt
        lines.append(f"TensorRT {t.tensorrt_version} engines for {t.gpu_name} (sm {t.compute_capability})")
    return lines


@click.command(name=PROG, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", "export_dir", required=True, type=click.Path(path_type=Path),
              help="Export folder to write (or to reuse when it already holds this export).")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(["fp32", "fp16", "int4"]),
              default=("fp32",), show_default=True,
              help="Graph precision; repeat for several. int4: the fused decoder's weights only (needs "
                   "--fused-decoder and fp32 or fp16 for the other graphs; made from fp16 when given, which "
                   "is what a GPU runs).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Device PyTorch traces on.")
@click.option("--tensorrt", is_flag=True, help="Also build TensorRT engines for this GPU (needs TensorRT).")
@click.option("--fused-decoder", is_flag=True,
              help="Also write decoder_gqa: the decoder rebuilt with fused operators (GroupQueryAttention); "
                   "the runtime prefers it (on a GPU in fp16 or int4).")
@click.option("--fused-vision", is_flag=True,
              help="Also write vision_fused: the Qwen2-VL vision encoder rebuilt with fused operators "
                   "(MultiHeadAttention, RotaryEmbedding, SkipLayerNormalization); the runtime prefers it. "
                   "Not for Qwen2.5-VL.")
@click.option("--opset", type=click.IntRange(17, 21), default=18, show_default=True, help="ONNX opset.")
@click.option("--check-tokens", type=click.IntRange(min=0), default=16, show_default=True,
              help="Greedy tokens compared with PyTorch at export time (0: no check).")
@click.option("--check-only", is_flag=True, help="Only compare an existing export with PyTorch, write nothing.")
@click.option("--force", is_flag=True, help="Re-export, replacing whatever EXPORT_DIR holds (another model, other files).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest (or parity reports) as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.pass_context
def cli(
    ctx: click.Context,
    model_dir: Path | None,
    export_dir: Path,
    precisions: tuple[str, ...],
    device: str,
    tensorrt: bool,
    fused_decoder: bool,
    fused_vision: bool,
    opset: int,
    check_tokens: int,
    check_only: bool,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Export a Qwen2-VL / Qwen2.5-VL model folder to ONNX (vision_encoder, embed_tokens,
    decoder_model_merged) with a manifest, and check it against PyTorch."""
    _quiet_libraries()
    start = time.monotonic()

    def log(msg: str) -> None:
        if not quiet:
            click.echo(f"{PROG}: [{time.monotonic() - start:7.1f} s] {msg}", err=True)

    try:
        if model_dir is None:
            if not (DEFAULT_MODEL_DIR / "config.json").is_file():
                raise InputError("no MODEL_DIR given and no embedded default model is bundled with this installation")
            model_dir = DEFAULT_MODEL_DIR
        if check_only:
            code = _check_only(model_dir, export_dir, precisions, check_tokens, as_json, log)
            ctx.exit(code)
        from .exporter import ExportOptions, export_model

        try:
            options = ExportOptions(
                precisions=tuple(dict.fromkeys(precisions)), opset=opset, device=device, tensorrt=tensorrt,
                fused_decoder=fused_decoder, fused_vision=fused_vision, check_tokens=check_tokens,
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        result = export_model(model_dir, export_dir, options, force=force, log=log)
        if as_json:
            click.echo(json.dumps({"reused": result.reused, **result.manifest.to_dict()}, indent=2))
        else:
            for line in _summary(result.manifest, result.reused, result.export_dir):
                click.echo(line)
        for p in result.manifest.parity:
            if not p.passed:
                click.echo(f"{PROG}: warning: {_parity_line(p)}", err=True)
    except VlmSudokuError as exc:
        click.echo(f"{PROG}: error: {exc}", err=True)
        ctx.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(f"{PROG}: interrupted; nothing was left looking like a complete export", err=True)
        ctx.exit(130)
    except (click.exceptions.Exit, click.ClickException):
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        if os.environ.get("VLM_SUDOKU_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"{PROG}: internal error: {type(exc).__name__}: {first} (VLM_SUDOKU_DEBUG=1 shows more)", err=True)
        ctx.exit(1)


def _check_only(
    model_dir: Path, export_dir: Path, precisions: tuple[str, ...], tokens: int, as_json: bool, log: Any
) -> int:
    from .parity import check_export
    from .source import inspect_model_dir

    source = inspect_model_dir(model_dir)
    manifest = Manifest.load(export_dir)
    manifest.check_source(source.weights_sha256, what=str(model_dir))
    wanted = [p for p in precisions if p in manifest.precisions] or manifest.precisions
    log(f"comparing {', '.join(wanted)} graphs with PyTorch over {tokens or 16} tokens")
    reports = check_export(export_dir, wanted, max_new_tokens=tokens or 16, model_dir=model_dir)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in reports], indent=2))
    else:
        for r in reports:
            click.echo(_parity_line(r))
    return 0 if all(r.passed for r in reports) else 1


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``vlm-export``)."""
    cli.main(args=argv, prog_name=PROG)


if __name__ == "__main__":
    main(sys.argv[1:])
