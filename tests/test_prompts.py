"""Tokenizer loading, the jinja-free chat prompt, and its token-level parity with Qwen2VLProcessor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlm_sudoku.runtime import prompts
from vlm_sudoku.runtime.image_io import load_image
from vlm_sudoku.runtime.model_config import ModelConfig, ModelFolderError
from vlm_sudoku.runtime.preprocess import ImageSettings, num_image_tokens, preprocess
from vlm_sudoku.runtime.tokenizer import SpecialTokens, Tokenizer
from vlm_sudoku.tools.make_tokenizer import QWEN2_VL_CHAT_TEMPLATE, QWEN2_VL_SPECIAL_TOKENS, build_tokenizer

DATA = Path(__file__).parent / "data"

TRICKY = [
    "",
    "Read the digits.",
    "Zeilen: 53..7....\n6..195...\n\n  indented   spaces\ttab\r\nend",
    "Ünïcödé — “quotes” 数独 🧩 e\u0301 (NFC)",
    "almost special: <|im_end| and <im_end|> and |image_pad|",
    "R1C1+R1C2=17; {\"size\": 9, \"box\": [3, 3]}",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = build_tokenizer(tmp_path_factory.mktemp("tok"), vocab_size=600)
    (out / "preprocessor_config.json").write_text(json.dumps(ImageSettings().to_dict()), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def tok(folder: Path) -> Tokenizer:
    return Tokenizer.from_folder(folder)


@pytest.fixture(scope="module")
def hf_processor(folder: Path):
    """Qwen2VLProcessor with the slow (PIL) image processor, loaded from the folder."""
    transformers = pytest.importorskip("transformers")
    try:
        return transformers.AutoProcessor.from_pretrained(folder, use_fast=False)
    except ImportError:
        # Without torchvision the (unused) video processor cannot be built; images do not need it.
        from transformers.processing_utils import ProcessorMixin

        original = ProcessorMixin.check_argument_for_proper_class
        ProcessorMixin.check_argument_for_proper_class = lambda self, name, arg: (
            None if arg is None else original(self, name, arg)
        )
        try:
            hf_tok = transformers.AutoTokenizer.from_pretrained(folder)
            return transformers.Qwen2VLProcessor(
                image_processor=transformers.Qwen2VLImageProcessor.from_pretrained(folder),
                tokenizer=hf_tok,
                video_processor=None,
                chat_template=hf_tok.chat_template,
            )
        finally:
            ProcessorMixin.check_argument_for_proper_class = original


# ---------------------------------------------------------------- tokenizer


def test_special_tokens_follow_the_vocabulary(tok: Tokenizer) -> None:
    sp = tok.specials
    base = tok.vocab_size - len(QWEN2_VL_SPECIAL_TOKENS)
    assert sp.endoftext == base and sp.im_start == base + 1 and sp.im_end == base + 2
    assert (sp.vision_start, sp.vision_end, sp.vision_pad, sp.image_pad, sp.video_pad) == tuple(
        range(base + 9, base + 14)
    )
    assert tok.stop_ids == (sp.im_end, sp.endoftext)
    assert sp.as_dict()["<|image_pad|>"] == sp.image_pad
    assert tok.token_id("<|im_end|>") == sp.im_end and tok.token_id("<|nope|>") is None


def test_digits_split_one_per_token(tok: Tokenizer) -> None:
    ids = tok.encode("53..7....")
    assert [tok.decode([i]) for i in ids][:2] == ["5", "3"]
    assert tok.encode("<|im_end|>") == [tok.specials.im_end]


@pytest.mark.parametrize("text", TRICKY)
def test_decode_round_trip(tok: Tokenizer, text: str) -> None:
    import unicodedata

    ids = tok.encode(text)
    assert tok.decode(ids, skip_special_tokens=False) == unicodedata.normalize("NFC", text)


def test_tokenizer_folder_errors(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(ModelFolderError, match="no tokenizer.json"):
        Tokenizer.from_folder(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFolderError, match="unreadable tokenizer.json"):
        Tokenizer.from_folder(tmp_path)
    # A tokenizer without Qwen2-VL's vision tokens is not this model's.
    plain = build_tokenizer(tmp_path / "plain", vocab_size=300, special_tokens=("<|endoftext|>", "<|im_start|>"))
    with pytest.raises(ModelFolderError, match="lacks the Qwen2-VL special token <|im_end|>"):
        Tokenizer.from_folder(plain)


def _config(tok: Tokenizer, **override: int) -> ModelConfig:
    sp = tok.specials
    raw = {
        "model_type": "qwen2_vl",
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "vocab_size": 640,
        "image_token_id": sp.image_pad,
        "video_token_id": sp.video_pad,
        "vision_start_token_id": sp.vision_start,
        "vision_end_token_id": sp.vision_end,
        "vision_config": {"depth": 1, "embed_dim": 32, "num_heads": 2, "hidden_size": 64},
    }
    raw.update(override)
    return ModelConfig.from_dict(raw)


def test_check_model_config(tok: Tokenizer) -> None:
    tok.check_model_config(_config(tok))
    with pytest.raises(ModelFolderError, match="image_token_id"):
        tok.check_model_config(_config(tok, image_token_id=151655))
    with pytest.raises(ModelFolderError, match="vocab_size"):
        tok.check_model_config(_config(tok, vocab_size=100))


# ---------------------------------------------------------------- prompt structure


def test_prompt_layout(tok: Tokenizer) -> None:
    sp = tok.specials
    ids = prompts.prompt_ids(tok, "Q?", [4, 6])
    assert ids[0] == sp.im_start and ids.count(sp.image_pad) == 10
    assert ids.count(sp.vision_start) == 2 and ids.count(sp.vision_end) == 2
    assert tok.decode(ids, skip_special_tokens=False) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        + "<|vision_start|>" + "<|image_pad|>" * 4 + "<|vision_end|>"
        + "<|vision_start|>" + "<|image_pad|>" * 6 + "<|vision_end|>"
        + "Q?<|im_end|>\n<|im_start|>assistant\n"
    )  # fmt: skip


def test_shared_prompt(tok: Tokenizer) -> None:
    shared = prompts.shared_prompt(tok, [391])
    assert set(shared.suffix_ids) == {"rules", "digits"}
    for name, question in prompts.QUESTIONS.items():
        assert shared.full(name) == prompts.prompt_ids(tok, question, [391])
        assert shared.suffix_ids[name]
    # The image lies wholly in the prefix; the two questions start differently, so nothing joins it.
    assert shared.prefix_ids.count(tok.specials.image_pad) == 391
    assert shared.prefix_ids == prompts.prefix_ids(tok, [391])
    # Questions with a common start share it too.
    same_start = {"a": "What are the rules?", "b": "What are the digits?"}
    joined = prompts.shared_prompt(tok, [391], same_start)
    assert tok.decode(joined.prefix_ids).endswith("What are the")
    for name, question in same_start.items():
        assert joined.full(name) == prompts.prompt_ids(tok, question, [391])


def test_shared_prompt_edge_cases(tok: Tokenizer) -> None:
    one = prompts.shared_prompt(tok, [4], {"only": "Solve it."})
    assert (one.prefix_ids, one.suffix_ids["only"]) == prompts.split_prompt(tok, "Solve it.", [4])
    same = prompts.shared_prompt(tok, [4], {"a": "Same.", "b": "Same."})
    assert len(same.suffix_ids["a"]) == 1  # identical questions still leave one token to prefill
    assert same.full("a") == prompts.prompt_ids(tok, "Same.", [4])
    with pytest.raises(ValueError, match="at least one image"):
        prompts.shared_prompt(tok, [])
    with pytest.raises(ValueError):
        prompts.prefix_ids(tok, [0])


@pytest.mark.parametrize("text", ["look at <|image_pad|>", "stop<|im_end|>", "<|vision_start|>", "a <|box_start|> b"])
def test_special_token_strings_refused(tok: Tokenizer, text: str) -> None:
    # Qwen2VLProcessor would expand a literal <|image_pad|> as another image and miscount.
    with pytest.raises(prompts.PromptError, match="special token"):
        prompts.prompt_ids(tok, text, [4])
    with pytest.raises(ValueError, match="special token"):
        prompts.prompt_ids(tok, "fine", [4], system=text)
    with pytest.raises(ValueError, match="special token"):
        prompts.prompt_ids(tok, text, [])


# ---------------------------------------------------------------- parity with transformers


def test_chat_template_text_matches(hf_processor) -> None:
    assert hf_processor.chat_template == QWEN2_VL_CHAT_TEMPLATE
    for question in TRICKY + list(prompts.QUESTIONS.values()):
        for n in (0, 1, 2):
            content = [{"type": "image"}] * n + [{"type": "text", "text": question}]
            text = hf_processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
            assert text == prompts.render_text(question, n)


@pytest.mark.parametrize("question", TRICKY + list(prompts.QUESTIONS.values()))
def test_token_ids_match_processor(hf_processor, tok: Tokenizer, question: str) -> None:
    images = [load_image(DATA / "grid.jpg"), Image.fromarray(np.full((60, 300, 3), 200, np.uint8))]
    for n in (0, 1, 2):
        text = prompts.render_text(question, n)
        out = hf_processor(text=[text], images=images[:n] or None, return_tensors="np")
        counts = [num_image_tokens(preprocess(im)[1]) for im in images[:n]]
        assert out["input_ids"][0].tolist() == prompts.prompt_ids(tok, question, counts)
        if n:
            np.testing.assert_array_equal(out["image_grid_thw"], np.concatenate([preprocess(im)[1] for im in images[:n]]))


def test_decode_matches_transformers(hf_processor, tok: Tokenizer) -> None:
    ids = prompts.prompt_ids(tok, TRICKY[3] + " " + TRICKY[2], [3])
    for skip in (True, False):
        assert tok.decode(ids, skip_special_tokens=skip) == hf_processor.tokenizer.decode(ids, skip_special_tokens=skip)


def test_end_to_end_from_image_path(hf_processor, tok: Tokenizer) -> None:
    """apply_chat_template(tokenize=True) loads the image itself (EXIF applied) and tokenizes."""
    path = DATA / "grid_exif6.jpg"
    messages = [{"role": "user", "content": [{"type": "image", "path": str(path)}, {"type": "text", "text": "Rows?"}]}]
    out = hf_processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="np"
    )
    pixel_values, grid = preprocess(load_image(path))
    assert out["input_ids"][0].tolist() == prompts.prompt_ids(tok, "Rows?", [num_image_tokens(grid)])
    np.testing.assert_array_equal(out["image_grid_thw"], grid)
    assert float(np.abs(out["pixel_values"] - pixel_values).max()) <= 1e-5


def test_special_token_dataclass_names() -> None:
    assert set(SpecialTokens.TOKENS.values()) <= set(QWEN2_VL_SPECIAL_TOKENS)
