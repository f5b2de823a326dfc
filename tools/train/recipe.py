"""The embedded default model's recipe: tokenizer, shape, image policy, seeds.

Everything needed to rebuild the untrained folder is here, so the weights can
be reproduced from this file, the data recipe (tools/train/data.py) and the
seeds recorded in the model card.

Why these choices:
- The tokenizer keeps a cell reference with its quotes (``"r1c1"``) as one
  piece and writes grid rows one symbol per token, so a digits answer is
  n*(n+1) tokens and a killer cage about 20: the rules of a typical variant
  puzzle fit well inside the runtime's 512-token cap.
- The vision tower carries most parameters (reading glyphs in a bent, blurred
  photo is the hard part). The language model has to find the right cell in the
  picture for every symbol it writes, which takes a few steps of attention
  (where was I, where is the next cell): a first run with two layers never got
  past writing empty rows, so it has four.
- The model reads the grid view (runtime/grid_view.py): the located grid warped
  to a 448x448 square, 256 merged tokens for every picture. Two runs on whole
  pictures (190k samples) never got past writing empty rows: finding the grid
  among newspaper text and reading it in one go was too much at this size.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ...runtime.grid_view import CONFIG_KEY, GridView
from ...runtime.prompts import QUESTIONS, SYSTEM_PROMPT

SPLIT_REGEX = (
    r'"?r(?:1[0-7]|[0-9])c(?:1[0-7]|[0-9])"?'  # a cell reference, quotes included: one piece
    r"|[^\r\n\p{L}\p{N}.]?\p{L}+"  # words
    r"|\p{N}"  # digits one by one (sums, grid rows)
    r"|\."  # blanks of grid rows, always alone
    r"| ?[^\s\p{L}\p{N}.]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
VOCAB_SIZE = 1024  # byte-level BPE incl. the 256 bytes, before the special tokens
TOKENIZER_SEED = 1234
TOKENIZER_PUZZLES = 3000

MIN_PIXELS = 56 * 56
MAX_PIXELS = 448 * 448  # the grid view's size: 16x16 merged tokens
GRID_VIEW = GridView(size=448, margin=40)  # the grid 368 px wide: 41 px a cell at 9x9, 23 px at 16x16

TEXT = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,  # short sequences: a short rotary period keeps 2-D positions sharp
    "rope_scaling": {"type": "mrope", "mrope_section": [8, 12, 12]},  # sums to head_dim / 2 = 32
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
}
VISION = {
    "depth": 6,
    "embed_dim": 256,
    "num_heads": 4,
    "mlp_ratio": 4,
    "hidden_size": 256,  # = text hidden size: the merger's output width
    "hidden_act": "quick_gelu",
    "in_channels": 3,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}
MODEL_SEED = 20261126


def tokenizer_corpus(seed: int = TOKENIZER_SEED, puzzles: int = TOKENIZER_PUZZLES) -> list[str]:
    """Text the model reads and writes: the prompts, rules answers and digit rows of sampled puzzles."""
    from ..render.labels import digits_answer, rules_answer
    from ..render.puzzles import CLASSIC, VARIANT_KINDS, sample_puzzle
    from .data import CELL_QUESTION, ROW_QUESTION

    rng = random.Random(seed)
    drills = [CELL_QUESTION.format(ref=f"r{r}c{c}") for r in range(1, 17) for c in range(1, 17)]
    drills += [ROW_QUESTION.format(row=r) for r in range(1, 17)]
    texts = [SYSTEM_PROMPT, *QUESTIONS.values()] * 20 + drills
    for _ in range(puzzles):
        kinds = (CLASSIC,) if rng.random() < 0.3 else (CLASSIC, *VARIANT_KINDS)
        puzzle, _ = sample_puzzle(rng, kinds=kinds)
        texts += [rules_answer(puzzle), digits_answer(puzzle)]
    # Every cell reference of every size (ring cells too) appears often enough to become one token.
    refs = [f'"r{r}c{c}"' for r in range(18) for c in range(18)]
    texts += [",".join(refs)] * 4
    return texts


def build_tokenizer_folder(out: Path) -> Path:
    from ..make_tokenizer import build_tokenizer

    return build_tokenizer(out, texts=tokenizer_corpus(), vocab_size=VOCAB_SIZE, split_regex=SPLIT_REGEX,
                           model_max_length=TEXT["max_position_embeddings"])


def preprocessor_config() -> dict[str, Any]:
    from ..make_random_model import preprocessor_config as qwen2_vl_processor

    return {**qwen2_vl_processor(MIN_PIXELS, MAX_PIXELS), CONFIG_KEY: GRID_VIEW.to_dict()}


def untrained_model(folder: str | Path, seed: int = MODEL_SEED):
    """The randomly initialised model of ``folder``'s config.json: the same weights for the same
    seed and torch version, so a base folder can travel without its safetensors."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    config = Qwen2VLConfig.from_pretrained(folder)
    torch.manual_seed(seed)
    return Qwen2VLForConditionalGeneration(config).float()


def build_untrained(out: str | Path, seed: int = MODEL_SEED):
    """Tokenizer + config + randomly initialised weights: the starting point of training.

    Returns the transformers model (fp32, on CPU).
    """
    from transformers import GenerationConfig, Qwen2VLConfig

    from ...runtime.tokenizer import Tokenizer

    out = Path(out)
    build_tokenizer_folder(out)
    tok = Tokenizer.from_folder(out)
    sp = tok.specials
    config = Qwen2VLConfig(
        text_config={**TEXT, "vocab_size": tok.vocab_size, "bos_token_id": sp.endoftext, "eos_token_id": sp.im_end},
        vision_config=VISION,
        image_token_id=sp.image_pad,
        video_token_id=sp.video_pad,
        vision_start_token_id=sp.vision_start,
        vision_end_token_id=sp.vision_end,
        vision_token_id=sp.vision_pad,
        tie_word_embeddings=True,
        bos_token_id=sp.endoftext,
        eos_token_id=sp.im_end,
        pad_token_id=sp.endoftext,
    )
    config.architectures = ["Qwen2VLForConditionalGeneration"]
    config.save_pretrained(out)
    model = untrained_model(out, seed)
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(
        bos_token_id=sp.endoftext, pad_token_id=sp.endoftext, eos_token_id=[sp.im_end, sp.endoftext],
        do_sample=False, max_new_tokens=512,
    ).save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(), indent=2) + "\n")
    return model


if __name__ == "__main__":  # python -m vlm_sudoku.tools.train.recipe OUT
    import sys

    m = build_untrained(sys.argv[1])
    print(sum(p.numel() for p in m.parameters()), "parameters")
