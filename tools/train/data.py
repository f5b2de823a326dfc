"""Training samples, made on the fly from a seed: a rendered puzzle or an augmented photo,
one of the two questions, and its answer as the target.

Each sample is a pure function of (run seed, sample index), so a resumed run
sees exactly the samples it would have seen, whatever the number of workers.
The prompt and answer token ids come from the runtime's own code (prompts,
preprocessing, tokenizer, labels), so training and inference cannot drift.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...runtime.preprocess import ImageSettings, num_image_tokens, preprocess
from ...runtime.prompts import QUESTIONS, prompt_ids
from ...runtime.tokenizer import Tokenizer
from ..render import sample as render_sample
from ..render.labels import digits_answer, rules_answer
from .photos import DEFAULT_DIR, Photo, augment, load_photos, split

IGNORE = -100
MAX_ANSWER_TOKENS = 600  # longer rules answers than this are not drawn (the runtime caps at 512 by default)


@dataclass(frozen=True)
class Mix:
    """The data recipe (recorded in the model card)."""

    photo_rate: float = 0.15  # share of samples that are augmented training photos
    digits_rate: float = 0.6  # share of rendered samples asking for the digits (rest: rules)
    photo_digits_rate: float = 0.8
    kinds: str = "all"  # render.puzzles.parse_kinds spec
    sizes: tuple[int, ...] = (4, 6, 9, 16)


@dataclass
class Sample:
    pixel_values: np.ndarray  # (patches, 1176) float32
    grid_thw: np.ndarray  # (1, 3) int64
    input_ids: list[int]
    labels: list[int]
    source: str  # "render" or "photo"
    question: str


class SampleMaker:
    def __init__(self, model_dir: str | Path, seed: int, mix: Mix = Mix(), photos_dir: Path | None = DEFAULT_DIR) -> None:
        self.tok = Tokenizer.from_folder(model_dir)
        self.image_settings = ImageSettings.from_json(Path(model_dir))
        self.seed = seed
        self.mix = mix
        self.photos: list[Photo] = []
        if photos_dir is not None and Path(photos_dir).is_dir() and mix.photo_rate > 0:
            self.photos, _validation = split(load_photos(Path(photos_dir)))

    def __call__(self, index: int) -> Sample:
        for attempt in range(8):
            rng = random.Random(self.seed * 1_000_003 + index * 7919 + attempt)
            sample = self._draw(rng)
            if sample is not None:
                return sample
        raise RuntimeError(f"could not draw sample {index}")

    def _draw(self, rng: random.Random) -> Sample | None:
        if self.photos and rng.random() < self.mix.photo_rate:
            photo = rng.choice(self.photos)
            image, puzzle, source = augment(photo, rng), photo.puzzle, "photo"
            question = "digits" if rng.random() < self.mix.photo_digits_rate else "rules"
        else:
            rendered = render_sample(rng.getrandbits(62), sizes=self.mix.sizes, kinds=self.mix.kinds)
            image, puzzle, source = rendered.image, rendered.puzzle, "render"
            question = "digits" if rng.random() < self.mix.digits_rate else "rules"
        answer = digits_answer(puzzle) if question == "digits" else rules_answer(puzzle)
        answer_ids = self.tok.encode(answer) + [self.tok.specials.im_end]
        if len(answer_ids) > MAX_ANSWER_TOKENS:
            return None
        pixel_values, grid = preprocess(image, self.image_settings)
        prompt = prompt_ids(self.tok, QUESTIONS[question], [num_image_tokens(grid, self.image_settings.merge_size)])
        return Sample(pixel_values, grid, prompt + answer_ids, [IGNORE] * len(prompt) + answer_ids, source, question)


def collate(samples: list[Sample], pad_id: int) -> dict:
    """One batch in the layout Qwen2VLForConditionalGeneration.forward takes (right padding)."""
    import torch

    longest = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), longest), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(samples), longest), dtype=torch.long)
    for i, s in enumerate(samples):
        n = len(s.input_ids)
        ids[i, :n] = torch.tensor(s.input_ids)
        labels[i, :n] = torch.tensor(s.labels)
        mask[i, :n] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "pixel_values": torch.from_numpy(np.concatenate([s.pixel_values for s in samples])),
        "image_grid_thw": torch.from_numpy(np.concatenate([s.grid_thw for s in samples])),
        "photos": sum(s.source == "photo" for s in samples),
    }
