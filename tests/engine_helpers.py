"""One way for the tests to drive an engine: both questions greedily from a shared image prefix."""

from __future__ import annotations

from PIL import Image

from vlm_sudoku.runtime.engine import Engine
from vlm_sudoku.runtime.prompts import QUESTIONS, shared_prompt


def shared_prefix_tokens(engine: Engine, image: Image.Image, n: int = 32) -> list[list[int]]:
    """Greedy tokens of every question (``n`` each, stop tokens ignored) after one shared image prefix."""
    engine.stop_ids = frozenset()  # random weights: always generate n tokens
    encoded = engine.encode_image(image)
    prompt = shared_prompt(engine.tokenizer, [encoded.num_tokens])
    _logits, cache = engine.prefill(prompt.prefix_ids, [encoded])
    return [engine.generate(prompt.suffix_ids[q], past=cache, max_new_tokens=n).tokens for q in QUESTIONS]
