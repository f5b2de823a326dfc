"""The compact rules JSON: what the model emits and the solver reads.

Small on purpose (every byte is a decode step): ``{"size":9,"rules":[...]}``
with optional ``box`` (non-default box shape), ``regions`` (jigsaw: one string
per row, a region symbol per cell) and ``grid`` (givens, rows concatenated, so
a rules file can be a whole puzzle). Reading is strict: unknown keys, unknown
rule types and malformed cells are errors that name the offending part.
See docs/rules-format.md and solver/rules.schema.json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .constraints import rule_from_json
from .errors import PuzzleFormatError
from .grid_text import parse_values
from .puzzle import MAX_SIZE, MIN_SIZE, Puzzle, default_box
from .symbols import default_alphabet, detect_alphabet

TOP_LEVEL_KEYS = ("size", "box", "regions", "rules", "grid")


def read_rules(data: object) -> Puzzle:
    """A Puzzle (givens only if ``grid`` is present) from a parsed rules JSON object."""
    if not isinstance(data, Mapping):
        raise PuzzleFormatError(f"rules must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise PuzzleFormatError(f"rules JSON has unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise PuzzleFormatError(f"rules 'size' must be an integer {MIN_SIZE}..{MAX_SIZE}, got {size!r}")
    box = None
    if "box" in data:
        b = data["box"]
        if not (isinstance(b, list) and len(b) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in b)):
            raise PuzzleFormatError(f"rules 'box' must be [rows, cols], got {b!r}")
        box = (b[0], b[1])
    regions = None
    if "regions" in data:
        if box is not None:
            raise PuzzleFormatError("rules give both 'box' and 'regions': use one")
        regions = _read_regions(data["regions"], size)
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise PuzzleFormatError(f"rules 'rules' must be a list, got {type(rules).__name__}")
    constraints = [rule_from_json(r, size) for r in rules]
    alphabet = default_alphabet(size)
    givens = None
    if "grid" in data:
        if not isinstance(data["grid"], str):
            raise PuzzleFormatError("rules 'grid' must be a string of the rows concatenated")
        alphabet = detect_alphabet(size, data["grid"])
        givens = parse_values(data["grid"], size, alphabet)
    return Puzzle.create(size, givens, box=box, regions=regions, constraints=constraints, alphabet=alphabet)


def _read_regions(rows: object, size: int) -> list[list[int]]:
    alphabet = default_alphabet(size)
    if not (isinstance(rows, list) and len(rows) == size and all(isinstance(r, str) and len(r) == size for r in rows)):
        raise PuzzleFormatError(f"rules 'regions' must be {size} strings of {size} region symbols")
    try:
        return [[alphabet.value(ch) for ch in row] for row in rows]
    except PuzzleFormatError:
        raise PuzzleFormatError(f"rules 'regions' may only use the symbols {alphabet.symbols}") from None


def write_rules(puzzle: Puzzle, *, with_grid: bool = False) -> dict[str, Any]:
    """The compact object for ``puzzle``: only what differs from a classic grid of its size."""
    out: dict[str, Any] = {"size": puzzle.size}
    if puzzle.box is None:
        sym = default_alphabet(puzzle.size).symbol
        out["regions"] = ["".join(sym(g + 1) for g in row) for row in puzzle.regions]
    elif puzzle.box != default_box(puzzle.size):
        out["box"] = list(puzzle.box)
    out["rules"] = [c.to_rule() for c in puzzle.constraints]
    if with_grid:
        out["grid"] = puzzle.format_grid()
    return out


def dumps_rules(puzzle: Puzzle, *, with_grid: bool = False) -> str:
    """Compact text (no spaces): the exact string the model is trained to emit."""
    return json.dumps(write_rules(puzzle, with_grid=with_grid), separators=(",", ":"))


def loads_rules(text: str) -> Puzzle:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PuzzleFormatError(f"rules are not valid JSON: {exc.msg} at column {exc.colno}") from None
    return read_rules(data)
