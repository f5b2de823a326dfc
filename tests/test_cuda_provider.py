"""The CUDA path (IO binding, KV cache kept on the GPU) against the CPU provider.

Runs only where onnxruntime-gpu finds a GPU (the GPU machine: see docs/benchmarks.md for the
command); CI has none and skips the module.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

ort = pytest.importorskip("onnxruntime")
if "CUDAExecutionProvider" not in ort.get_available_providers():
    pytest.skip("onnxruntime has no CUDA provider here", allow_module_level=True)

from vlm_sudoku.runtime.engine import Engine  # noqa: E402
from vlm_sudoku.runtime.pipeline import Pipeline  # noqa: E402

from .engine_helpers import shared_prefix_tokens  # noqa: E402


def _image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _read(engine: Engine, image: Image.Image) -> tuple[np.ndarray, list[list[int]]]:
    return np.asarray(engine.encode_image(image).embeds), shared_prefix_tokens(engine, image, 32)


@pytest.mark.parametrize("which", ["tiny_qwen2_vl_export", "tiny_qwen2_5_vl_export"])
def test_cuda_io_binding_matches_cpu(which: str, request: pytest.FixtureRequest) -> None:
    export = request.getfixturevalue(which)
    cpu = Engine(export, provider="cpu")
    cuda = Engine(export, provider="cuda")
    assert cuda.provider_name == "cuda" and cuda._bound, "the CUDA engine must use IO binding"
    for seed, (w, h) in enumerate([(130, 100), (300, 220)]):
        image = _image(w, h, seed)
        cpu_embeds, cpu_tokens = _read(cpu, image)
        cuda_embeds, cuda_tokens = _read(cuda, image)
        assert np.abs(cpu_embeds - cuda_embeds).max() < 1e-3
        assert cuda_tokens == cpu_tokens


def test_cuda_pipeline_solves_through_the_same_answers(tiny_qwen2_vl_export) -> None:
    """The whole read (shared prefix, both questions) on CUDA says what the CPU says."""
    image = _image(200, 160, 3)
    texts = [Pipeline.load(tiny_qwen2_vl_export, provider=p, max_new_tokens=24).read(image) for p in ("cpu", "cuda")]
    assert texts[0] == texts[1]


@pytest.fixture(scope="module")
def fused_fp16_export(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_vl_dir):
    from vlm_sudoku.export.exporter import ExportOptions, export_model

    out = tmp_path_factory.mktemp("fused_fp16") / "export"
    export_model(tiny_qwen2_vl_dir, out, ExportOptions(precisions=("fp32", "fp16"), fused_decoder=True, check_tokens=0))
    return out


def test_cuda_graph_decode_matches_the_uncaptured_static_path(fused_fp16_export) -> None:
    """Decode steps replayed from one CUDA graph give the tokens of the same static-cache steps run normally;
    the second question after the shared prefix replays the graph the first one captured."""
    plain = Engine(fused_fp16_export, provider="cuda", precision="fp16", cuda_graph=False)
    assert not plain.cuda_graph and Engine(fused_fp16_export, provider="cuda", precision="fp16").cuda_graph  # on by default
    # room for the prefix and both answers from the start (the cache is sized to what is asked, so a bare
    # prefill followed by generations would move it once: the pipeline reserves first, Engine.reserve)
    graphed = Engine(fused_fp16_export, provider="cuda", precision="fp16", cuda_graph=True, max_length=1024)
    assert plain._kv is not None and graphed._kv is not None
    image = _image(160, 120, 4)
    assert shared_prefix_tokens(graphed, image, 48) == shared_prefix_tokens(plain, image, 48)
    assert graphed._graph_id == 1  # one capture served both questions
    growing = Engine(fused_fp16_export, provider="cuda", precision="fp16", cuda_graph=True, max_length=8)
    assert shared_prefix_tokens(growing, image, 48) == shared_prefix_tokens(plain, image, 48)


def test_cuda_graph_survives_moves_in_the_middle_of_an_answer(fused_fp16_export, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer that outgrows its reserved room moves the device cache mid-answer: the step is bound and
    captured again on the new buffers (a new graph id) and decodes the tokens the uncaptured path gives."""
    from vlm_sudoku.runtime.engine import _StaticKV

    plain = Engine(fused_fp16_export, provider="cuda", precision="fp16", cuda_graph=False)
    image = _image(150, 110, 6)
    expected = shared_prefix_tokens(plain, image, 40)
    monkeypatch.setattr(_StaticKV, "ANSWER_ROOM", 8)
    monkeypatch.setattr(_StaticKV, "ROUND", 16)  # several moves within a 40-token answer
    graphed = Engine(fused_fp16_export, provider="cuda", precision="fp16", cuda_graph=True)
    assert shared_prefix_tokens(graphed, image, 40) == expected
    assert graphed._graph_id >= 4  # each question moved the cache, and captured again, more than once
