"""TensorRT engines for the exported graphs, through onnxruntime's TensorRT execution provider.

``vlm-export --tensorrt`` builds one engine per graph at export time, so the
runtime starts in seconds instead of minutes:

- explicit optimization profiles (min/opt/max) for every dynamic input,
  derived from the graph's symbolic dims and :class:`ProfileLimits`;
- fp16 kernels allowed (``trt_fp16_enable``) on top of the graph's precision;
- the engine cache (``trt_engine_cache_*``) and an EP-context model
  (``trt_dump_ep_context_model``: an ONNX file wrapping the serialized engine,
  which loads without the TensorRT builder) written under ``tensorrt/``;
- the manifest records the GPU name, compute capability and TensorRT version,
  and ``Manifest.check_engine`` refuses the engines anywhere else.

TensorRT cannot be installed on the machines this project is developed on
(its wheels download from NVIDIA's index). Everything here that does not need
it is pure and tested; :func:`detect_tensorrt` turns its absence into a
one-line :class:`TensorRTUnavailableError`. Engine building itself has never
run here: treat it as unverified until run on a TensorRT machine (Jetson).

Only the standard library and onnxruntime are imported, so this module stays
usable where torch is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime.gpu import detect_gpu, tensorrt_version
from ..runtime.manifest import GraphSpec, ImagePolicy, TensorRTInfo
from ..runtime.model_config import ModelConfig
from .errors import TensorRTUnavailableError

TRT_PROVIDER = "TensorrtExecutionProvider"
ENGINE_DIR = "tensorrt"


@dataclass(frozen=True)
class GpuEnvironment:
    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    onnxruntime_version: str


@dataclass(frozen=True)
class ProfileLimits:
    """Ranges the engines must cover; inputs outside them fail at run time (TensorRT does not rebuild)."""

    max_batch: int = 1
    opt_sequence: int = 128  # prompt chunk the engine is tuned for
    max_sequence: int = 2048  # longest prefill chunk
    max_total: int = 4096  # longest context (prompt + generated)
    opt_total: int = 512
    max_images: int = 4
    max_patches: int | None = None  # default: from the image policy's max_pixels


def detect_tensorrt() -> GpuEnvironment:
    """What the engines would be built for; a one-line TensorRTUnavailableError if anything is missing."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise TensorRTUnavailableError("TensorRT is not available: onnxruntime is not installed") from None
    providers = ort.get_available_providers()
    if TRT_PROVIDER not in providers:
        raise TensorRTUnavailableError(
            f"TensorRT is not available: onnxruntime {ort.__version__} has no {TRT_PROVIDER} "
            f"(providers: {', '.join(providers)}); install onnxruntime-gpu and TensorRT 10, or export without --tensorrt"
        )
    version = tensorrt_version()
    if version is None:
        raise TensorRTUnavailableError(
            "TensorRT is not available: onnxruntime has its TensorRT provider but libnvinfer (the TensorRT "
            "runtime) was not found; install TensorRT 10 or export without --tensorrt"
        )
    gpu = detect_gpu()
    if gpu is None:
        raise TensorRTUnavailableError("TensorRT is not available: no NVIDIA GPU is visible (nvidia-smi found none)")
    return GpuEnvironment(gpu_name=gpu[0], compute_capability=gpu[1], tensorrt_version=version,
                          onnxruntime_version=ort.__version__)


