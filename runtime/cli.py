"""``vlm-solve``: read a puzzle (from text or f-puzzles JSON) and solve it.

The command is a thin shell: it parses options, calls library code, prints,
and maps errors to the exit codes of product.md. Library code raises and
never exits.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..solver.errors import InputError, VlmSudokuError
from ..solver.fpuzzles import load_fpuzzles_file
from ..solver.grid_text import parse_grid, pretty_grid
from ..solver.puzzle import Puzzle
from ..solver.rules_json import loads_rules
from ..solver.solve import solve
from .report import EXIT_CODES, result_json, result_text, status_message

EPILOG = """\b
Examples:
  vlm-solve --grid "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........"
  vlm-solve --fpuzzles puzzle.json --json
  cat puzzle.json | vlm-solve --fpuzzles -
  vlm-solve --rules killer.json

\b
Exit status: 0 solved, 1 input error, 2 usage error, 3 no solution,
4 several solutions (two are shown), 5 model output unreadable.
"""


def _read_text(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc.__class__.__name__})") from None


def _load_puzzle(grid: str | None, fpuzzles: str | None, rules: str | None, ignore: tuple[str, ...]) -> Puzzle:
    if grid is not None:
        return parse_grid(grid)
    if fpuzzles is not None:
        return load_fpuzzles_file(fpuzzles, ignore=ignore)
    assert rules is not None
    return loads_rules(_read_text(rules))


def _emit_error(exc: BaseException, as_json: bool, code: int) -> int:
    message = str(exc) or exc.__class__.__name__
    click.echo(f"vlm-solve: error: {message}", err=True)
    if as_json:
        click.echo(json.dumps({"status": "error", "error": message, "exit_code": code}))
    return code


@click.command(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--grid", metavar="TEXT", help="Puzzle as text: 16/36/81/256 symbols, '.' or '0' for blanks.")
@click.option("--fpuzzles", metavar="FILE", help="Puzzle in f-puzzles JSON ('-' reads standard input).")
@click.option("--rules", metavar="FILE", help="Puzzle in the compact rules JSON with a 'grid' ('-' for stdin).")
@click.option("--ignore", metavar="KEY", multiple=True, help="f-puzzles key to drop knowingly (e.g. cosmetic 'line').")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the machine contract) instead of text.")
def main(grid: str | None, fpuzzles: str | None, rules: str | None, ignore: tuple[str, ...], as_json: bool) -> None:
    """Solve a Sudoku puzzle (classic or variant, 4x4 to 16x16) with SAT."""
    given = [name for name, v in (("--grid", grid), ("--fpuzzles", fpuzzles), ("--rules", rules)) if v is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --grid, --fpuzzles or --rules")
    sys.exit(_run(grid, fpuzzles, rules, ignore, as_json))


def _run(grid: str | None, fpuzzles: str | None, rules: str | None, ignore: tuple[str, ...], as_json: bool) -> int:
    try:
        puzzle = _load_puzzle(grid, fpuzzles, rules, ignore)
        result = solve(puzzle)
    except VlmSudokuError as exc:
        return _emit_error(exc, as_json, exc.exit_code)
    except Exception as exc:  # a bug of ours: one line, the traceback only on request
        if os.environ.get("VLM_SUDOKU_DEBUG"):
            raise
        return _emit_error(RuntimeError(f"internal error ({exc.__class__.__name__}: {exc}); "
                                        "set VLM_SUDOKU_DEBUG=1 for the traceback"), as_json, 1)
    payload: dict[str, Any] = result_json(puzzle, result)
    if as_json:
        click.echo(json.dumps(payload))
    else:
        click.echo("puzzle:\n" + pretty_grid(puzzle.givens, puzzle))
        click.echo(result_text(puzzle, result))
    message = status_message(result)
    if message:
        click.echo(f"vlm-solve: {message}", err=True)
    return EXIT_CODES[result.status]

if __name__ == "__main__":  # python -m vlm_sudoku.runtime.cli
    main()
