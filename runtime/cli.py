"""``vlm-solve``: read puzzles from images with the exported model (or take them as text) and solve them.

The command is a thin shell: it parses options, calls library code, prints,
and maps errors to the exit codes of product.md. Library code raises and
never exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..solver.errors import InputError, VlmSudokuError
from ..solver.fpuzzles import load_fpuzzles_file
from ..solver.grid_text import parse_grid, pretty_grid
from ..solver.puzzle import Puzzle
from ..solver.rules_json import loads_rules
from ..solver.solve import solve
from ..solver.textio import read_text
from .grid_view import ZOOMS
from .report import EXIT_CODES, check_lines, result_json, result_text, status_message

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

EPILOG = """\b
Examples:
  vlm-solve photo.jpg                       # the embedded default model
  vlm-solve photos/ --model export/ --json  # every image of a folder, one JSON object per line
  vlm-solve photo.jpg -v --provider cuda    # stage-by-stage timings, fail if CUDA is missing
  vlm-solve --grid "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........"
  vlm-solve --fpuzzles puzzle.json --json
  cat puzzle.json | vlm-solve --fpuzzles -

\b
Exit status: 0 solved, 1 input error, 2 usage error, 3 no solution,
4 several solutions (two are shown), 5 model output unreadable.
With several images: the status of the first image that did not solve.
"""


def _load_puzzle(grid: str | None, fpuzzles: str | None, rules: str | None, ignore: tuple[str, ...]) -> Puzzle:
    if grid is not None:
        return parse_grid(grid)
    if fpuzzles is not None:
        return load_fpuzzles_file(fpuzzles, ignore=ignore)
    assert rules is not None
    return loads_rules(read_text(rules))


def _emit_error(exc: BaseException, as_json: bool, code: int, extra: dict[str, Any] | None = None) -> int:
    message = str(exc) or exc.__class__.__name__
    click.echo(f"vlm-solve: error: {message}", err=True)
    if as_json:
        click.echo(json.dumps({**(extra or {}), "status": "error", "error": message, "exit_code": code}))
    return code


def _internal(exc: Exception) -> RuntimeError:
    if os.environ.get("VLM_SUDOKU_DEBUG"):
        raise exc
    return RuntimeError(f"internal error ({exc.__class__.__name__}: {exc}); set VLM_SUDOKU_DEBUG=1 for the traceback")


def expand_images(paths: tuple[str, ...]) -> list[Path]:
    """Files as given; folders become their image files in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not files:
                raise InputError(f"{p}: no image files in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out += files
        else:
            out.append(p)
    return out


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("images", nargs=-1, metavar="[IMAGE|FOLDER]...")
@click.option("--model", "model_dir", metavar="EXPORT_DIR", help="Export folder from vlm-export (default: the embedded model).")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]), default="auto", show_default=True,
              help="Execution provider; naming one makes it strict (an error instead of a fallback).")
@click.option("--backend", type=click.Choice(["onnx", "torch"]), default="onnx", show_default=True,
              help="torch: transformers' generate on a Hugging Face folder (the baseline; needs the export extra).")
@click.option("--max-new-tokens", type=click.IntRange(1, 8192), default=512, show_default=True,
              help="Cap on tokens per answer.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads for onnxruntime.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int4"]), default=None,
              help="Graphs to run (default: fp16 on a GPU when exported, else fp32); int4 needs an export made "
                   "with --precision int4 --fused-decoder.")
@click.option("--cuda-graph/--no-cuda-graph", "cuda_graph", default=None,
              help="Replay each decode step as a CUDA graph (default: on with the CUDA provider and an fp16 or "
                   "int4 fused decoder).")
