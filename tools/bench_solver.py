"""Solver benchmark: milliseconds per puzzle (solve + uniqueness check) per data set.

    python -m vlm_sudoku.tools.bench_solver [--data ../shared/data/puzzles] [--variants 20] [--update-docs]

Prints a table; with --update-docs it also rewrites the solver section of
docs/benchmarks.md (between the bench_solver markers) with the table, the
command and the machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from ..solver import SOLVED, parse_grid, read_fpuzzles, solve
from ..solver.errors import UnknownConstraint
from ..solver.generate import GENERATED_KINDS, generate
from ..solver.puzzle import Puzzle
from .machine import describe_cpu

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "puzzles"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- bench_solver:start -->", "<!-- bench_solver:end -->"


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def datasets(data: Path, variants: int) -> dict[str, Callable[[], list[Puzzle]]]:
    """Name -> loader; loaders run before timing so parsing is not measured."""
    sets: dict[str, Callable[[], list[Puzzle]]] = {
        "9x9 magictour top1465": lambda: [parse_grid(s) for s in _lines(data / "classic_9x9_magictour_top1465.txt")],
        "4x4 (50)": lambda: [parse_grid(s.split(":")[0]) for s in _lines(data / "classic_4x4_with_solutions.txt")],
        "16x16 (50)": lambda: [parse_grid(s.split(":")[0]) for s in _lines(data / "classic_16x16_with_solutions.txt")],
        "16x16 cases (5)": lambda: [parse_grid(s.split(":")[2]) for s in _lines(data / "classic_16x16_cases.txt")],
        "f-puzzles examples": lambda: list(_fpuzzles(data / "fpuzzles_examples.jsonl")),
        "f-puzzles killer examples": lambda: [p for p in _fpuzzles(data / "fpuzzles_examples.jsonl")
                                              if any(c.rule == "killer" for c in p.constraints)],
    }
    for kind in GENERATED_KINDS:
        sets[f"generated 9x9 {kind} ({variants})"] = lambda k=kind: [generate(9, [k], seed=s)[0] for s in range(variants)]
    sets[f"generated 9x9 jigsaw ({variants})"] = lambda: [generate(9, seed=s, jigsaw=True)[0] for s in range(variants)]
    return sets


def _fpuzzles(path: Path) -> Iterable[Puzzle]:
    for line in _lines(path):
        try:
            yield read_fpuzzles(json.loads(line))
        except UnknownConstraint:
            continue  # rules only stated in text: not a solver benchmark


def time_set(puzzles: list[Puzzle], repeat: int) -> tuple[list[float], dict[str, int]]:
    times, statuses = [], {}
    for p in puzzles:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            result = solve(p)
            best = min(best, time.perf_counter() - t)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        times.append(best * 1000)
    return times, statuses


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEFAULT_DATA,
              show_default=True, help="Folder with the puzzle collections.")
@click.option("--variants", default=20, show_default=True, help="Generated puzzles per variant kind.")
@click.option("--repeat", default=1, show_default=True, help="Runs per puzzle (the fastest counts).")
@click.option("--only", default=None, help="Only data sets whose name contains this text.")
@click.option("--update-docs", is_flag=True, help="Rewrite the solver section of docs/benchmarks.md.")
def main(data: Path, variants: int, repeat: int, only: str | None, update_docs: bool) -> None:
    """Median and max milliseconds per puzzle (solve + uniqueness) per data set."""
    rows = []
    sets = {k: v for k, v in datasets(data, variants).items() if only is None or only in k}
    with click.progressbar(sets.items(), label="solving", file=sys.stderr, item_show_func=lambda i: i and i[0]) as bar:
        for name, load in bar:
            puzzles = load()
            times, statuses = time_set(puzzles, repeat)
            rows.append((name, len(puzzles), statistics.median(times), max(times),
                         ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))))
    table = ["| data set | puzzles | median ms | max ms | results |", "|---|---:|---:|---:|---|"]
    table += [f"| {n} | {k} | {med:.2f} | {mx:.2f} | {st} |" for n, k, med, mx, st in rows]
    text = "\n".join(table)
    click.echo(text)
    if update_docs:
        cmd = "python -m vlm_sudoku.tools.bench_solver" + (f" --variants {variants}" if variants != 20 else "")
        section = (f"{START}\nMachine: {describe_cpu()}; {time.strftime('%Y-%m-%d')}.\n"
                   f"Command: `{cmd} --update-docs`\n\n{text}\n{END}")
        doc = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
        if START in doc:
            doc = doc[: doc.index(START)] + section + doc[doc.index(END) + len(END):]
        else:
            doc += f"\n## Solver (solve + uniqueness check)\n\n{section}\n"
        DOCS.write_text(doc)


if __name__ == "__main__":
    main()
