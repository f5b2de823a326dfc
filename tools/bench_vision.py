"""Time the fused vision encoder (export/vision_fused.py) on the GPU: one image, milliseconds a call.

    python -m vlm_sudoku.tools.bench_vision MODEL_DIR [--size 448] [--repeat 20]

Builds the fp16 fused vision graph straight from MODEL_DIR's safetensors (no optimum export needed) and
times onnxruntime's CUDA provider on one ``--size`` square image, plain and, when onnxruntime can capture
it, as a CUDA graph (the grid view has one size, so one capture serves every photo). The optimum-traced
graph's time comes from vlm-bench's vision column (docs/benchmarks.md): run both on the same machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import numpy as np


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--size", default=448, show_default=True, help="Side of the square test image, pixels.")
@click.option("--repeat", default=20, show_default=True)
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True)
def main(model_dir: Path, size: int, repeat: int, precision: str) -> None:
    import onnxruntime as ort
    from PIL import Image

    from ..export.vision_fused import build_vision_encoder
    from ..runtime import io_names
    from ..runtime.gpu import detect_gpu
    from ..runtime.model_config import ModelConfig
    from ..runtime.preprocess import ImageSettings, preprocess
    from ..runtime.vision_rope import vision_rope_rows

    cfg = ModelConfig.from_folder(model_dir)
    dtype = np.float16 if precision == "fp16" else np.float32
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
    pixels, grid = preprocess(image, ImageSettings.from_json(model_dir))
    cos, sin = vision_rope_rows(grid, cfg.vision, dtype)
    feeds = {io_names.PIXEL_VALUES: pixels.astype(dtype), io_names.COS_CACHE: cos, io_names.SIN_CACHE: sin}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(build_vision_encoder(model_dir, Path(tmp) / "vision_fused.onnx", precision))
        rows = []
        for graph in (False, True):
            options = {"device_id": 0, "use_tf32": "0", **({"enable_cuda_graph": "1"} if graph else {})}
            try:
                session = ort.InferenceSession(path, providers=[("CUDAExecutionProvider", options)])
                binding = session.io_binding()
                for name, value in feeds.items():
                    binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
                out = session.get_outputs()[0]
                binding.bind_output(out.name, "cuda", 0)
                times = []
                for i in range(repeat + 3):
                    t = time.perf_counter()
                    session.run_with_iobinding(binding)
                    if i >= 3:
                        times.append(1e3 * (time.perf_counter() - t))
                rows.append((graph, statistics.median(times), min(times)))
            except Exception as exc:  # a graph onnxruntime cannot capture is a row that says why
                rows.append((graph, float("nan"), str(exc).splitlines()[0][:120]))
    gpu = detect_gpu()
    print(f"{gpu[0] if gpu else 'no GPU found'}: fused vision {precision}, {pixels.shape[0]} patches ({size}x{size})")
    print("| CUDA graph | median ms | min ms |\n|---|---:|---:|")
    for graph, median, best in rows:
        print(f"| {'yes' if graph else 'no'} | {median:.2f} | {best if isinstance(best, str) else f'{best:.2f}'} |")


if __name__ == "__main__":
    main()