@click.option("--grid", metavar="TEXT", help="Puzzle as text: 16/36/81/256 symbols, '.' or '0' for blanks.")
@click.option("--fpuzzles", metavar="FILE", help="Puzzle in f-puzzles JSON ('-' reads standard input).")
@click.option("--rules", metavar="FILE", help="Puzzle in the compact rules JSON with a 'grid' ('-' for stdin).")
@click.option("--ignore", metavar="KEY", multiple=True, help="f-puzzles key to drop knowingly (e.g. cosmetic 'line').")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per puzzle (the machine contract).")
@click.option("-v", "--verbose", is_flag=True, help="Report each stage on stderr as it happens, with its time.")
@click.option("--no-reading-check", "no_reading_check", is_flag=True,
              help="Report the model's reading as is. By default a reading with no solution or several is checked: "
                   "the most likely change of up to 3 doubtful digits (the model's own next choices) that gives "
                   "exactly one solution is taken, and every change is reported; a reading still with no solution "
                   "whose digits have exactly one without one of the rule types the model named is solved without "
                   "it, and that is reported too.")
@click.option("--views", type=click.IntRange(1, len(ZOOMS)), default=len(ZOOMS), show_default=True,
              help="Grid views the digits (and a model's marks maps) are read from, each framed a little tighter; "
                   "the digits taken are those the views believe jointly, a map's codes those most views draw. 1 is "
                   "fastest (fewer answers to decode).")
def main(images: tuple[str, ...], model_dir: str | None, provider: str, backend: str, max_new_tokens: int,
         threads: int | None, precision: str | None, cuda_graph: bool | None,
         grid: str | None, fpuzzles: str | None, rules: str | None, ignore: tuple[str, ...], as_json: bool,
         verbose: bool, no_reading_check: bool, views: int) -> None:
    """Read Sudoku puzzles from images with a vision-language model, or take them as text, and solve them."""
    given = [name for name, v in (("--grid", grid), ("--fpuzzles", fpuzzles), ("--rules", rules)) if v is not None]
    if images and given:
        raise click.UsageError(f"give images or {given[0]}, not both")
    if len(given) > 1:
        raise click.UsageError("give only one of --grid, --fpuzzles or --rules")
    if not images and not given:
        raise click.UsageError("give an image (or a folder of images), or a puzzle with --grid, --fpuzzles or --rules")
    if given:
        sys.exit(_run_text(grid, fpuzzles, rules, ignore, as_json))
    sys.exit(_run_images(images, model_dir, provider, backend, max_new_tokens, threads, as_json, verbose, precision,
                         cuda_graph=cuda_graph, check_reading=not no_reading_check, views=views))


def _run_text(grid: str | None, fpuzzles: str | None, rules: str | None, ignore: tuple[str, ...], as_json: bool) -> int:
    try:
        puzzle = _load_puzzle(grid, fpuzzles, rules, ignore)
        result = solve(puzzle)
    except VlmSudokuError as exc:
        return _emit_error(exc, as_json, exc.exit_code)
    except Exception as exc:  # a bug of ours: one line, the traceback only on request
        return _emit_error(_internal(exc), as_json, 1)
    if as_json:
        click.echo(json.dumps(result_json(puzzle, result)))
    else:
        click.echo("puzzle:\n" + pretty_grid(puzzle.givens, puzzle))
        click.echo(result_text(puzzle, result))
    message = status_message(result)
    if message:
        click.echo(f"vlm-solve: {message}", err=True)
    return EXIT_CODES[result.status]


