"""The PyTorch baseline: transformers' greedy ``generate`` on the Hugging Face folder.

Same image preprocessing, same prompts, same stop tokens as the ONNX runtime,
so ``vlm-solve --backend torch`` and the tests compare like with like. It asks
each question with the whole prompt (no shared prefix), as a plain
transformers pipeline does. Needs the ``export`` extra (torch, transformers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..runtime.clue_crops import load_clue_crops
from ..runtime.engine import EncodedImage, Generation
from ..runtime.grid_view import load_grid_view
from ..runtime.marks_map import load_layers
from ..runtime.model_config import GenerationTokens
from ..runtime.text_crops import load_text_crops
from ..runtime.pipeline import CROP_ANSWER_TOKENS, QUESTION_ORDER, Pipeline, Reading
from ..runtime.preprocess import ImageSettings, num_image_tokens, preprocess
from ..runtime.prompts import crop_prompt_ids, prompt_ids, question_text
from ..runtime.tokenizer import Tokenizer


class TorchPipeline(Pipeline):
    def __init__(self, model_dir: str | Path, device: str | None = None, max_new_tokens: int = 512,
                 attn_implementation: str = "sdpa", dtype: str = "float32") -> None:
        import torch
        from transformers import AutoModelForImageTextToText

        from ..export.source import inspect_model_dir

        t = time.perf_counter()
        inspect_model_dir(model_dir)  # one-line errors for folders that are not models
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_dir, dtype=getattr(torch, dtype), attn_implementation=attn_implementation).to(self.device).eval()
        self.tokenizer = Tokenizer.from_folder(model_dir)
        self.image_settings = ImageSettings.from_json(Path(model_dir))
        self.grid_view = load_grid_view(model_dir)
        self.map_layers = load_layers(model_dir)
        self.clue_crops = load_clue_crops(model_dir)
        self.text_crops = load_text_crops(model_dir)
        gen = GenerationTokens.from_folder(model_dir)
        self.stop_ids = sorted({*self.tokenizer.stop_ids, *gen.eos_token_ids})
        self.max_new_tokens = max_new_tokens
        self.share_prefix = False
        self.load_s = time.perf_counter() - t
        self.provider_name, self.precision, self.notes = f"torch-{self.device}", dtype, []

    def generate_ids(self, ids: list[int], pixel_values: np.ndarray | None, grid: np.ndarray | None,
                     max_new_tokens: int, stop: bool = True) -> list[int]:
        """Greedy continuation of ``ids`` (stop tokens dropped); ``stop=False`` never stops early."""
        torch = self.torch
        kwargs = {}
        if pixel_values is not None:
            kwargs = {"pixel_values": torch.from_numpy(pixel_values).to(self.device, self.model.dtype),
                      "image_grid_thw": torch.from_numpy(grid).to(self.device)}
        with torch.no_grad():
            out = self.model.generate(
                input_ids=torch.tensor([ids], device=self.device),
                attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=self.device),
                max_new_tokens=max_new_tokens, min_new_tokens=0 if stop else max_new_tokens,
                do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None,
                # eos_token_id=None as a keyword turns stopping off (a config with None would be overridden).
                eos_token_id=self.stop_ids if stop else None, pad_token_id=self.tokenizer.specials.endoftext,
                **kwargs,
            )
        new = out[0, len(ids):].tolist()
        return [t for t in new if t not in self.stop_ids] if stop else new

    def read_image(self, image: Image.Image, questions: tuple[str, ...] = QUESTION_ORDER,
                   on_text: Callable[[str, str], None] | None = None) -> Reading:
        picture = image
        image, viewed = self.view(image)
        s = self.image_settings.patch_size
        encoded, pixels = [], []
        for im in viewed.images if viewed is not None else [image]:  # any context view, then the grid view
            t0 = time.perf_counter()
            pixel_values, grid = preprocess(im, self.image_settings)
            n = num_image_tokens(grid, self.image_settings.merge_size)
            encoded.append(EncodedImage(grid, np.zeros((0,)), n, im.size, (int(grid[0, 1]) * s, int(grid[0, 2]) * s),
                                        time.perf_counter() - t0, 0.0))
            pixels.append(pixel_values)
        pixel_values, grid = np.concatenate(pixels), np.concatenate([e.grid_thw for e in encoded])
        answers: dict[str, Generation] = {}

        def ask(q: str) -> None:
            ids = prompt_ids(self.tokenizer, question_text(q), [e.num_tokens for e in encoded])
            t = time.perf_counter()
            tokens = self.generate_ids(ids, pixel_values, grid, self.max_new_tokens)
            elapsed = time.perf_counter() - t
            text = self.tokenizer.decode(tokens)
            if on_text:
                on_text(q, text)
            # generate does not separate prefill from decoding: the whole call counts as decoding.
            answers[q] = Generation(tokens, text, len(ids), 0.0, elapsed, len(tokens) < self.max_new_tokens,
                                    len(tokens))

        for q in questions:
            ask(q)
        for q in self.map_questions(answers):  # the marks maps the rules answer calls for (runtime/marks_map.py)
            ask(q)
        reading = Reading(encoded, answers, 0, 0.0, viewed)
        self.read_clues(picture, reading)
        self.read_lines(picture, reading)
        return reading

    def crop_text(self, crop: Image.Image, question: str) -> str:
        pixel_values, grid = preprocess(crop, self.image_settings)
        ids = crop_prompt_ids(self.tokenizer, question, num_image_tokens(grid, self.image_settings.merge_size))
        return self.tokenizer.decode(self.generate_ids(ids, pixel_values, grid, CROP_ANSWER_TOKENS))
