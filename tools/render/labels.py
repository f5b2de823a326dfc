"""The two training targets of a rendered puzzle, written in one place.

``rules_answer`` is what the model emits for "which rules?", ``digits_answer``
what it emits for "which givens?" and ``map_answer`` its marks map of one layer
(runtime/marks_map.py). The digits and map texts and their parsers are the
runtime's own, so the training data, the evaluation and the runtime agree by
construction.
"""

from __future__ import annotations

from ...runtime.answers import digits_text as digits_answer
from ...runtime.answers import parse_digits_answer
from ...runtime.marks_map import map_text as map_answer
from ...solver.puzzle import Puzzle
from ...solver.rules_json import dumps_rules
from .puzzles import canonical

__all__ = ["digits_answer", "map_answer", "parse_digits_answer", "rules_answer"]


def rules_answer(puzzle: Puzzle) -> str:
    """Compact rules JSON (``solver.rules_json.dumps_rules``) with the rules in canonical order."""
    return dumps_rules(canonical(puzzle))
