"""The model's two answers -> a Puzzle: tolerant of chatter and code fences, strict on content.

A model may wrap its JSON in ```json fences or a sentence; that is fine. A
rule the solver does not know, a row of the wrong length or a digit outside
the grid's alphabet is not: it raises ModelOutputError (exit status 5) with
the offending text quoted, never a silently repaired puzzle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..solver.constraints.base import RULES, rule_from_json
from ..solver.errors import ModelOutputError, PuzzleFormatError
from ..solver.grid_text import GRID_SYMBOL, RULE_LINE
from ..solver.puzzle import Grid, Puzzle
from ..solver.rules_json import read_rules
from ..solver.symbols import default_alphabet

_FENCE = re.compile(r"```[a-zA-Z]*\n?(.*?)```", re.S)


def quote(text: str, limit: int = 160) -> str:
    """The model's text for an error message: one line, cut to ``limit`` characters."""
    flat = text.replace("\n", "\\n")
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _unfenced(text: str) -> str:
    return _unfenced_at(text)[0]


def _unfenced_at(text: str) -> tuple[str, int]:
    """The inside of the first code fence (or the whole text) and where it starts in ``text``."""
    m = _FENCE.search(text)
    return (m.group(1), m.start(1)) if m else (text, 0)


def _structure(body: str, start: int) -> Iterator[tuple[int, str]]:
    """Each bracket or brace of ``body`` from ``start`` on that is not inside a JSON string, with its index."""
    in_string, escaped = False, False
    for i in range(start, len(body)):
        ch = body[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{}[]":
            yield i, ch


def extract_json_object(text: str) -> dict[str, Any]:
    """The first balanced ``{...}`` in ``text`` (inside a code fence if there is one)."""
    body = _unfenced(text)
    start = body.find("{")
    if start < 0:
        raise ModelOutputError(f"the model's rules answer holds no JSON object: {quote(text)}")
    depth = 0
    for i, ch in _structure(body, start):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                try:
                    obj = json.loads(body[start : i + 1])
                except json.JSONDecodeError as exc:
                    raise ModelOutputError(f"the model's rules answer is not valid JSON ({exc.msg}): {quote(text)}") from None
                return obj
    raise ModelOutputError(f"the model's rules answer breaks off inside its JSON object: {quote(text)}")


_RULES_LIST = re.compile(r'"rules"\s*:\s*\[')
_TYPE = re.compile(r'"type"\s*:\s*"([a-z_+-]+)"')


@dataclass(frozen=True)
class PartRules:
    """What a rules answer still says where part of it cannot be read, for marks maps to stand in for that part
    (marks_map.rules_with_maps)."""

    puzzle: Puzzle  # the size and every rule (and the regions) that read
    unread: tuple[str, ...]  # the rule types (or "regions") of what did not read, for their layers' maps
    why: str  # what the answer did, as a problems line says it: "breaks off inside its kropki rules"
    cut: bool  # the answer broke off, so rules it would have listed after the break are missing too


def cut_rules_answer(text: str) -> PartRules | None:
    """The rules a rules answer lists whole before it breaks off, and the type it broke off in; None where it
    does not break off inside its list of rules, or what comes before the break is not a puzzle.

    Why: a rules answer lists every dot, cage and line, and the list of a puzzle with dozens of dots passes
    the 512-token cap; a marks map holds all of one layer in a token a cell, so the map of the layer the answer
    broke off in can stand in for that layer's cut list."""
    body = _unfenced(text)
    start = body.find("{")
    found = _RULES_LIST.search(body, max(start, 0))
    if start < 0 or found is None:
        return None
    depth, whole_to = 0, found.end()
    for i, ch in _structure(body, found.end()):
        if ch in "{[":
            depth += 1
        elif depth == 0:  # the list closed: the answer breaks off after its rules, not inside them
            return None
        else:
            depth -= 1
            if depth == 0:
                whole_to = i + 1
    head = body[start:whole_to].rstrip().rstrip(",")
    try:
        obj = json.loads(head + "]}")
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    obj, regions_error = _without_invalid_regions(obj)
    try:
        puzzle = read_rules(obj)
    except PuzzleFormatError:
        return None
    broken = _TYPE.search(body, whole_to)
    broken_type = broken.group(1) if broken is not None else puzzle.constraints[-1].rule if puzzle.constraints else None
    if broken_type is None:
        return None
    why = f"breaks off inside its {broken_type} rules"
    if regions_error:
        return PartRules(puzzle, ("regions", broken_type), f"{why}, and its regions are not valid ({regions_error})",
                         cut=True)
    return PartRules(puzzle, (broken_type,), why, cut=True)


def _without_invalid_regions(obj: dict) -> tuple[dict, str]:
    """``obj`` as it is and "", or, where its regions are not valid, ``obj`` without them and why not.

    Why: a jigsaw's regions come first in a rules answer; where they are off by a cell or two and the list of
    rules after them is cut or invalid too, the regions map can stand in for them beside that layer's map."""
    if "regions" not in obj:
        return obj, ""
    try:
        read_rules({k: v for k, v in obj.items() if k != "rules"})
    except PuzzleFormatError as exc:
        return {k: v for k, v in obj.items() if k != "regions"}, str(exc)
    return obj, ""


def invalid_rules_answer(text: str) -> PartRules | None:
    """A whole rules answer with the rules (or the regions) that are not valid left out, and their types; None
    where it is no JSON object of a puzzle's size and rules, or where nothing in it is invalid.

    Why: the model names a line's type and then walks its cells wrongly (a thermometer through one cell twice,
    a step that skips a cell). Where that layer has a marks map, the map replaces the layer's cells anyway, so
    such cells need not cost the whole reading."""
    try:
        obj = extract_json_object(text)
        rules = obj.get("rules", [])
        size = read_rules({k: v for k, v in obj.items() if k in ("size", "box")}).size
    except (ModelOutputError, PuzzleFormatError):
        return None
    if "grid" in obj or not isinstance(rules, list):
        return None
    kept, unread, first_error = [], [], ""
    for entry in rules:
        try:
            rule_from_json(entry, size)
        except PuzzleFormatError as exc:
            kind = entry.get("type") if isinstance(entry, Mapping) else None
            if not isinstance(kind, str) or kind not in RULES:
                return None  # no type a map could stand for
            unread.append(RULES[kind].rule)
            first_error = first_error or str(exc)
        else:
            kept.append(entry)
    rest, regions_error = _without_invalid_regions({**obj, "rules": kept})
    if regions_error:
        unread.insert(0, "regions")
        first_error = first_error or regions_error
    if not unread:
        return None
    try:
        puzzle = read_rules(rest)
    except PuzzleFormatError:
        return None
    names = list(dict.fromkeys(unread))
    return PartRules(puzzle, tuple(names), f"gives {'/'.join(names)} rules that are not valid ({first_error})",
                     cut=False)


def partial_rules_answer(text: str) -> PartRules | None:
    """What can still be read of a rules answer that does not parse: a cut list's whole rules, or a whole
    answer's valid ones (cut_rules_answer, invalid_rules_answer)."""
    return cut_rules_answer(text) or invalid_rules_answer(text)


def parse_rules_answer(text: str) -> Puzzle:
    """Rules (no givens) from the model's rules answer."""
    obj = extract_json_object(text)
    if "grid" in obj:
        raise ModelOutputError(f"the model's rules answer carries a 'grid'; digits come from the digits answer: {quote(text)}")
    try:
        return read_rules(obj)
    except PuzzleFormatError as exc:
        raise ModelOutputError(f"the model's rules are not valid ({exc}): {quote(text)}") from None


@dataclass(frozen=True)
class DigitsAnswer:
    """The givens of a digits answer and where each came from: ``offsets[r][c]`` is the index in the answer's
    text of the character read for cell (r, c), so a reader can weigh that character's token afresh."""

    grid: Grid
    offsets: tuple[tuple[int, ...], ...]


def locate_digits_answer(text: str, size: int) -> DigitsAnswer:
    """The givens from the model's digits answer (``size`` rows of ``size`` symbols, '.' blank), with each
    cell's character offset in ``text``.

    Row lines may carry spaces or '|' separators and ruled lines between boxes
    are skipped; any other line (chatter) before or after the rows is ignored,
    but the rows themselves must be consecutive and complete.
    """
    alphabet = default_alphabet(size)
    allowed = set(alphabet.symbols) | set(alphabet.blanks)
    body, base = _unfenced_at(text)
    rows: list[list[tuple[int, str]]] = []  # per row: (offset in text, symbol) of each cell
    for line, at in _lines(body, base):
        if RULE_LINE.match(line):
            if rows and not line.strip():
                break  # a blank line ends the block of rows
            continue
        # a line's symbols as clean_grid_text keeps them (whitespace and '|' dropped), with their offsets
        cells = [(at + k.start(), k.group().upper()) for k in GRID_SYMBOL.finditer(line)]
        if cells and all(ch in allowed for _, ch in cells):
            if len(cells) != size:
                raise ModelOutputError(
                    f"row {len(rows) + 1} of the model's digits answer has {len(cells)} symbols, "
                    f"not {size}: {quote(text)}"
                )
            rows.append(cells)
            if len(rows) == size:
                break
        elif rows:
            break  # chatter after rows started: the block ended early
    if len(rows) != size:
        raise ModelOutputError(
            f"the model's digits answer has {len(rows)} complete row(s) of {size} symbols for a {size}x{size} grid: {quote(text)}"
        )
    return DigitsAnswer(tuple(tuple(alphabet.value(ch) for _, ch in row) for row in rows),
                        tuple(tuple(at for at, _ in row) for row in rows))


def parse_digits_answer(text: str, size: int) -> Grid:
    """The givens from the model's digits answer: ``size`` rows of ``size`` symbols, '.' blank (see
    :func:`locate_digits_answer`, which also says where each came from)."""
    return locate_digits_answer(text, size).grid


def _lines(body: str, base: int) -> Iterator[tuple[str, int]]:
    """The lines of ``body.splitlines()``, each with its offset (``base`` + where it starts in ``body``)."""
    at = base
    for piece in body.splitlines(keepends=True):
        yield piece.splitlines()[0], at  # a piece is never empty: at least its line break
        at += len(piece)


def read_answers(rules_text: str, digits_text: str | Sequence[str], maps: Mapping[str, str] | None = None,
                 map_problems: list[str] | None = None) -> Puzzle:
    """The whole puzzle from the two answers; the rules say the size the digits must have. ``maps``: the
    marks-map answers by layer, whose rules replace the rules answer's (runtime/marks_map.py); with
    ``map_problems``, a map that cannot be used leaves its layer to the rules answer, and a rules answer cut
    short inside a mapped layer is still read (marks_map.rules_with_maps); each says why there.

    ``digits_text`` may be the digits answers of several grid views, first view first: the givens are then the
    first that reads, and the first view's error is raised where none does. Why: one framing's answer can break
    down (a row cut short) where the other framings read the grid, and a picture whose grid two views read is not
    unreadable (Pipeline.belief then combines the views that read)."""
    from .marks_map import rules_with_maps  # (marks_map reads rules answers with this module)

    rules = rules_with_maps(rules_text, maps or {}, map_problems)
    first: ModelOutputError | None = None
    for text in [digits_text] if isinstance(digits_text, str) else digits_text:
        try:
            return rules.with_givens(parse_digits_answer(text, rules.size))
        except ModelOutputError as exc:
            first = first or exc
    raise first or ModelOutputError("no digits answer to read")


def digits_text(puzzle: Puzzle) -> str:
    """The digits answer the model is trained to give: one line per row, '.' for blanks."""
    return "\n".join("".join(puzzle.alphabet.symbol(v) for v in row) for row in puzzle.givens)
