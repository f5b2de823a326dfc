"""Everything around TensorRT that runs without it: detection, profiles, options, manifest keying.

TensorRT itself is not installable on these machines; engine building is
exercised against a fake onnxruntime session and is unverified for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vlm_sudoku.export import tensorrt as trt
from vlm_sudoku.export.errors import TensorRTUnavailableError
from vlm_sudoku.runtime import io_names as N
from vlm_sudoku.runtime.manifest import Manifest
from vlm_sudoku.runtime.model_config import ModelConfig


@pytest.fixture(params=["qwen2_vl", "qwen2_5_vl"])
def exported(request: pytest.FixtureRequest) -> tuple[Path, Manifest, ModelConfig]:
    out = request.getfixturevalue(f"tiny_{request.param}_export")
    return out, Manifest.load(out), ModelConfig.from_folder(out)


def test_absence_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(TensorRTUnavailableError, match="has no TensorrtExecutionProvider") as err:
        trt.detect_tensorrt()
    assert "\n" not in str(err.value)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(trt, "tensorrt_version", lambda: None)
    with pytest.raises(TensorRTUnavailableError, match="libnvinfer"):
        trt.detect_tensorrt()

    monkeypatch.setattr(trt, "tensorrt_version", lambda: "10.3.0")
    monkeypatch.setattr(trt, "detect_gpu", lambda: None)
    with pytest.raises(TensorRTUnavailableError, match="no NVIDIA GPU"):
        trt.detect_tensorrt()

    monkeypatch.setattr(trt, "detect_gpu", lambda: ("Orin", "8.7"))
    env = trt.detect_tensorrt()
    assert (env.gpu_name, env.compute_capability, env.tensorrt_version) == ("Orin", "8.7", "10.3.0")


def test_profiles_cover_every_dynamic_input(exported) -> None:
    _, manifest, cfg = exported
    limits = trt.ProfileLimits(max_batch=2, max_total=1024, max_sequence=512)
    for graph in manifest.graphs:
        profile = trt.profile_shapes(graph, cfg, manifest.image_policy, limits)
        dynamic = [t.name for t in graph.inputs if any(isinstance(d, str) for d in t.shape)]
        assert list(profile) == dynamic
        for name, shapes in profile.items():
            spec = next(t for t in graph.inputs if t.name == name)
            for lo, opt, hi, dim in zip(shapes["min"], shapes["opt"], shapes["max"], spec.shape):
                assert 0 <= lo <= opt <= hi
                if isinstance(dim, int):
                    assert lo == opt == hi == dim
    dec = trt.profile_shapes(manifest.graph(N.DECODER), cfg, manifest.image_policy, limits)
    assert dec[N.past_key(0)]["min"][2] == 0  # prefill runs with an empty cache
    assert dec[N.ATTENTION_MASK]["max"] == [2, 1024]
    vis = trt.profile_shapes(manifest.graph(N.VISION_ENCODER), cfg, manifest.image_policy, limits)
    assert vis[N.PIXEL_VALUES]["max"] == [manifest.image_policy.max_pixels // 196, cfg.vision.patch_dim]


def test_provider_options_syntax(tmp_path: Path) -> None:
    profile = {"a": {"min": [1, 2], "opt": [1, 8], "max": [4, 16]}, "b": {"min": [0], "opt": [3], "max": [9]}}
    opts = trt.provider_options(profile, tmp_path / "cache", tmp_path / "cache" / "x_ctx.onnx")
    assert opts["trt_profile_min_shapes"] == "a:1x2,b:0"
    assert opts["trt_profile_opt_shapes"] == "a:1x8,b:3"
    assert opts["trt_profile_max_shapes"] == "a:4x16,b:9"
    assert opts["trt_fp16_enable"] == "1" and opts["trt_engine_cache_enable"] == "1"
    assert opts["trt_dump_ep_context_model"] == "1" and opts["trt_ep_context_file_path"].endswith("x_ctx.onnx")


def test_build_engines_records_gpu_and_profiles(exported, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With a fake onnxruntime session: one TensorRT session per graph, keyed to the GPU in the manifest."""
    import onnxruntime as ort

    out, manifest, cfg = exported
    calls = []

    class FakeSession:
        def __init__(self, path, providers):
            calls.append((Path(path).name, providers))

    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    env = trt.GpuEnvironment("NVIDIA H100 80GB HBM3", "9.0", "10.3.0", ort.__version__)
    info = trt.build_engines(tmp_path, list(manifest.graphs), cfg, manifest.image_policy, "fp32", env=env)
    assert [c[0] for c in calls] == [Path(g.file).name for g in manifest.graphs]
    provider, options = calls[0][1][0]
    assert provider == "TensorrtExecutionProvider" and options["trt_engine_cache_path"] == str(tmp_path / "tensorrt")
    assert info.gpu_name == "NVIDIA H100 80GB HBM3" and info.compute_capability == "9.0"
    assert set(info.ep_context_files) == set(N.GRAPHS)
    assert info.profiles[N.DECODER][N.INPUTS_EMBEDS]["max"][0] == 1


def test_build_failure_is_one_line(exported, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import onnxruntime as ort

    _, manifest, cfg = exported

    def boom(*a, **k):
        raise RuntimeError("[TensorRT EP] failed to build engine\nlong details")

    monkeypatch.setattr(ort, "InferenceSession", boom)
    env = trt.GpuEnvironment("x", "9.0", "10.3.0", "1")
    with pytest.raises(TensorRTUnavailableError, match="engine build failed for vision_encoder") as err:
        trt.build_engines(tmp_path, list(manifest.graphs), cfg, manifest.image_policy, "fp32", env=env)
    assert "\n" not in str(err.value)


def test_version_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes
    import sys

    class Lib:
        def __init__(self, v):
            self.v = v

        def getInferLibVersion(self):  # noqa: N802 - TensorRT's C name
            return self.v

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # no Python package: fall back to libnvinfer
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Lib(100300))
    assert trt.tensorrt_version() == "10.3.0"
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Lib(8601))
    assert trt.tensorrt_version() == "8.6.1"