class _Stages:
    """Numbered stage lines on stderr (-v), so a slow stage is visible at a glance."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.n = 0

    def line(self, text: str) -> None:
        if self.enabled:
            self.n += 1
            click.echo(f"[{self.n}] {text}", err=True)

    def __call__(self, name: str, info: dict[str, Any]) -> None:
        if name == "grid":
            where = ("corners " + " ".join(f"({x:.0f},{y:.0f})" for x, y in info["corners"]) if info["found"]
                     else "not found, reading the whole picture")
            self.line(f"grid view: {where} in {1000 * info['grid_view']:.0f} ms")
        elif name == "image":
            w, h = info["size"]
            rh, rw = info["resized"]
            context = ""
            if "context_tokens" in info:
                ch, cw = info["context_resized"]
                context = f" + whole picture {cw}x{ch}, {info['context_tokens']} tokens"
            self.line(f"image {w}x{h} -> {rw}x{rh}, {info['image_tokens']} image tokens{context}: preprocess "
                      f"{1000 * info['preprocess']:.0f} ms, vision {1000 * info['vision']:.0f} ms, prefix prefill "
                      f"{info['prefix_tokens']} tokens {1000 * info['prefix_prefill']:.0f} ms")
        elif name in ("rules", "digits") or name.startswith("map:"):
            self.line(f"{name}: {info['tokens']} tokens, prefill {1000 * info['prefill']:.0f} ms, decode "
                      f"{info['decode']:.2f} s ({info['tokens_per_s']:.0f} tokens/s)"
                      + ("" if info["stopped"] else " - hit --max-new-tokens"))
        elif name == "views":
            maps = f" and the {', '.join(info['maps'])} map{'s' if len(info['maps']) > 1 else ''}" if info["maps"] else ""
            self.line(f"digits{maps} from {info['views'] - 1} more grid views in {1000 * info['more_views']:.0f} ms")
        elif name == "clues":
            self.line(f"clue crops: {info['clues']} printed numbers read again in {1000 * info['seconds']:.0f} ms")
        elif name == "lines":
            said = (", ".join(info["stated"]) if info["stated"]
                    else "none of the rules given in words only (the rules answer's stand)")
            self.line(f"text crops: {info['lines']} lines of words read in {1000 * info['seconds']:.0f} ms: {said}")
        elif name == "solve":
            views = f" (digits of {info['views']} views combined)" if info["views"] > 1 else ""
            self.line(f"solve: {info['status']} in {1000 * info['solve']:.1f} ms{views}")
        elif name == "check":
            check = info["check"]
            done = (", ".join(f"{c.where} {c.read}->{c.taken}" for c in check.corrections) if check.corrected
                    else "no correction")
            self.line(f"reading check: {check.candidates} candidates in {1000 * check.seconds:.0f} ms: {done}"
                      + (f" -> {check.result.status}" if check.corrected else ""))
        elif name == "rules_check":
            self.line(info["rules_check"].line())


def default_model_dir() -> Path:
    """The embedded default model's export, shipped inside the package."""
    return Path(__file__).resolve().parent / "default_model"


def _load_pipeline(backend: str, model_dir: str | None, provider: str, threads: int | None, max_new_tokens: int,
                   precision: str | None = None, check_reading: bool = True, cuda_graph: bool | None = None,
                   views: int = len(ZOOMS)):
    from .pipeline import Pipeline

    if backend == "torch":
        try:
            from ..export.torch_backend import TorchPipeline
        except ImportError as exc:
            raise InputError(f"--backend torch needs the export extra (pip install 'vlm-sudoku[export]'): {exc}") from None
        folder = Path(model_dir) if model_dir else default_model_dir() / "hf"
        return folder, TorchPipeline(folder, max_new_tokens=max_new_tokens)
    folder = Path(model_dir) if model_dir else default_model_dir()
    if model_dir is None and not (folder / "manifest.json").exists():
        raise InputError("no --model given and the embedded default model is not installed here; "
                         "pass an export folder made by vlm-export")
    return folder, Pipeline.load(folder, provider=provider, precision=precision, threads=threads,
                                 max_new_tokens=max_new_tokens, check_reading=check_reading, cuda_graph=cuda_graph,
                                 views=views)


