"""The three exported graphs in onnxruntime, and greedy decoding over them.

One image is encoded once; its prompt prefix (system turn, image, and whatever
the questions share) is prefilled once; each question then continues from that
prefix's KV cache. Everything here is numpy + onnxruntime: no torch.

Ways to move tensors, picked by the provider and the decoder graph:
- CPU: plain numpy feeds. ORT reads contiguous numpy arrays in place and the
  cache of a small model is a few hundred kilobytes, so there is nothing to save.
- CUDA / TensorRT: IO binding. The KV cache stays on the GPU between steps
  (each step's ``present`` OrtValues are bound as the next step's ``past``),
  the token embedding of each new token is computed on the GPU and bound
  straight into the decoder, and only the last position's logits come back to
  the host for the argmax.
- The fused decoder with IO binding (so by default on CUDA): a static KV
  cache (:class:`_StaticKV`), preallocated and bound as both ``past`` and
  ``present`` (onnxruntime's GroupQueryAttention share-buffer mode). A decode
  step then moves nothing but its own token: the graph's ``next_token`` lands
  in a fixed device buffer that the embedding graph reads, its output is the
  decoder's next input, and 8 bytes come back for the stop check. Every buffer
  keeps its address, which is what CUDA graphs need (``cuda_graph=True``: each
  step replays one capture).

The HF-parity rules, each mirroring transformers' Qwen2-VL generate:
- image embeddings replace the rows of the ``<|image_pad|>`` tokens in order;
- prefill position ids come from :func:`runtime.rope.get_rope_index` (M-RoPE);
- every later position (the question after a cached prefix, each new token) is
  its index in the sequence plus the rope delta, on all three rows.
"""

from __future__ import annotations

import time
import weakref
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
from .providers import ProviderChoice, ProviderError, choose
from .rope import get_rope_index, rope_rows
from .tokenizer import Tokenizer
from .vision_rope import vision_rope_rows
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
    """The KV cache after some prefix: arrays (CPU) or OrtValues (GPU), its length and rope delta.

    Over a static cache ``values`` is the engine's one shared set of buffers: the cache is its first
    ``length`` positions, valid until something writes below that (``stale``, checked when it is used).
    """

    values: dict[str, Any]
    length: int
    rope_delta: int
    stale: bool = field(default=False, compare=False)


@dataclass
class Generation:
    tokens: list[int]
    text: str
    prompt_tokens: int
    prefill_s: float
    decode_s: float
    stopped: bool  # ended on a stop token (False: hit max_new_tokens)
    steps: int = 0  # decoder runs after the prefill
    # Per token of ``tokens``, the logits that chose it, kept when generate was asked for ``alternatives``.
    step_logits: list[np.ndarray] | None = field(default=None, repr=False)
    alternatives: int = 0
    _choices: list[list[tuple[int, float]]] | None = field(default=None, init=False, repr=False)

    @property
    def tokens_per_s(self) -> float:
        return self.steps / self.decode_s if self.decode_s > 0 else float("inf")

    @property
    def choices(self) -> list[list[tuple[int, float]]] | None:
        """Per token of ``tokens``, the step's ``alternatives`` top (token id, log-probability) pairs, most likely
        first (the first is the greedy token); None unless generate was asked for alternatives. What a reader of
        the answer needs to weigh a doubtful symbol against the model's next choices (runtime/reading_check.py).

        Computed on first use: the host's log-softmax over Qwen2-VL's 152k vocabulary costs about 1.5 ms a token
        (two thirds of a 2B decode step on the H100), which only a reading that needs checking should pay."""
        if self.step_logits is None:
            return None
        if self._choices is None:
            self._choices = [top_choices(logits, self.alternatives) for logits in self.step_logits]
        return self._choices


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

    def run_bound(self, binding: Any, run_options: Any = None) -> None:
        t = time.perf_counter()
        self.session.run_with_iobinding(binding, run_options)
        self.seconds += time.perf_counter() - t
        self.calls += 1


def _ortvalue(shape: tuple[int, ...], dtype: Any, device: str) -> Any:
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, device, 0)


