"""The model's tokenizer.json through the ``tokenizers`` library (no transformers).

Qwen2-VL's tokenizer is a byte-level BPE with no BOS and no post-processing
template, so ``Tokenizer.encode`` gives the same ids as transformers'
``Qwen2TokenizerFast`` called with its defaults. Special tokens inside the
text (``<|im_end|>`` and the like) are split out as single ids, as transformers
does (``split_special_tokens=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from tokenizers import Tokenizer as _HFTokenizer

from .model_config import ModelFolderError

if TYPE_CHECKING:
    from .model_config import ModelConfig

TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the Qwen2-VL special tokens the runtime needs; the field names map to TOKENS."""

    endoftext: int
    im_start: int
    im_end: int
    vision_start: int
    vision_end: int
    vision_pad: int
    image_pad: int
    video_pad: int

    TOKENS = {
        "endoftext": "<|endoftext|>",
        "im_start": "<|im_start|>",
        "im_end": "<|im_end|>",
        "vision_start": "<|vision_start|>",
        "vision_end": "<|vision_end|>",
        "vision_pad": "<|vision_pad|>",
        "image_pad": "<|image_pad|>",
        "video_pad": "<|video_pad|>",
    }

    @property
    def stop_ids(self) -> tuple[int, int]:
        """Generation ends at either: <|im_end|> closes the turn, <|endoftext|> the document."""
        return (self.im_end, self.endoftext)

    def as_dict(self) -> dict[str, int]:
        """Token string -> id, e.g. for manifest.json."""
        return {self.TOKENS[f.name]: getattr(self, f.name) for f in fields(self)}


class Tokenizer:
    """A loaded tokenizer.json with the Qwen2-VL special token ids looked up once."""

    def __init__(self, tokenizer: _HFTokenizer, source: str = "tokenizer") -> None:
        self._tok = tokenizer
        self.source = source
        ids = {name: self._special_id(token) for name, token in SpecialTokens.TOKENS.items()}
        self.specials = SpecialTokens(**ids)
        # Every string the tokenizer turns into one special id, not only the ones named above.
        added = self._tok.get_added_tokens_decoder().values()
        self.special_strings: tuple[str, ...] = tuple(sorted(t.content for t in added if t.special))

    @classmethod
    def from_file(cls, path: str | Path) -> "Tokenizer":
        p = Path(path)
        if not p.is_file():
            raise ModelFolderError(f"{p}: no such tokenizer file")
        try:
            tok = _HFTokenizer.from_file(str(p))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception on bad JSON
            raise ModelFolderError(f"{p}: unreadable tokenizer.json ({str(exc).splitlines()[0]})") from None
        return cls(tok, source=str(p))

    @classmethod
    def from_folder(cls, folder: str | Path) -> "Tokenizer":
        """The tokenizer.json of a Hugging Face model folder or an export folder."""
        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise ModelFolderError(f"{folder}: no {TOKENIZER_FILE} (a Qwen2-VL model or export folder has one)")
        return cls.from_file(path)

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included (can be below the model's padded vocab_size)."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def stop_ids(self) -> tuple[int, int]:
        return self.specials.stop_ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special-token strings in it become their single ids."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids`` (as transformers' decode with clean_up_tokenization_spaces=False)."""
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int | None:
        """Id of one token string, or None when the vocabulary lacks it."""
        return self._tok.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tok.id_to_token(int(token_id))

    def check_model_config(self, config: "ModelConfig") -> None:
        """Fail early when config.json and tokenizer.json disagree on the vision token ids."""
        pairs = (
            ("image_token_id", config.image_token_id, self.specials.image_pad),
            ("video_token_id", config.video_token_id, self.specials.video_pad),
            ("vision_start_token_id", config.vision_start_token_id, self.specials.vision_start),
            ("vision_end_token_id", config.vision_end_token_id, self.specials.vision_end),
        )
        for key, expected, got in pairs:
            if expected != got:
                raise ModelFolderError(
                    f"{self.source}: config.json has {key}={expected} but the tokenizer gives {got}"
                )
        if self.vocab_size > config.vocab_size:
            raise ModelFolderError(
                f"{self.source}: {self.vocab_size} token ids do not fit the model's vocab_size {config.vocab_size}"
            )

    def _special_id(self, token: str) -> int:
        tid = self._tok.token_to_id(token)
        if tid is None:
            raise ModelFolderError(f"{self.source}: the tokenizer lacks the Qwen2-VL special token {token}")
        return tid

