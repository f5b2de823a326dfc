"""The torch-free runtime against transformers, and vlm-solve on images as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlm_sudoku.runtime.engine import Engine
from vlm_sudoku.runtime.pipeline import Pipeline
from vlm_sudoku.runtime.prompts import QUESTIONS, shared_prompt

from .engine_helpers import shared_prefix_tokens

DATA = Path(__file__).parent / "data"


def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def pair(request, tiny_qwen2_vl_dir, tiny_qwen2_vl_export, tiny_qwen2_5_vl_dir, tiny_qwen2_5_vl_export):
    """(torch baseline, ONNX engine) over the same tiny random model."""
    from vlm_sudoku.export.torch_backend import TorchPipeline

    model_dir, export = ((tiny_qwen2_vl_dir, tiny_qwen2_vl_export) if request.param == "qwen2_vl"
                         else (tiny_qwen2_5_vl_dir, tiny_qwen2_5_vl_export))
    engine = Engine(export, provider="cpu")
    engine.stop_ids = frozenset()  # compare full-length continuations
    return TorchPipeline(model_dir), engine


@pytest.mark.parametrize("size", [(56, 84), (140, 112), (200, 150)])
def test_greedy_tokens_equal_transformers_single_and_shared_prefix(pair, size) -> None:
    torch_pipe, engine = pair
    image = _image(*size, seed=size[0])
    encoded = engine.encode_image(image)
    prompt = shared_prompt(engine.tokenizer, [encoded.num_tokens])
    from vlm_sudoku.runtime.preprocess import preprocess

    pixel_values, grid = preprocess(image, engine.image_settings)
    _logits, cache = engine.prefill(prompt.prefix_ids, [encoded])
    for q in QUESTIONS:
        expected = torch_pipe.generate_ids(prompt.full(q), pixel_values, grid, 32, stop=False)
        single = engine.generate(prompt.full(q), images=[encoded], max_new_tokens=32)
        shared = engine.generate(prompt.suffix_ids[q], past=cache, max_new_tokens=32)
        assert single.tokens == expected, q
        assert shared.tokens == expected, q


def test_shared_prefix_gives_the_same_answers(tiny_qwen2_vl_export) -> None:
    shared = Pipeline.load(tiny_qwen2_vl_export, provider="cpu", max_new_tokens=24)
    plain = Pipeline.load(tiny_qwen2_vl_export, provider="cpu", max_new_tokens=24, share_prefix=False)
    image = _image(120, 90, seed=3)
    assert shared.read(image) == plain.read(image)


def test_streamed_text_adds_up_to_the_answer(tiny_qwen2_vl_export) -> None:
    pipe = Pipeline.load(tiny_qwen2_vl_export, provider="cpu", max_new_tokens=24)
    pieces: dict[str, list[str]] = {"rules": [], "digits": []}
    reading = pipe.read_image(_image(100, 100), on_text=lambda q, text: pieces[q].append(text))
    for q, gen in reading.answers.items():
        assert "".join(pieces[q]) == gen.text


# -- vlm-solve on images: real processes ------------------------------------------------------------

SNIPPET = """
import sys
from vlm_sudoku.runtime.cli import main
sys.argv = ["vlm-solve", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("TORCH_IMPORTED" if "torch" in sys.modules else "NO_TORCH", "ORT" if "onnxruntime" in sys.modules else "NO_ORT",
      file=sys.stderr)
sys.exit(code)
"""


def solve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SNIPPET, *args], capture_output=True, text=True, timeout=300)


def test_vlm_solve_on_an_image_never_imports_torch(tiny_qwen2_vl_export, tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    _image(150, 120).save(path)
    proc = solve(str(path), "--model", str(tiny_qwen2_vl_export), "--max-new-tokens", "16", "--json")
    assert "Traceback" not in proc.stderr
    assert "NO_TORCH ORT" in proc.stderr
    out = json.loads(proc.stdout.splitlines()[0])
    assert out["image"] == str(path) and "timings" in out


def test_random_model_answers_are_unreadable_exit_5_quoting_them(tiny_qwen2_vl_export, tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    _image(150, 120).save(path)
    proc = solve(str(path), "--model", str(tiny_qwen2_vl_export), "--max-new-tokens", "16", "--json")
    assert proc.returncode == 5, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "error" and out["exit_code"] == 5 and out["answers"]["rules"]
    assert "the model's" in out["error"] and "'" in out["error"]


def test_a_folder_reuses_the_loaded_sessions(tiny_qwen2_vl_export, tmp_path: Path) -> None:
    for i in range(3):
        _image(100 + 20 * i, 90, seed=i).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    proc = solve(str(tmp_path), "--model", str(tiny_qwen2_vl_export), "--max-new-tokens", "8", "--json")
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [Path(l["image"]).name for l in lines] == ["0.png", "1.png", "2.png"]
    assert lines[0]["timings"]["load"] > 0 and lines[1]["timings"]["load"] == 0


@pytest.mark.parametrize(
    "name, needle",
    [
        ("missing.jpg", "no such file"),
        ("not_an_image.jpg", "not an image file"),
        ("truncated.jpg", "truncated"),
        ("bomb_20000x20000.png", "too large"),
    ],
)
def test_bad_images_exit_1_with_one_line(tiny_qwen2_vl_export, name: str, needle: str) -> None:
    proc = solve(str(DATA / name), "--model", str(tiny_qwen2_vl_export))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("vlm-solve: error")]
    assert len(errors) == 1 and needle in errors[0]


def test_model_folder_that_is_not_an_export(tiny_qwen2_vl_dir) -> None:
    proc = solve(str(DATA / "grid.jpg"), "--model", str(tiny_qwen2_vl_dir))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "manifest" in proc.stderr


def test_export_whose_files_belong_to_another_model(tiny_qwen2_vl_export, tiny_qwen2_5_vl_dir, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_qwen2_vl_export, mixed)
    shutil.copy2(tiny_qwen2_5_vl_dir / "config.json", mixed / "config.json")
    proc = solve(str(DATA / "grid.jpg"), "--model", str(mixed))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "qwen2" in proc.stderr.splitlines()[-2 if proc.stderr.splitlines()[-1].startswith(("NO_", "TORCH")) else -1]


def test_strict_provider_that_is_missing(tiny_qwen2_vl_export) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    proc = solve(str(DATA / "grid.jpg"), "--model", str(tiny_qwen2_vl_export), "--provider", "cuda")
    assert proc.returncode == 1 and "--provider cuda cannot run here" in proc.stderr


def test_tensorrt_engines_for_another_gpu_are_refused(tiny_qwen2_vl_export, monkeypatch) -> None:
    """The check itself, with the machine described (this one has no TensorRT)."""
    from vlm_sudoku.runtime import providers
    from vlm_sudoku.runtime.manifest import Manifest, TensorRTInfo

    manifest = Manifest.load(tiny_qwen2_vl_export)
    built = TensorRTInfo(gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", tensorrt_version="10.3.0",
                         onnxruntime_version="1.31.1", precision="fp16", cache_dir="tensorrt",
                         ep_context_files={}, profiles={})
    object.__setattr__(manifest, "tensorrt", built)
    monkeypatch.setattr(providers, "detect_gpu", lambda: ("Orin", "8.7"))
    monkeypatch.setattr(providers, "tensorrt_version", lambda: "10.3.0")
    present = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(providers.ProviderError, match="built for GPU 'NVIDIA H100 80GB HBM3'"):
        providers.choose("tensorrt", manifest, present)
    auto = providers.choose("auto", manifest, present)
    assert auto.name == "cuda" and "re-run vlm-export --tensorrt" in auto.notes[0]


def test_io_binding_path_matches_plain_feeds(tiny_qwen2_5_vl_export) -> None:
    """The GPU path (cache kept as bound OrtValues between steps), run on the CPU provider."""
    plain = Engine(tiny_qwen2_5_vl_export, provider="cpu")
    bound = Engine(tiny_qwen2_5_vl_export, provider="cpu", io_binding=True)
    image = _image(130, 100, seed=7)
    assert shared_prefix_tokens(plain, image, 24) == shared_prefix_tokens(bound, image, 24)