class _StaticKV:
    """The fused decoder's KV cache, preallocated on the engine's device and bound as past AND present.

    GroupQueryAttention sees the same buffer on both sides (it compares the pointers) and works in place:
    it writes the new positions at ``seqlens_k + 1 - seq`` onwards and attends to the first
    ``seqlens_k + 1`` only, so nothing is copied or reallocated per step and every address stays put,
    which CUDA graphs need. One set of buffers serves every :class:`Cache` handed out over it: a write
    from position ``start`` on leaves caches of length <= start intact (two questions after one prefix
    each overwrite only what follows the prefix) and marks longer ones stale.
    """

    ROUND = 256  # capacities are multiples of this: few distinct sizes, few CUDA graph captures
    # Positions reserved for an answer before it starts (room_for); a longer one grows the cache when it gets
    # there (Engine._grow_mid_answer). The capacity is the step's total_sequence_length, which sets
    # GroupQueryAttention's work: on the H100 a 2B step at 400 cached positions replays in 2.07 ms at 768
    # and 2.44 ms at 1024, the size the product's 512-token cap would otherwise give a puzzle (docs/benchmarks.md).
    ANSWER_ROOM = 256

    def __init__(self, names: list[str], shape: tuple[int, int, int], dtype: Any, device: str) -> None:
        self.names, self.shape, self.dtype, self.device = names, shape, dtype, device  # shape: (1, heads, dim)
        self.values: dict[str, Any] = {}  # one dict for the engine's life: caches keep seeing the current buffers
        self.capacity = 0
        self._live: list[weakref.ref[Cache]] = []

    def reserve(self, needed: int, keep: int, exact: bool = False) -> bool:
        """Room for ``needed`` positions, keeping the first ``keep`` (a host round trip, once per growth);
        True when the buffers moved (a new CUDA graph is needed)."""
        import onnxruntime as ort

        if needed <= self.capacity:
            return False
        size = needed if exact else -(-needed // self.ROUND) * self.ROUND
        batch, heads, dim = self.shape
        for name in self.names:
            host = np.zeros((batch, heads, size, dim), dtype=self.dtype)
            if keep:
                host[:, :, :keep] = self.values[name].numpy()[:, :, :keep]
            self.values[name] = ort.OrtValue.ortvalue_from_numpy(host, self.device, 0)
        self.capacity = size
        return True

    def room_for(self, prompt: int, tokens: int) -> int:
        """Positions to reserve for ``prompt`` cached positions and an answer of up to ``tokens``: the answer's
        first ANSWER_ROOM only."""
        return prompt + min(tokens, self.ANSWER_ROOM)

    def hand_out(self, cache: Cache) -> Cache:
        self._live.append(weakref.ref(cache))
        return cache

    def overwrite(self, start: int) -> None:
        """Positions from ``start`` on are about to be written: caches longer than that are no longer valid."""
        live = []
        for ref in self._live:
            cache = ref()
            if cache is not None and cache.length > start:
                cache.stale = True
            elif cache is not None:
                live.append(ref)
        self._live = live

    def check(self, past: Cache) -> None:
        if past.values is not self.values:
            raise ValueError("this Cache was not made by this engine's static KV cache")
        if past.stale:
            raise ValueError(f"this Cache's {past.length} positions were overwritten by a later prefill or "
                             "generation (the static KV cache keeps one sequence and the prefixes of it in use)")


class _RopeRows:
    """The rows of the fused decoder's cos/sin caches: GroupQueryAttention rotates the token at sequence index
    ``i`` with row ``i``. Prompt tokens get their M-RoPE rows (runtime.rope.rope_rows); a generated token's
    three positions are equal, so its row is plain RoPE at position ``i + rope_delta``, taken from a table
    kept across generations (computing rows per step cost more host time than the embedding graph's run)."""

    BLOCK = 1024

    def __init__(self, cfg: ModelConfig, dtype: Any) -> None:
        self.cfg, self.dtype = cfg, dtype
        self.cos = self.sin = np.zeros((0, cfg.head_dim // 2), dtype)

    def plain(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of positions ``start``..``stop`` (all three M-RoPE positions equal; ``start`` >= 0)."""
        if stop > len(self.cos):
            size = -(-stop // self.BLOCK) * self.BLOCK
            rows = np.broadcast_to(np.arange(size, dtype=np.int64), (3, size))
            self.cos, self.sin = rope_rows(self.cfg, rows, self.dtype)
        return self.cos[start:stop], self.sin[start:stop]

    def of(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of new tokens at ``positions`` (3, 1, seq)."""
        p = positions.reshape(3, -1)
        seq = p.shape[1]
        if seq and (p == p[0]).all() and p[0, 0] >= 0 and (np.diff(p[0]) == 1).all():
            return self.plain(int(p[0, 0]), int(p[0, 0]) + seq)
        return rope_rows(self.cfg, p, self.dtype)


@dataclass
class StepSeconds:
    """Where the static decode steps' time goes on the host, summed over steps: what is left between the
    decoder's own run and the bandwidth floor is what the next optimisation has to remove."""

    inputs: float = 0.0  # the in-place copy of seqlens_k (cos/sin rows are written once per prefill)
    embed: float = 0.0  # the embedding graph's run (the new token's row)
    decoder: float = 0.0  # the decoder's run (a CUDA graph replay when captured), synchronised
    readback: float = 0.0  # the token's 8 bytes to the host
    steps: int = 0

    def add(self, inputs: float, embed: float, decoder: float, readback: float) -> None:
        self.inputs += inputs
        self.embed += embed
        self.decoder += decoder
        self.readback += readback
        self.steps += 1

    def per_step_us(self) -> dict[str, float]:
        n = max(1, self.steps)
        return {k: 1e6 * getattr(self, k) / n for k in ("inputs", "embed", "decoder", "readback")}


@dataclass
class _StepIO:
    """The fixed device buffers and bindings of one static decode step (rebuilt when the cache grows)."""

    token: Any  # (1, 1) int64: the decoder's next_token output and the embedding graph's input_ids
    embeds: Any  # (1, 1, hidden): the embedding graph's output and the decoder's inputs_embeds
    cos: Any  # (capacity, head_dim / 2): the rotary rows of every index, written by each prefill (host copy below)
    sin: Any
    cos_rows: np.ndarray
    sin_rows: np.ndarray
    seqlens: Any  # (1,) int32: total length - 1, updated in place each step
    total: Any  # () int32 on the CPU (GroupQueryAttention's CPU input): the cache's capacity, constant
    logits: Any  # (1, 1, vocab) float32: bound so that no output of a captured step is allocated per run
    embed_binding: Any = None
    decoder_binding: Any = None
    run_options: Any = None  # gpu_graph_id when CUDA graphs are on


def top_choices(logits: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` most likely (token id, log-probability) pairs of one step's logits, most likely first.

    The log-softmax is taken in float64 on the host, so the normalisation over a large vocabulary loses
    nothing to float32 rounding. ``k`` is small (a few alternatives): k argmax passes cost less than a partial
    sort of a 150k vocabulary (about 0.1 ms against 2 ms), and they break ties as the greedy choice does, to
    the lower id.
    """
    x = np.array(logits, dtype=np.float64).reshape(-1)  # a copy: the picks are struck out below
    peak = x.max()
    log_z = peak + np.log(np.exp(x - peak).sum())
    top: list[tuple[int, float]] = []
    for _ in range(min(k, x.size)):
        i = int(np.argmax(x))
        top.append((i, float(x[i] - log_z)))
        x[i] = -np.inf
    return top


def fused_decoder_fits(device: str, precision: str) -> bool:
    """Whether the fused decoder of ``precision`` runs wholly on ``device``: GroupQueryAttention has CUDA
    kernels for fp16/bf16 only, so on the GPU the fp32 graph would run attention on the CPU."""
    return not (device == "cuda" and precision == "fp32")


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
        static_cache: bool | None = None,
        cuda_graph: bool | None = None,
        max_length: int | None = None,
        vision: str = "auto",
    ) -> None:
        """``vision``: the image encoder graph, as ``decoder`` picks the decoder's ("auto": the fused vision
        encoder when the export has it at the precision the image graphs run at, "fused" or "optimum");
        ``static_cache``: decode over a preallocated KV cache shared by past and present (None: whenever
        the fused decoder runs with IO binding); ``max_length``: its first size in positions (it grows when
        a generation needs more); ``cuda_graph``: replay each decode step as one CUDA graph (CUDA provider,
        fp16 fused decoder, static cache; None: whenever those hold, since a replayed step is 1.4x faster on
        the H100 and its tokens are the uncaptured step's, tests/test_cuda_provider.py)."""
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
        if cuda_graph and self.choice.name != "cuda":
            raise ProviderError(f"CUDA graphs need the CUDA provider (this engine runs on {self.choice.name})")
        self.precision = precision or self._default_precision()
        if self.precision not in self.manifest.precisions:
            from .manifest import ManifestError

            raise ManifestError(
                f"{self.folder}: no {self.precision} graphs in this export (it has {', '.join(self.manifest.precisions)})"
            )
        providers = self.choice.session_providers(self.folder, self.manifest, {"use_tf32": "0"})
        self.fused = self._use_fused(decoder)
        if cuda_graph is None:  # on where it applies: a fused decoder with fp16 activations (fp16, or int4 made
            # from fp16), as the manifest records its inputs: decided before the decoder's session exists
            fused_inputs = self.manifest.graph(io_names.FUSED_DECODER, self.precision).inputs if self.fused else ()
            half_graph = any(t.name == io_names.INPUTS_EMBEDS and t.dtype == "float16" for t in fused_inputs)
            cuda_graph = (self.choice.name == "cuda" and self.fused and half_graph and io_binding is not False
                          and static_cache is not False)
        decoder_graph = io_names.FUSED_DECODER if self.fused else io_names.DECODER
        files = {io_names.DECODER: self.folder / self.manifest.graph(decoder_graph, self.precision).file}
        if self.choice.name == "tensorrt":  # EP-context models load the serialized engines without the builder
            trt = self.manifest.tensorrt
            files.update({g: self.folder / f for g, f in (trt.ep_context_files if trt else {}).items()})
        decoder_providers = providers
        if cuda_graph:  # the decoder's session only: capture is per session, and only decode steps replay
            decoder_providers = self.choice.session_providers(self.folder, self.manifest,
                                                              {"use_tf32": "0", "enable_cuda_graph": "1"})
        self.decoder = _Graph(files[io_names.DECODER], decoder_providers, threads)
        if self.fused and io_names.LEGACY_COS in self.decoder.inputs:
            from .manifest import ExportMismatchError

            raise ExportMismatchError(f"{self.folder}: its fused decoder was written by an older vlm-export "
                                      "(rotary outside the attention); re-run vlm-export with --fused-decoder")
        half = self.decoder.inputs[io_names.INPUTS_EMBEDS] == np.float16
        if cuda_graph and not (self.fused and half):
            # GroupQueryAttention has CUDA kernels for fp16/bf16 only: an fp32 graph puts it on the CPU, with
            # copies around it, and onnxruntime refuses to capture a graph that is not all on the GPU.
            raise ProviderError("CUDA graphs need an fp16 fused decoder (--precision fp16 or an int4 made from "
                                f"it, exported with --fused-decoder); this engine runs the {self.precision} "
                                f"{'fused' if self.fused else 'optimum'} decoder")
        # int4 covers the fused decoder only: the other graphs run at the float precision its activations use.
        other = self.precision
        if self.precision == "int4":
            other = "fp16" if half and "fp16" in self.manifest.precisions else self._default_precision()
        self.fused_vision = self._use_fused_vision(vision, other, io_names.VISION_ENCODER in files)
        if self.fused_vision:
            files[io_names.VISION_ENCODER] = self.folder / self.manifest.graph(io_names.FUSED_VISION, other).file
        for g in (io_names.VISION_ENCODER, io_names.EMBED_TOKENS):
            files.setdefault(g, self.folder / self.manifest.graph(g, other).file)
        self.vision = _Graph(files[io_names.VISION_ENCODER], providers, threads)
        self.embed = _Graph(files[io_names.EMBED_TOKENS], providers, threads)
        self.past_names = io_names.past_names(self.cfg.num_layers)
        self.present_names = io_names.present_names(self.cfg.num_layers)
        self._check_graphs_match_config()
        self.kv_dtype = self.decoder.inputs[self.past_names[0]]
        # IO binding keeps the cache where the provider computes; on by default on the GPU. On the CPU it
        # buys nothing, but it runs the same code path, which is how the tests check it without a GPU.
        self._bound = self.choice.device == "cuda" if io_binding is None else io_binding
        self._device = self.choice.device
        self._kv: _StaticKV | None = None
        self.step_seconds = StepSeconds()  # static decode steps only
        self._rope = _RopeRows(self.cfg, self.kv_dtype)
        self._io: _StepIO | None = None
        self._graph_id = 0  # gpu_graph_id of the current step capture; 0: none yet
        self._cuda_graph = cuda_graph
        if static_cache is None:
            static_cache = self.fused and self._bound
        if cuda_graph and not static_cache:
            raise ValueError("CUDA graphs need the static KV cache (static_cache=True)")
        if static_cache:
            if not self.fused:
                raise ValueError("the static KV cache needs the fused decoder (GroupQueryAttention's shared "
                                 "past/present buffers)")
            if io_binding is False:
                raise ValueError("the static KV cache needs IO binding (io_binding=True or None)")
            self._bound = True
            shape = (1, self.cfg.num_kv_heads, self.cfg.head_dim)
            self._kv = _StaticKV(self.past_names, shape, self.kv_dtype, self._device)
            if max_length:
                self._kv.reserve(max_length, 0, exact=True)
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

    def _fused_graph(self, choice: str, option: str, graph: str, precision: str, what: str, flag: str) -> bool:
        """Whether the export has the fused ``graph`` at ``precision``, after checking ``choice`` (auto, fused or
        optimum, the ``option`` argument) and that a "fused" choice names a graph the export has."""
        if choice not in ("auto", "fused", "optimum"):
            raise ValueError(f"{option} must be auto, fused or optimum, got {choice!r}")
        have = any(g.name == graph and g.precision == precision for g in self.manifest.graphs)
        if choice == "fused" and not have:
            from .manifest import ManifestError

            raise ManifestError(f"{self.folder}: no fused {precision} {what} in this export "
                                f"(re-run vlm-export with {flag})")
        return have

    def _use_fused(self, decoder: str) -> bool:
        """Whether to decode with the fused decoder graph: "auto" takes it when the export has it, except
        fp32 on the GPU."""
        have = self._fused_graph(decoder, "decoder", io_names.FUSED_DECODER, self.precision, "decoder",
                                 "--fused-decoder")
        if self.precision == "int4" and decoder == "optimum":
            raise ValueError("int4 exists for the fused decoder only")
        if decoder == "auto" and not fused_decoder_fits(self.choice.device, self.precision):
            return False
        return have and decoder != "optimum"

    def _use_fused_vision(self, vision: str, precision: str, tensorrt_engine: bool) -> bool:
        """Whether to encode images with the fused vision graph (export/vision_fused.py) of ``precision``:
        "auto" takes it when the export has it, except over a TensorRT engine of the vision encoder."""
        have = self._fused_graph(vision, "vision", io_names.FUSED_VISION, precision, "vision encoder",
                                 "--fused-vision")
        if vision == "auto" and tensorrt_engine:
            return False
        return have and vision != "optimum"

    def _default_precision(self) -> str:
        have = [p for p in self.manifest.precisions if p != "int4"]  # int4 is asked for, never implied
        if self.choice.device == "cuda" and "fp16" in have:
            return "fp16"
        return "fp32" if "fp32" in have else have[0]

    @property
    def static_cache(self) -> bool:
        return self._kv is not None

    @property
    def cuda_graph(self) -> bool:
        return self._cuda_graph

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
        if self.fused_vision:  # one image (t = 1) per call: its patches attend to each other, all of them
            if grid.shape[0] != 1 or int(grid[0, 0]) != 1:
                raise ValueError(f"the fused vision encoder takes one image (grid t = 1) per call, got {grid.tolist()}")
            # fp32 angles on the host; _Graph.feed casts cos/sin (never the angles) to an fp16 graph's type
            feeds[io_names.COS_CACHE], feeds[io_names.SIN_CACHE] = vision_rope_rows(grid, self.cfg.vision)
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
        if self._kv is not None:
            if past is not None:
                self._kv.check(past)
            return self._prefill_static(embeds, positions, start, total, delta), self._kv.hand_out(
                Cache(self._kv.values, total, delta))
        logits, values = self._run_decoder(embeds, positions, total, past)
        return logits, Cache(values, total, delta)

    # -- static cache (fused decoder, shared past/present buffers) -----------------------------
    def _prefill_static(self, embeds: np.ndarray, positions: np.ndarray, start: int, total: int,
                        rope_delta: int) -> np.ndarray:
        """Write positions ``start``..``total`` of the static cache; the greedy token goes to the step's token
        buffer (where the first decode step reads it), the logits to the host. Never captured: shapes vary.

        The rotary caches get the prompt's rows and, past ``total``, the rows of every decode step that can
        follow (generated tokens' positions are known from ``rope_delta``): one upload, so that a decode
        step copies nothing but its sequence length."""
        kv = self._kv
        assert kv is not None
        self._static_room(total, start)
        io = self._io
        assert io is not None
        io.cos_rows[start:total], io.sin_rows[start:total] = self._rope.of(positions)
        self._write_generated_rows(total, rope_delta)
        binding = self.decoder.session.io_binding()
        binding.bind_output(io_names.LOGITS, "cpu")
        binding.bind_ortvalue_output(io_names.NEXT_TOKEN, io.token)
        binding.bind_cpu_input(io_names.INPUTS_EMBEDS, self.decoder.feed(io_names.INPUTS_EMBEDS, embeds))
        binding.bind_ortvalue_input(io_names.COS_CACHE, io.cos)
        binding.bind_ortvalue_input(io_names.SIN_CACHE, io.sin)
        binding.bind_cpu_input(io_names.SEQLENS_K, np.array([total - 1], dtype=np.int32))
        binding.bind_cpu_input(io_names.TOTAL_SEQUENCE_LENGTH, np.array(total, dtype=np.int32))
        for past, present in zip(self.past_names, self.present_names):
            binding.bind_ortvalue_input(past, kv.values[past])
            binding.bind_ortvalue_output(present, kv.values[past])
        kv.overwrite(start)
        self.decoder.run_bound(binding, self._run_options("-1"))
        return binding.get_outputs()[0].numpy()[0, -1].astype(np.float32)

    def _run_options(self, graph_id: str) -> Any:
        """RunOptions naming the CUDA graph of a run ("-1": run normally, never capture); None without graphs."""
        if not self._cuda_graph:
            return None
        import onnxruntime as ort

        options = ort.RunOptions()
        options.add_run_config_entry("gpu_graph_id", graph_id)
        return options

    def reserve(self, prompt: int, max_new_tokens: int) -> None:
        """Size the static KV cache now (nothing to do without one) for ``prompt`` positions and answers of up to
        ``max_new_tokens`` after them, as generate() would, so that a prefill and the generations continued from
        it never move the buffers in between: a move copies the cache through the host and needs a new CUDA
        graph. Caches made before a move are stale after it."""
        if self._kv is None:
            return
        needed = self._kv.room_for(prompt, max_new_tokens)
        if needed > self._kv.capacity:
            self._kv.overwrite(0)
            self._static_room(needed, 0)

    def _grow_mid_answer(self, cache: Cache, tokens_left: int) -> None:
        """The static cache is full in the middle of an answer: move it to bigger buffers (the cached positions
        copied over), bind the step again (a new CUDA graph) and write the rotary rows of the positions to come
        (the new cos/sin buffers are blank; steps read only the rows of the positions they write)."""
        assert self._kv is not None
        self._static_room(self._kv.room_for(cache.length, tokens_left), cache.length)
        self._write_generated_rows(cache.length, cache.rope_delta)

    def _write_generated_rows(self, start: int, rope_delta: int) -> None:
        """The step's rotary rows from index ``start`` to the capacity (generated tokens: plain RoPE at
        ``i + rope_delta``), and the cos/sin caches uploaded."""
        io, kv = self._io, self._kv
        assert io is not None and kv is not None
        io.cos_rows[start:], io.sin_rows[start:] = self._rope.plain(start + rope_delta, kv.capacity + rope_delta)
        io.cos.update_inplace(io.cos_rows)
        io.sin.update_inplace(io.sin_rows)

    def _static_room(self, needed: int, keep: int) -> None:
        """Room for ``needed`` positions (keeping the first ``keep``), the step bound over the buffers."""
        assert self._kv is not None
        if self._kv.reserve(needed, keep) or self._io is None:
            self._bind_step()

    def _bind_step(self) -> None:
        """(Re)build the decode step's fixed buffers and bindings over the current cache buffers; a new
        CUDA graph id each time, since a captured graph holds the addresses it was captured with."""
        kv = self._kv
        assert kv is not None
        dev, rows = self._device, (kv.capacity, self.cfg.head_dim // 2)
        io = self._io or _StepIO(
            token=_ortvalue((1, 1), np.int64, dev),
            embeds=_ortvalue((1, 1, self.cfg.hidden_size), self.decoder.inputs[io_names.INPUTS_EMBEDS], dev),
            cos=None, sin=None, cos_rows=np.zeros(0), sin_rows=np.zeros(0),
            seqlens=_ortvalue((1,), np.int32, dev), total=_ortvalue((), np.int32, "cpu"),
            logits=_ortvalue((1, 1, self.cfg.vocab_size), np.float32, dev))
        if io.cos_rows.shape != rows:  # the rotary caches follow the KV cache's capacity
            io.cos, io.sin = _ortvalue(rows, self.kv_dtype, dev), _ortvalue(rows, self.kv_dtype, dev)
            io.cos_rows, io.sin_rows = np.zeros(rows, self.kv_dtype), np.zeros(rows, self.kv_dtype)
        # The step's total_sequence_length is the capacity, not the real length: GroupQueryAttention reads it
        # on the host, so a captured graph keeps the value it was captured with; seqlens_k (on the device)
        # carries the real length. onnxruntime-genai feeds the same (the static attention mask's width).
        io.total.update_inplace(np.array(kv.capacity, dtype=np.int32))
        io.embed_binding = self.embed.session.io_binding()
        io.embed_binding.bind_ortvalue_input(io_names.INPUT_IDS, io.token)
        io.embed_binding.bind_ortvalue_output(io_names.INPUTS_EMBEDS, io.embeds)
        b = io.decoder_binding = self.decoder.session.io_binding()
        for name, value in ((io_names.INPUTS_EMBEDS, io.embeds), (io_names.COS_CACHE, io.cos), (io_names.SIN_CACHE, io.sin),
                            (io_names.SEQLENS_K, io.seqlens), (io_names.TOTAL_SEQUENCE_LENGTH, io.total)):
            b.bind_ortvalue_input(name, value)
        for past, present in zip(self.past_names, self.present_names):
            b.bind_ortvalue_input(past, kv.values[past])
            b.bind_ortvalue_output(present, kv.values[past])
        b.bind_ortvalue_output(io_names.NEXT_TOKEN, io.token)
        b.bind_ortvalue_output(io_names.LOGITS, io.logits)  # stay on the device; read only for generate's alternatives
        self._graph_id += 1
        io.run_options = self._run_options(str(self._graph_id))
        self._io = io

    def _static_step(self, length: int) -> int:
        """One greedy token after ``length`` cached positions, from the token already in the step's buffer.

        Idempotent for the same inputs (it rewrites position ``length`` and the token buffer), which CUDA
        graph capture relies on: onnxruntime runs the first step of a graph id three times (two warm-ups
        and the capture)."""
        io, kv = self._io, self._kv
        assert io is not None and kv is not None
        t0 = time.perf_counter()
        io.seqlens.update_inplace(np.array([length], dtype=np.int32))
        t1 = time.perf_counter()
        self.embed.run_bound(io.embed_binding)
        kv.overwrite(length)
        t2 = time.perf_counter()
        self.decoder.run_bound(io.decoder_binding, io.run_options)
        t3 = time.perf_counter()
        token = int(io.token.numpy()[0, 0])  # the 8 bytes a step brings back
        self.step_seconds.add(t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3)
        return token

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
        caches and sequence lengths for the fused one (its attention rotates index ``i`` with row ``i``; the
        rows before the new tokens are never read: those keys were rotated when they were written)."""
        if not self.fused:
            return {io_names.ATTENTION_MASK: np.ones((1, total), dtype=np.int64),
                    io_names.POSITION_IDS: np.ascontiguousarray(positions, dtype=np.int64)}
        shape = (total, self.cfg.head_dim // 2)
        cos, sin = np.zeros(shape, self.kv_dtype), np.zeros(shape, self.kv_dtype)
        cos[total - positions.shape[-1]:], sin[total - positions.shape[-1]:] = self._rope.of(positions)
        return {io_names.COS_CACHE: cos, io_names.SIN_CACHE: sin,
                io_names.SEQLENS_K: np.array([total - 1], dtype=np.int32),
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
        alternatives: int = 0,
    ) -> Generation:
        """Greedy decoding after ``ids`` (and ``past``): stops on a stop token or at ``max_new_tokens``.

        ``alternatives`` > 0: the generation also carries, per token, the step's ``alternatives`` most likely
        (token id, log-probability) pairs (``Generation.choices``); the greedy tokens are the same either way.
        On the plain and IO-binding paths the step's logits are on the host already. On the static-cache path
        they stay on the device (only the 8-byte token comes back), so asking for alternatives copies the
        vocabulary-sized logits to the host every step (600 kB for Qwen2-VL's 152k vocabulary: tens of
        microseconds). The log-softmax over them waits until ``Generation.choices`` is first read, which the
        pipeline does only for a reading from several grid views and for one that does not solve (1.5 ms a
        token for 152k, 15 us for the embedded model's 1k). The decode benchmark never asks.
        """
        t0 = time.perf_counter()
        if self._kv is not None:
            start = 0 if past is None else past.length
            if past is not None:
                self._kv.check(past)
            self._static_room(self._kv.room_for(start + len(ids), max_new_tokens), start)
            logits, cache = self.prefill(ids, images, past)
            io = self._io
            assert io is not None
            token = int(io.token.numpy()[0, 0])
        else:
            logits, cache = self.prefill(ids, images, past)
            token = int(np.argmax(logits))
        t1 = time.perf_counter()
        tokens: list[int] = []
        kept: list[np.ndarray] | None = [] if alternatives > 0 else None
        shown = ""
        stopped = False
        steps = 0
        while len(tokens) < max_new_tokens:
            if token in self.stop_ids:
                stopped = True
                break
            tokens.append(token)
            if kept is not None:  # ``logits`` chose ``token`` (the prefill's for the first); a copy, since a bound
                kept.append(np.array(logits, dtype=np.float32))  # CPU output's array is its buffer, rewritten each step
            if on_text is not None:
                text = self.tokenizer.decode(tokens)
                if len(text) > len(shown) and not text.endswith("\ufffd"):  # wait for whole UTF-8 characters
                    on_text(text[len(shown):])
                    shown = text
            if len(tokens) == max_new_tokens:
                break
            if self._kv is not None:
                if cache.length >= self._kv.capacity:
                    self._grow_mid_answer(cache, max_new_tokens - len(tokens))
                token = self._static_step(cache.length)
                cache = Cache(cache.values, cache.length + 1, cache.rope_delta)
                if kept is not None:  # a vocabulary-sized device-to-host copy per step (see the docstring)
                    logits = io.logits.numpy()[0, -1]
            else:
                position = np.full((3, 1, 1), cache.length + cache.rope_delta, dtype=np.int64)
                logits, values = self._run_decoder(self._embed_next(token), position, cache.length + 1, cache)
                cache = Cache(values, cache.length + 1, cache.rope_delta)
                token = int(np.argmax(logits))
            steps += 1
        t2 = time.perf_counter()
        text = self.tokenizer.decode(tokens)
        if on_text is not None and len(text) > len(shown):  # what waited for more bytes of a character
            on_text(text[len(shown):])
        prompt = (past.length if past is not None else 0) + len(ids)
        return Generation(tokens, text, prompt, t1 - t0, t2 - t1, stopped, steps, kept, alternatives)


__all__ = ["Cache", "EncodedImage", "Engine", "Generation", "StepSeconds", "fused_decoder_fits", "top_choices"]
