"""The model's two answers -> a Puzzle: tolerant of chatter and code fences, strict on content.

A model may wrap its JSON in ```json fences or a sentence; that is fine. A
rule the solver does not know, a row of the wrong length or a digit outside
the grid's alphabet is not: it raises ModelOutputError (exit status 5) with
the offending text quoted, never a silently repaired puzzle.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..solver.errors import ModelOutputError, PuzzleFormatError
from ..solver.grid_text import clean_grid_text
from ..solver.puzzle import Grid, Puzzle
from ..solver.rules_json import read_rules
from ..solver.symbols import default_alphabet

_FENCE = re.compile(r"```[a-zA-Z]*\n?(.*?)```", re.S)
_RULE_LINE = re.compile(r"^[\s\-+|=]*$")


def quote(text: str, limit: int = 160) -> str:
    """The model's text for an error message: one line, cut to ``limit`` characters."""
    flat = text.replace("\n", "\\n")
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _unfenced(text: str) -> str:
    m = _FENCE.search(text)
    return m.group(1) if m else text


def extract_json_object(text: str) -> dict[str, Any]:
    """The first balanced ``{...}`` in ``text`` (inside a code fence if there is one)."""
    body = _unfenced(text)
    start = body.find("{")
    if start < 0:
        raise ModelOutputError(f"the model's rules answer holds no JSON object: {quote(text)}")
    depth, in_string, escaped = 0, False, False
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
        elif ch == "{":
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


def parse_rules_answer(text: str) -> Puzzle:
    """Rules (no givens) from the model's rules answer."""
    obj = extract_json_object(text)
    if "grid" in obj:
        raise ModelOutputError(f"the model's rules answer carries a 'grid'; digits come from the digits answer: {quote(text)}")
    try:
        return read_rules(obj)
    except PuzzleFormatError as exc:
        raise ModelOutputError(f"the model's rules are not valid ({exc}): {quote(text)}") from None


def parse_digits_answer(text: str, size: int) -> Grid:
    """The givens from the model's digits answer: ``size`` rows of ``size`` symbols, '.' blank.

    Row lines may carry spaces or '|' separators and ruled lines between boxes
    are skipped; any other line (chatter) before or after the rows is ignored,
    but the rows themselves must be consecutive and complete.
    """
    alphabet = default_alphabet(size)
    allowed = set(alphabet.symbols) | set(alphabet.blanks)
    rows: list[str] = []
    for line in _unfenced(text).splitlines():
        if _RULE_LINE.match(line):
            if rows and not line.strip():
                break  # a blank line ends the block of rows
            continue
        cleaned = clean_grid_text(line).upper()
        if cleaned and set(cleaned) <= allowed:
            if len(cleaned) != size:
                raise ModelOutputError(
                    f"row {len(rows) + 1} of the model's digits answer has {len(cleaned)} symbols, "
                    f"not {size}: {quote(text)}"
                )
            rows.append(cleaned)
            if len(rows) == size:
                break
        elif rows:
            break  # chatter after rows started: the block ended early
    if len(rows) != size:
        raise ModelOutputError(
            f"the model's digits answer has {len(rows)} complete row(s) of {size} symbols for a {size}x{size} grid: {quote(text)}"
        )
    return tuple(tuple(alphabet.value(ch) for ch in row) for row in rows)


def read_answers(rules_text: str, digits_text: str) -> Puzzle:
    """The whole puzzle from the two answers; the rules say the size the digits must have."""
    rules = parse_rules_answer(rules_text)
    givens = parse_digits_answer(digits_text, rules.size)
    return rules.with_givens(givens)


def digits_text(puzzle: Puzzle) -> str:
    """The digits answer the model is trained to give: one line per row, '.' for blanks."""
    return "\n".join("".join(puzzle.alphabet.symbol(v) for v in row) for row in puzzle.givens)
