"""Where a decode step's GPU time goes: the fused decoder's kernels, one CUDA-graph step at a time.

    python -m vlm_sudoku.tools.profile_decode MODEL_DIR [--length 400] [--steps 50] \
        [--capacity 512 --capacity 1536] [--env "" --env ORT_ENABLE_CUDNN_FLASH_ATTENTION=0]

vlm-bench says how long a step takes; this says what the GPU does in it. It builds the fp16 fused
decoder straight from MODEL_DIR's safetensors once (export/gqa_decoder.py, no optimum export needed),
then for every (``--capacity``, ``--env``) pair opens a session, binds a static KV cache and the step's
buffers as the runtime does (share-buffer mode, CUDA graph replay), and records the kernels of
``--steps`` replays with torch's profiler: CUPTI sees every kernel the process launches, onnxruntime's
included. The capacity is the step's total_sequence_length (the runtime's cache size, which can be far
above the cached length); ``--env`` sets onnxruntime's attention switches (read when a session's
kernels are made) for that session only. Prints, per pair, the kernels by total GPU time and the
replay's wall time against the kernels' sum (the difference is time between kernels), then a summary.
A development tool for the GPU machine: it needs onnxruntime-gpu and a CUDA build of torch in one process.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
import numpy as np


def _profile(path: Path, cfg: Any, length: int, steps: int, capacity: int, top: int) -> tuple[float, float, float]:
    """Replay ms a step, kernel ms a step, kernels a step; prints the kernel table."""
    import onnxruntime as ort
    import torch
    from torch.profiler import ProfilerActivity, profile

    from ..runtime import io_names
    from ..runtime.rope import rope_rows

    cuda = ("CUDAExecutionProvider", {"device_id": 0, "enable_cuda_graph": "1", "use_tf32": "0"})
    session = ort.InferenceSession(str(path), providers=[cuda])

    def value(shape: tuple[int, ...], dtype: type, device: str = "cuda", fill: np.ndarray | None = None) -> Any:
        v = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, device, 0)
        if fill is not None:
            v.update_inplace(np.ascontiguousarray(fill, dtype=dtype))
        return v

    rng = np.random.default_rng(0)
    cache = (1, cfg.num_kv_heads, capacity, cfg.head_dim)
    kv = {n: value(cache, np.float16, fill=rng.normal(0, 1, cache)) for n in io_names.past_names(cfg.num_layers)}
    cos, sin = rope_rows(cfg, np.broadcast_to(np.arange(capacity), (3, capacity)), np.float16)
    feeds = {io_names.INPUTS_EMBEDS: value((1, 1, cfg.hidden_size), np.float16,
                                          fill=rng.normal(0, 0.02, (1, 1, cfg.hidden_size))),
             io_names.COS_CACHE: value(cos.shape, np.float16, fill=cos),
             io_names.SIN_CACHE: value(sin.shape, np.float16, fill=sin),
             io_names.SEQLENS_K: value((1,), np.int32, fill=np.array([length])),
             io_names.TOTAL_SEQUENCE_LENGTH: value((), np.int32, "cpu", np.array(capacity))}
    binding = session.io_binding()
    for name, v in feeds.items():
        binding.bind_ortvalue_input(name, v)
    for past, present in zip(io_names.past_names(cfg.num_layers), io_names.present_names(cfg.num_layers)):
        binding.bind_ortvalue_input(past, kv[past])
        binding.bind_ortvalue_output(present, kv[past])
    binding.bind_ortvalue_output(io_names.NEXT_TOKEN, value((1, 1), np.int64))
    binding.bind_ortvalue_output(io_names.LOGITS, value((1, 1, cfg.vocab_size), np.float32))
    options = ort.RunOptions()
    options.add_run_config_entry("gpu_graph_id", "1")
    for _ in range(5):  # warm-ups and the capture
        session.run_with_iobinding(binding, options)
    t = time.perf_counter()
    for _ in range(steps):
        session.run_with_iobinding(binding, options)
    replay_ms = 1e3 * (time.perf_counter() - t) / steps
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            session.run_with_iobinding(binding, options)
        torch.cuda.synchronize()
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for event in prof.events():
        if event.device_type.name == "CUDA":
            entry = totals[event.name[:90]]
            entry[0] += 1
            entry[1] += event.device_time_total if hasattr(event, "device_time_total") else event.cuda_time_total
    kernel_ms = sum(us for _, us in totals.values()) / 1e3 / steps
    launches = sum(n for n, _ in totals.values()) / steps
    print(f"replay {replay_ms:.3f} ms a step, kernels {kernel_ms:.3f} ms a step, {launches:.0f} kernels a step")
    print("| kernel | per step | us a step | share |\n|---|---:|---:|---:|")
    for name, (n, us) in sorted(totals.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"| `{name}` | {n / steps:.0f} | {us / steps:.1f} | {us / steps / 10 / kernel_ms:.1f}% |")
    del binding, session
    return replay_ms, kernel_ms, launches


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--length", default=400, show_default=True, help="Cached positions before the profiled steps.")
@click.option("--steps", default=50, show_default=True)
@click.option("--capacity", "capacities", multiple=True, type=int,
              help="KV cache positions (the step's total_sequence_length), repeatable; default: the length and "
                   "steps rounded up to 256. The runtime reserves prompt + max_new_tokens + 512, rounded up to 256.")
@click.option("--env", "envs", multiple=True,
              help='Environment for one session, "KEY=VALUE,KEY=VALUE" ("" for none), repeatable: e.g. '
                   "ORT_ENABLE_CUDNN_FLASH_ATTENTION=0 (onnxruntime's attention backends).")
@click.option("--top", default=25, show_default=True, help="Kernels listed.")
def main(model_dir: Path, length: int, steps: int, capacities: tuple[int, ...], envs: tuple[str, ...],
         top: int) -> None:
    import torch

    from ..export.gqa_decoder import build_decoder
    from ..runtime.model_config import ModelConfig

    cfg = ModelConfig.from_folder(model_dir)
    torch.zeros(1, device="cuda")  # CUDA context first, so CUPTI is set up before onnxruntime's kernels
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = build_decoder(model_dir, Path(tmp) / "decoder_gqa_fp16.onnx", "fp16")
        print(f"{torch.cuda.get_device_name()}: {cfg.num_layers} layers, hidden {cfg.hidden_size}, "
              f"{length} cached positions")
        for capacity in capacities or (-(-(length + steps + 8) // 256) * 256,):
            for env in envs or ("",):
                pairs = dict(p.split("=", 1) for p in env.split(",") if p)
                saved = {k: os.environ.get(k) for k in pairs}
                os.environ.update(pairs)
                print(f"\n### capacity {capacity}, env {env or '(none)'}")
                try:
                    rows.append((capacity, env, *_profile(path, cfg, length, steps, capacity, top)))
                except Exception as e:  # noqa: BLE001 - a backend this build or GPU lacks: say so, go on
                    print(f"failed: {str(e).splitlines()[0][:300]}")
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
    print(f"\n| capacity | env | replay ms | kernels ms | kernels a step |\n|---:|---|---:|---:|---:|")
    for capacity, env, replay, kernels, launches in rows:
        print(f"| {capacity} | {env or '-'} | {replay:.3f} | {kernels:.3f} | {launches:.0f} |")


if __name__ == "__main__":
    main()