def dim_ranges(cfg: ModelConfig, policy: ImagePolicy, limits: ProfileLimits) -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) for every symbolic dim name the exported graphs use."""
    max_patches = limits.max_patches or policy.max_pixels // (policy.patch_size**2)
    merge2 = policy.merge_size**2
    max_merged = max_patches // merge2
    opt_patches = min(max_patches, 1024)  # a 448x448 image: 32x32 patches
    win = cfg.vision.window_size // policy.factor if cfg.vision.window_size else 1
    max_windows = max_merged // max(1, win * win) + 2 * int(max_merged**0.5) + limits.max_images
    return {
        "batch_size": (1, 1, limits.max_batch),
        "sequence_length": (1, limits.opt_sequence, limits.max_sequence),
        "past_sequence_length": (0, limits.opt_total, limits.max_total - 1),
        "past_sequence_length + sequence_length": (1, limits.opt_total, limits.max_total),
        "num_patches": (merge2, opt_patches, max_patches),
        "num_images": (1, 1, limits.max_images),
        "num_merged_patches": (1, opt_patches // merge2, max_merged),
        "num_windows_plus_one": (2, 2 + opt_patches // merge2 // max(1, win * win), max_windows + 1),
    }


def profile_shapes(
    graph: GraphSpec, cfg: ModelConfig, policy: ImagePolicy, limits: ProfileLimits
) -> dict[str, dict[str, list[int]]]:
    """Optimization profile of one graph: input -> {"min"|"opt"|"max": shape}; only dynamic inputs."""
    ranges = dim_ranges(cfg, policy, limits)
    profiles: dict[str, dict[str, list[int]]] = {}
    for spec in graph.inputs:
        if all(isinstance(d, int) for d in spec.shape):
            continue
        shapes: dict[str, list[int]] = {"min": [], "opt": [], "max": []}
        for d in spec.shape:
            if isinstance(d, int):
                lo = opt = hi = d
            elif d in ranges:
                lo, opt, hi = ranges[d]
            else:
                raise TensorRTUnavailableError(f"no TensorRT profile range for dim {d!r} of {graph.name}:{spec.name}")
            shapes["min"].append(lo)
            shapes["opt"].append(opt)
            shapes["max"].append(hi)
        profiles[spec.name] = shapes
    return profiles


def shapes_option(profile: dict[str, dict[str, list[int]]], which: str) -> str:
    """ORT's ``trt_profile_*_shapes`` syntax: ``name:1x2x3,other:4x5``."""
    return ",".join(f"{name}:{'x'.join(str(d) for d in shapes[which])}" for name, shapes in profile.items())


def provider_options(
    profile: dict[str, dict[str, list[int]]], cache_dir: Path, ctx_file: Path, fp16: bool = True
) -> dict[str, str]:
    """TensorRT EP options: explicit profiles, fp16, engine + timing cache, EP-context dump."""
    return {
        "trt_fp16_enable": "1" if fp16 else "0",
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": str(cache_dir),
        "trt_dump_ep_context_model": "1",
        "trt_ep_context_file_path": str(ctx_file),
        "trt_ep_context_embed_mode": "0",  # engine stays a file next to the context model
        "trt_profile_min_shapes": shapes_option(profile, "min"),
        "trt_profile_opt_shapes": shapes_option(profile, "opt"),
        "trt_profile_max_shapes": shapes_option(profile, "max"),
    }


def build_engines(
    export_dir: Path,
    graphs: list[GraphSpec],
    cfg: ModelConfig,
    policy: ImagePolicy,
    precision: str,
    limits: ProfileLimits = ProfileLimits(),
    env: GpuEnvironment | None = None,
) -> TensorRTInfo:
    """Build an engine per graph (creating a TensorRT EP session builds it) and describe them.

    Unverified on this project's machines (no TensorRT there); see the module docstring.
    """
    env = env or detect_tensorrt()
    import onnxruntime as ort

    cache_dir = export_dir / ENGINE_DIR
    cache_dir.mkdir(parents=True, exist_ok=True)
    ctx_files: dict[str, str] = {}
    profiles: dict[str, Any] = {}
    for graph in graphs:
        profile = profile_shapes(graph, cfg, policy, limits)
        ctx = cache_dir / f"{Path(graph.file).stem}_ctx.onnx"
        opts = provider_options(profile, cache_dir, ctx, fp16=True)
        try:
            ort.InferenceSession(
                str(export_dir / graph.file), providers=[(TRT_PROVIDER, opts), "CUDAExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - TensorRT errors are many and untyped
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TensorRTUnavailableError(f"TensorRT engine build failed for {graph.name}: {first}") from None
        ctx_files[graph.name] = str(ctx.relative_to(export_dir))
        profiles[graph.name] = profile
    return TensorRTInfo(
        gpu_name=env.gpu_name,
        compute_capability=env.compute_capability,
        tensorrt_version=env.tensorrt_version,
        onnxruntime_version=env.onnxruntime_version,
        precision=precision,
        cache_dir=ENGINE_DIR,
        ep_context_files=ctx_files,
        profiles=profiles,
    )