def _run_images(images: tuple[str, ...], model_dir: str | None, provider: str, backend: str, max_new_tokens: int,
                threads: int | None, as_json: bool, verbose: bool, precision: str | None = None,
                check_reading: bool = True, cuda_graph: bool | None = None, views: int = len(ZOOMS)) -> int:
    from .pipeline import outcome_json

    stages = _Stages(verbose)
    try:
        paths = expand_images(images)
        folder, pipeline = _load_pipeline(backend, model_dir, provider, threads, max_new_tokens, precision,
                                          check_reading, cuda_graph, views)
        load_s = pipeline.load_s
    except VlmSudokuError as exc:
        return _emit_error(exc, as_json, exc.exit_code)
    except Exception as exc:
        return _emit_error(_internal(exc), as_json, 1)
    notes = "; ".join(pipeline.notes)
    click.echo(f"vlm-solve: running on {pipeline.provider_name} ({pipeline.precision})" + (f": {notes}" if notes else ""),
               err=True)
    stages.line(f"model load: {load_s:.2f} s ({folder}, {pipeline.precision})")
    if backend == "torch" and (check_reading or views > 1):  # transformers' generate gives tokens, not choices
        click.echo("vlm-solve: one grid view and no reading check with --backend torch (both need the onnx "
                   "backend's per-token alternatives): the model's reading is reported as is", err=True)
    first_failure = 0
    for path in paths:
        stages.line(f"image {path}")
        try:
            out = pipeline.solve_path(path, on_stage=stages)
        except Exception as exc:
            return _emit_error(_internal(exc), as_json, 1, {"image": str(path)})
        out.timings = {"load": load_s, **out.timings}
        code = out.exit_code
        if as_json:
            click.echo(json.dumps(outcome_json(out)))
        else:
            _print_outcome(out)
        viewed = out.reading.viewed if out.reading is not None else None
        if viewed is not None and viewed.corners is None:  # a grid-view model reading what it was not trained on
            click.echo(f"vlm-solve: {path}: no grid found in the picture: the model read the whole picture as if it "
                       "were the grid, so its reading is unlikely to be right", err=True)
        for problem in out.map_problems:  # a map left unused, or standing in for a cut rules answer
            click.echo(f"vlm-solve: {path}: {problem}", err=True)
        if out.check is not None and out.check.corrected:  # said on stderr too, as a JSON run shows nothing else
            changes = ", ".join(f"{c.where} as {c.taken} (read {c.read})" for c in out.corrections)
            click.echo(f"vlm-solve: {path}: the reading check took {changes}: {out.check.why()}", err=True)
        if out.rules_check is not None:
            click.echo(f"vlm-solve: {path}: {out.rules_check.line()}", err=True)
        if out.error is not None:
            click.echo(f"vlm-solve: error: {path}: {out.error}", err=True)
        elif out.result is not None and status_message(out.result):
            click.echo(f"vlm-solve: {path}: {status_message(out.result)}", err=True)
        first_failure = first_failure or code
        load_s = 0.0  # counted once
    return first_failure


def _print_outcome(out) -> None:
    click.echo(f"== {out.image}")
    if out.puzzle is not None:
        rules = [c.rule for c in out.puzzle.constraints]
        kind = "jigsaw " if out.puzzle.box is None else ""
        views = f" (digits from {out.views} grid views)" if out.views > 1 else ""
        click.echo(f"read: {out.puzzle.size}x{out.puzzle.size} {kind}sudoku"
                   + (f" with {', '.join(dict.fromkeys(rules))}" if rules else "") + views)
        read = out.read_puzzle  # the model's reading, as given
        click.echo(pretty_grid(read.givens, read))
    if out.check is not None:
        for line in check_lines(out.check):
            click.echo(line)
    if out.rules_check is not None:
        click.echo(out.rules_check.line())
    if out.result is not None and out.puzzle is not None:
        click.echo(result_text(out.puzzle, out.result))
    t = out.timings
    parts = [f"{k} {t[k]:.2f} s" if k == "load" else f"{k} {1000 * t[k]:.0f} ms"
             for k in ("load", "grid_view", "preprocess", "vision", "prefix_prefill") if k in t and t[k]]
    for q in ("rules", "digits", *sorted(k.removesuffix("_tokens") for k in t if k.startswith("map:")
                                         and k.endswith("_tokens"))):
        if f"{q}_tokens" in t:
            parts.append(f"{q} {int(t[f'{q}_tokens'])} tokens {t[f'{q}_prefill'] + t[f'{q}_decode']:.2f} s "
                         f"({t[f'{q}_tokens_per_s']:.0f} tokens/s)")
    if "more_views" in t:
        parts.append(f"more views {1000 * t['more_views']:.0f} ms")
    if "clues" in t:
        parts.append(f"clue crops {1000 * t['clues']:.0f} ms")
    if "lines" in t:
        parts.append(f"text crops {1000 * t['lines']:.0f} ms")
    if "solve" in t:
        parts.append(f"parse+solve {1000 * (t.get('parse', 0) + t['solve']):.1f} ms")
    if "reading_check" in t:
        parts.append(f"reading check {1000 * t['reading_check']:.0f} ms")
    click.echo("times: " + " | ".join(parts))


if __name__ == "__main__":  # python -m vlm_sudoku.runtime.cli
    main()
