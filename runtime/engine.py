"""The three exported graphs in onnxruntime, and greedy decoding over them.

One image is encoded once; its prompt prefix (system turn, image, and whatever
the questions share) is prefilled once; each question then continues from that
prefix's KV cache. Everything here is numpy + onnxruntime: no torch.

Two ways to move tensors, picked by the provider:
- CPU: plain numpy feeds. ORT reads contiguous numpy arrays in place and the
  cache of a small model is a few hundred kilobytes, so there is nothing to save.
- CUDA / TensorRT: IO binding. The KV cache stays on the GPU between steps
  (each step's ``present`` OrtValues are bound as the next step's ``past``),
  the token embedding of each new token is computed on the GPU and bound
  straight into the decoder, and only the last position's logits come back to
  the host for the argmax.

The HF-parity rules, each mirroring transformers' Qwen2-VL generate:
- image embeddings replace the rows of the ``<|image_pad|>`` tokens in order;
- prefill position ids come from :func:`runtime.rope.get_rope_index` (M-RoPE);
- every later position (the question after a cached prefix, each new token) is
  its index in the sequence plus the rope delta, on all three rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import io_names
from .manifest import Manifest
from .model_config import GenerationTokens, ModelConfig
from .preprocess import ImageSettings, num_image_tokens, preprocess
from .providers import ProviderChoice, choose
from .rope import get_rope_index, mrope_cos_sin
from .tokenizer import Tokenizer
from .vision_windows import get_window_index

_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


@dataclass
class EncodedImage:
    """One image after preprocessing and the vision encoder."""

    grid_thw: np.ndarray  # (1, 3) int64
    embeds: np.ndarray  # (merged patches, hidden), the decoder's dtype
    num_tokens: int  # <|image_pad|> tokens it takes in the prompt
    source_size: tuple[int, int]  # (width, height) before resizing
    resized: tuple[int, int]  # (height, width) after smart_resize
    preprocess_s: float
    vision_s: float


@dataclass
class Cache:
    """The KV cache after some prefix: arrays (CPU) or OrtValues (GPU), its length and rope delta."""

    values: dict[str, Any]
    length: int
    rope_delta: int


@dataclass
class Generation:
    tokens: list[int]
    text: str
    prompt_tokens: int
    prefill_s: float
    decode_s: float
    stopped: bool  # ended on a stop token (False: hit max_new_tokens)
    steps: int = 0  # decoder runs after the prefill

    @property
    def tokens_per_s(self) -> float:
        return self.steps / self.decode_s if self.decode_s > 0 else float("inf")


class _Graph:
    """An InferenceSession plus the dtypes its inputs declare."""

    def __init__(self, path: Path, providers: list[Any], threads: int | None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # our stderr carries one-line messages; ORT's warnings go
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        self.inputs = {i.name: _NUMPY.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.seconds = 0.0  # time inside onnxruntime, to tell model compute from Python overhead
        self.calls = 0

    def feed(self, name: str, value: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(value, dtype=self.inputs[name])

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> list[np.ndarray]:
        cast = {k: self.feed(k, v) for k, v in feeds.items() if k in self.inputs}
        t = time.perf_counter()
        out = self.session.run(outputs, cast)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return out

    def run_bound(self, binding: Any) -> None:
        t = time.perf_counter()
        self.session.run_with_iobinding(binding)
        self.seconds += time.perf_counter() - t
        self.calls += 1


class Engine:
    """Sessions of one export folder, ready to read images and answer questions."""

    def __init__(
        self,
        folder: str | Path,
        provider: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        io_binding: bool | None = None,
        decoder: str = "auto",
    ) -> None:
        start = time.perf_counter()
        self.folder = Path(folder)
        self.manifest = Manifest.load(self.folder)
        self.cfg = ModelConfig.from_folder(self.folder)
        self.tokenizer = Tokenizer.from_folder(self.folder)
        self.tokenizer.check_model_config(self.cfg)
        self.image_settings = ImageSettings.from_json(self.folder)
        gen = GenerationTokens.from_folder(self.folder)
        self.stop_ids = frozenset((*self.tokenizer.stop_ids, *gen.eos_token_ids))
        self.choice: ProviderChoice = choose(provider, self.manifest)
        self.precision = precision or self._default_precision()
        if self.precision not in self.manifest.precisions:
            from .manifest import ManifestError

            raise ManifestError(
                f"{self.folder}: no {self.precision} graphs in this export (it has {', '.join(self.manifest.precisions)})"
            )
        providers = self.choice.session_providers(self.folder, self.manifest, {"use_tf32": "0"})
        self.fused = self._use_fused(decoder)
        # int4 covers the fused decoder only: the other graphs run at the precision chosen by default.
        other = self._default_precision() if self.precision == "int4" else self.precision
        files = {g: self.folder / self.manifest.graph(g, other).file for g in (io_names.VISION_ENCODER,
                                                                             io_names.EMBED_TOKENS)}
        decoder_graph = io_names.FUSED_DECODER if self.fused else io_names.DECODER
        files[io_names.DECODER] = self.folder / self.manifest.graph(decoder_graph, self.precision).file
        if self.choice.name == "tensorrt":  # EP-context models load the serialized engines without the builder
            trt = self.manifest.tensorrt
            files.update({g: self.folder / f for g, f in (trt.ep_context_files if trt else {}).items()})
        self.vision = _Graph(files[io_names.VISION_ENCODER], providers, threads)
        self.embed = _Graph(files[io_names.EMBED_TOKENS], providers, threads)
        self.decoder = _Graph(files[io_names.DECODER], providers, threads)
        self.past_names = io_names.past_names(self.cfg.num_layers)
        self.present_names = io_names.present_names(self.cfg.num_layers)
        self._check_graphs_match_config()
        self.kv_dtype = self.decoder.inputs[self.past_names[0]]
        # IO binding keeps the cache where the provider computes; on by default on the GPU. On the CPU it
        # buys nothing, but it runs the same code path, which is how the tests check it without a GPU.
        self._bound = self.choice.device == "cuda" if io_binding is None else io_binding
        self._device = self.choice.device
        self.load_s = time.perf_counter() - start

    def _check_graphs_match_config(self) -> None:
        """Refuse an export whose config.json (or tokenizer) belongs to another model than its graphs."""
        from .manifest import ExportMismatchError

        cfg, problems = self.cfg, []
        if self.manifest.architecture != cfg.model_type:
            problems.append(f"the graphs are {self.manifest.architecture} but config.json says {cfg.model_type}")
        past = [i for i in self.decoder.session.get_inputs() if i.name.startswith("past_key_values.")]
        if len(past) != 2 * cfg.num_layers:
            problems.append(f"the decoder has {len(past) // 2} layers but config.json says {cfg.num_layers}")
        elif past and list(past[0].shape[1::2]) != [cfg.num_kv_heads, cfg.head_dim]:
            problems.append(f"the decoder's cache is {past[0].shape} but config.json implies "
                            f"{cfg.num_kv_heads} kv heads of {cfg.head_dim}")
        logits = self.decoder.session.get_outputs()[0].shape[-1]
        if isinstance(logits, int) and logits != cfg.vocab_size:
            problems.append(f"the decoder's vocabulary is {logits} but config.json says {cfg.vocab_size}")
        window = io_names.WINDOW_INDEX in self.vision.inputs
        if window != cfg.is_qwen2_5:
            problems.append("the vision graph " + ("takes" if window else "lacks") + " Qwen2.5-VL's window inputs "
                            f"but config.json says {cfg.model_type}")
        if problems:
            raise ExportMismatchError(f"{self.folder}: files of different models in one export: {problems[0]}")

    def _use_fused(self, decoder: str) -> bool:
        """Whether to decode with the fused decoder graph: "auto" takes it when the export has it."""
        have = any(g.name == io_names.FUSED_DECODER and g.precision == self.precision for g in self.manifest.graphs)
        if decoder not in ("auto", "fused", "optimum"):
            raise ValueError(f"decoder must be auto, fused or optimum, got {decoder!r}")
        if decoder == "fused" and not have:
            from .manifest import ManifestError

            raise ManifestError(f"{self.folder}: no fused {self.precision} decoder in this export "
                                "(re-run vlm-export with --fused-decoder)")
        if self.precision == "int4" and decoder == "optimum":
            raise ValueError("int4 exists for the fused decoder only")
        return have and decoder != "optimum"

    def _default_precision(self) -> str:
        have = [p for p in self.manifest.precisions if p != "int4"]  # int4 is asked for, never implied
        if self.choice.device == "cuda" and "fp16" in have:
            return "fp16"
        return "fp32" if "fp32" in have else have[0]

    @property
    def provider_name(self) -> str:
        return self.choice.name

    def ort_seconds(self) -> dict[str, float]:
        """Seconds spent inside onnxruntime per graph since load (the model's own compute)."""
        return {"vision": self.vision.seconds, "embed": self.embed.seconds, "decoder": self.decoder.seconds}

    # -- image -------------------------------------------------------------------------------
    def encode_image(self, image: Image.Image | np.ndarray) -> EncodedImage:
        t0 = time.perf_counter()
        pixel_values, grid = preprocess(image, self.image_settings)
        t1 = time.perf_counter()
        feeds = {io_names.PIXEL_VALUES: pixel_values, io_names.GRID_THW: grid}
        if io_names.WINDOW_INDEX in self.vision.inputs:  # Qwen2.5-VL: window order computed here
            window_index, cu_window_seqlens = get_window_index(grid, self.cfg.vision)
            feeds[io_names.WINDOW_INDEX] = window_index
            feeds[io_names.CU_WINDOW_SEQLENS] = cu_window_seqlens
        embeds = self.vision.run(feeds)[0]
        t2 = time.perf_counter()
        size = image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])
        merge = self.image_settings.merge_size
        resized = (int(grid[0, 1]) * self.image_settings.patch_size, int(grid[0, 2]) * self.image_settings.patch_size)
        return EncodedImage(grid, embeds, num_image_tokens(grid, merge), size, resized, t1 - t0, t2 - t1)

    # -- prefill -----------------------------------------------------------------------------
    def _embed_host(self, ids: Sequence[int]) -> np.ndarray:
        return self.embed.run({io_names.INPUT_IDS: np.asarray([ids], dtype=np.int64)})[0]

    def prefill(self, ids: Sequence[int], images: Sequence[EncodedImage] = (), past: Cache | None = None
                ) -> tuple[np.ndarray, Cache]:
        """Run ``ids`` (after ``past``, if any) through the decoder: last logits and the new cache."""
        ids = list(ids)
        embeds = self._embed_host(ids)
        pad_rows = np.flatnonzero(np.asarray(ids) == self.cfg.image_token_id)
        if len(pad_rows) or images:
            if past is not None:
                raise ValueError("images belong in the first prefill, not after a cached prefix")
            image_embeds = np.concatenate([im.embeds for im in images]) if images else np.zeros((0, embeds.shape[-1]))
            if len(pad_rows) != len(image_embeds):
                raise ValueError(f"{len(pad_rows)} image tokens in the prompt but {len(image_embeds)} image embeddings")
            embeds[0, pad_rows] = image_embeds.astype(embeds.dtype)
        if past is None:
            grid = np.concatenate([im.grid_thw for im in images]) if images else None
            positions, deltas = get_rope_index(self.cfg, np.asarray([ids], dtype=np.int64), grid)
            delta, start = int(deltas[0, 0]), 0
        else:
            delta, start = past.rope_delta, past.length
            positions = np.broadcast_to(np.arange(start, start + len(ids), dtype=np.int64) + delta, (3, 1, len(ids)))
        total = start + len(ids)
        logits, values = self._run_decoder(embeds, positions, total, past)
        return logits, Cache(values, total, delta)

    # -- decoder step (numpy or IO binding) -----------------------------------------------------
    def _empty_past(self) -> dict[str, np.ndarray]:
        shape = (1, self.cfg.num_kv_heads, 0, self.cfg.head_dim)
        return {n: np.zeros(shape, dtype=self.kv_dtype) for n in self.past_names}

    def _run_decoder(self, embeds: Any, positions: np.ndarray, total: int, past: Cache | None
                     ) -> tuple[np.ndarray, dict[str, Any]]:
        extra = self._position_feeds(positions, total)
        if not self._bound:
            feeds = {io_names.INPUTS_EMBEDS: embeds, **extra, **(past.values if past is not None else self._empty_past())}
            out = self.decoder.run(feeds, [io_names.LOGITS, *self.present_names])
            logits = out[0][0, -1].astype(np.float32)
            return logits, dict(zip(self.past_names, out[1:]))
        binding = self.decoder.session.io_binding()
        if isinstance(embeds, np.ndarray):
            binding.bind_cpu_input(io_names.INPUTS_EMBEDS, self.decoder.feed(io_names.INPUTS_EMBEDS, embeds))
        else:
            binding.bind_ortvalue_input(io_names.INPUTS_EMBEDS, embeds)
        for name, value in extra.items():
            binding.bind_cpu_input(name, value)
        if past is None:
            for name, value in self._empty_past().items():
                binding.bind_cpu_input(name, value)
        else:
            for name, value in past.values.items():
                binding.bind_ortvalue_input(name, value)
        binding.bind_output(io_names.LOGITS, self._device, 0)
        for name in self.present_names:
            binding.bind_output(name, self._device, 0)
        if self.fused:  # its in-graph argmax is for a decode loop that never reads logits (issue 6)
            binding.bind_output(io_names.NEXT_TOKEN, "cpu")
        self.decoder.run_bound(binding)
        out = binding.get_outputs()
        logits = out[0].numpy()[0, -1].astype(np.float32)
        return logits, dict(zip(self.past_names, out[1:1 + len(self.present_names)]))

    def _position_feeds(self, positions: np.ndarray, total: int) -> dict[str, np.ndarray]:
        """Where the new tokens sit: attention mask + M-RoPE position ids for the optimum decoder; rotary
        cos/sin and sequence lengths for the fused one (it applies rotary with host-computed angles)."""
        if not self.fused:
            return {io_names.ATTENTION_MASK: np.ones((1, total), dtype=np.int64),
                    io_names.POSITION_IDS: np.ascontiguousarray(positions, dtype=np.int64)}
        cos, sin = mrope_cos_sin(self.cfg, positions, self.kv_dtype)
        return {io_names.COS: cos, io_names.SIN: sin, io_names.SEQLENS_K: np.array([total - 1], dtype=np.int32),
                io_names.TOTAL_SEQUENCE_LENGTH: np.array(total, dtype=np.int32)}

    def _embed_next(self, token: int) -> Any:
        ids = np.asarray([[token]], dtype=np.int64)
        if not self._bound:
            return self.embed.run({io_names.INPUT_IDS: ids})[0]
        binding = self.embed.session.io_binding()
        binding.bind_cpu_input(io_names.INPUT_IDS, ids)
        binding.bind_output(io_names.INPUTS_EMBEDS, self._device, 0)
        self.embed.run_bound(binding)
        return binding.get_outputs()[0]

    # -- generation ----------------------------------------------------------------------------
    def generate(
        self,
        ids: Sequence[int],
        *,
        images: Sequence[EncodedImage] = (),
        past: Cache | None = None,
        max_new_tokens: int = 512,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        """Greedy decoding after ``ids`` (and ``past``): stops on a stop token or at ``max_new_tokens``."""
        t0 = time.perf_counter()
        logits, cache = self.prefill(ids, images, past)
        t1 = time.perf_counter()
        tokens: list[int] = []
        shown = ""
        stopped = False
        steps = 0
        while len(tokens) < max_new_tokens:
            token = int(np.argmax(logits))
            if token in self.stop_ids:
                stopped = True
                break
            tokens.append(token)
            if on_text is not None:
                text = self.tokenizer.decode(tokens)
                if len(text) > len(shown) and not text.endswith("\ufffd"):  # wait for whole UTF-8 characters
                    on_text(text[len(shown):])
                    shown = text
            if len(tokens) == max_new_tokens:
                break
            position = np.full((3, 1, 1), cache.length + cache.rope_delta, dtype=np.int64)
            logits, values = self._run_decoder(self._embed_next(token), position, cache.length + 1, cache)
            cache = Cache(values, cache.length + 1, cache.rope_delta)
            steps += 1
        t2 = time.perf_counter()
        text = self.tokenizer.decode(tokens)
        if on_text is not None and len(text) > len(shown):  # what waited for more bytes of a character
            on_text(text[len(shown):])
        prompt = (past.length if past is not None else 0) + len(ids)
        return Generation(tokens, text, prompt, t1 - t0, t2 - t1, stopped, steps)


__all__ = ["Cache", "EncodedImage", "Engine", "Generation"]
