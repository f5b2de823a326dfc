"""Build a small Qwen2-style tokenizer folder with only the ``tokenizers`` library.

The result is laid out like a Qwen2-VL hub checkpoint's tokenizer files:
``tokenizer.json`` (byte-level BPE with Qwen2's pre-tokenizer regex, NFC,
byte-level decoder, the Qwen2-VL special tokens appended after the trained
vocabulary), ``vocab.json`` + ``merges.txt``, ``tokenizer_config.json`` with
Qwen2-VL-Instruct's settings and chat template, and ``chat_template.json`` (where
the processor looks for it). transformers' ``Qwen2TokenizerFast`` and
``Qwen2VLProcessor`` load it as they load the real one.

Used by the tests (no hub access) and by the embedded default model's training.

    python -m vlm_sudoku.tools.make_tokenizer OUT_DIR [--vocab-size 1024]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

# Qwen2's pre-tokenizer: digits split one by one (\p{N}), which suits Sudoku rows.
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# In Qwen2-VL's order; they follow the regular vocabulary, as in the real tokenizer (151643...).
QWEN2_VL_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2-VL-*-Instruct's chat_template, verbatim.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def default_corpus() -> list[str]:
    """Text the project's model reads and writes: prompts, digit rows, rules JSON, a little prose."""
    from ..runtime.prompts import QUESTIONS, SYSTEM_PROMPT

    rows = ["53..7....", "6..195...", ".98....6.", "8...6...3", "4..8.3..1", "7...2...6", ".6....28.",
            "...419..5", "....8..79", "1.3.", ".4.2", "12.456", "A.C.EFG.9.B..3.1"]  # fmt: skip
    rules = [  # the compact rules JSON of docs/rules-format.md
        '{"size":9,"rules":[]}',
        '{"size":6,"rules":[]}',
        '{"size":4,"rules":[]}',
        '{"size":16,"rules":[]}',
        '{"size":9,"rules":[{"type":"killer","cells":["r1c1","r1c2"],"sum":7}]}',
        '{"size":9,"rules":[{"type":"thermo","cells":["r2c2","r3c3","r4c4"]}]}',
        '{"size":9,"rules":[{"type":"arrow","bulb":["r5c5"],"line":["r5c6","r6c6"]}]}',
        '{"size":9,"rules":[{"type":"kropki","color":"white","cells":["r1c1","r1c2"]}]}',
        '{"size":9,"regions":["111222333"],"rules":[{"type":"diagonal+"}]}',
    ]
    prose = [
        SYSTEM_PROMPT,
        *QUESTIONS.values(),
        "The quick brown fox jumps over the lazy dog. Sudoku puzzles, killer cages, arrows, kropki dots, "
        "thermometers, odd and even cells, little killers, diagonals, German whispers, anti-knight, renban, "
        "XV, sandwich sums, anti-king, non-consecutive, windoku, regions, rows, columns, boxes.",
    ]
    return ["\n".join(rows)] * 20 + rules * 10 + prose * 5


def build_tokenizer(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    vocab_size: int = 1024,
    special_tokens: Sequence[str] = QWEN2_VL_SPECIAL_TOKENS,
    chat_template: str = QWEN2_VL_CHAT_TEMPLATE,
    model_max_length: int = 32768,
    split_regex: str = QWEN2_SPLIT_REGEX,
) -> Path:
    """Train a byte-level BPE on ``texts`` (default: ``default_corpus()``) and write the folder.

    ``vocab_size`` counts the 256 byte symbols and the merges, not the special tokens, which
    take the next ids. ``split_regex`` is the pre-tokenizer's split (Qwen2's by default; our
    own model keeps cell references like ``"r1c1"`` whole). Returns ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(list(texts) if texts is not None else default_corpus(), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens])
    tok.save(str(out / "tokenizer.json"))
    tok.model.save(str(out))  # vocab.json + merges.txt, for the slow Qwen2Tokenizer

    added = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in special_tokens
    }
    eos = "<|im_end|>" if "<|im_end|>" in special_tokens else None
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [t for t in special_tokens if t != "<|endoftext|>"],
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "errors": "replace",
        "model_max_length": model_max_length,
        "pad_token": "<|endoftext|>" if "<|endoftext|>" in special_tokens else None,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    _write_json(out / "tokenizer_config.json", config)
    _write_json(out / "chat_template.json", {"chat_template": chat_template})
    return out


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a small Qwen2-VL-style tokenizer folder.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary before special tokens")
    parser.add_argument("--corpus", type=Path, help="UTF-8 text file to train on (default: built-in corpus)")
    args = parser.parse_args(argv)
    texts = args.corpus.read_text(encoding="utf-8").splitlines() if args.corpus else None
    out = build_tokenizer(args.out_dir, texts=texts, vocab_size=args.vocab_size)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
