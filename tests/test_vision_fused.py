"""The fused Qwen2-VL vision encoder (export/vision_fused.py) against transformers, on the CPU, and its wiring:
``vlm-export --fused-vision``, the manifest, and ``Engine(vision=...)``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from PIL import Image  # noqa: E402

from vlm_sudoku.export.vision_fused import build_vision_encoder  # noqa: E402
from vlm_sudoku.runtime import io_names  # noqa: E402
from vlm_sudoku.runtime.cli import default_model_dir  # noqa: E402
from vlm_sudoku.runtime.model_config import ModelConfig  # noqa: E402
from vlm_sudoku.runtime.preprocess import ImageSettings, preprocess  # noqa: E402
from vlm_sudoku.runtime.vision_rope import vision_rope_rows  # noqa: E402

DATA = Path(__file__).parent / "data"
MAX_NODES_PER_BLOCK = 20


def _images() -> list[Image.Image]:
    """A real photo of a grid at its own size (120x100) and as the default model's 448x448 grid view."""
    photo = Image.open(DATA / "grid.jpg").convert("RGB")
    return [photo, photo.resize((448, 448), Image.BICUBIC)]


@pytest.fixture(scope="module", params=["tiny", "default"])
def model_case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(folder, transformers model, {precision: session}, {precision: graph path}) of the tiny random model and of
    the embedded one."""
    from transformers import AutoModelForImageTextToText

    folder = default_model_dir() / "hf" if request.param == "default" else request.getfixturevalue("tiny_qwen2_vl_dir")
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    out = tmp_path_factory.mktemp(f"vision_{request.param}")
    paths = {p: build_vision_encoder(folder, out / f"vision_{p}.onnx", p) for p in ("fp32", "fp16")}
    sessions = {p: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for p, path in paths.items()}
    return folder, model, sessions, paths


def _run(session, pixel_values: np.ndarray, grid: np.ndarray, cfg: ModelConfig, dtype) -> np.ndarray:
    cos, sin = vision_rope_rows(grid, cfg.vision)  # fp32 angles, cast as the runtime's feeds are
    feeds = {io_names.PIXEL_VALUES: pixel_values, io_names.COS_CACHE: cos, io_names.SIN_CACHE: sin}
    return session.run(None, {k: v.astype(dtype) for k, v in feeds.items()})[0]


def test_fused_vision_matches_transformers(model_case) -> None:
    """model.visual(pixel_values, grid_thw) within 1e-4 (fp32) on two real images of different sizes; the fp16
    graph within a loose tolerance (fp16 weights and activations, fp32 LayerNorms and softmax)."""
    folder, model, sessions, _paths = model_case
    cfg = ModelConfig.from_folder(folder)
    settings = ImageSettings.from_json(folder)
    grids = []
    for image in _images():
        pixel_values, grid = preprocess(image, settings)
        grids.append(tuple(grid[0]))
        with torch.no_grad():
            want = model.visual(torch.from_numpy(pixel_values), torch.from_numpy(grid)).numpy()
        got = _run(sessions["fp32"], pixel_values, grid, cfg, np.float32)
        assert got.shape == want.shape == (int(grid.prod()) // cfg.vision.spatial_merge_size**2, cfg.hidden_size)
        assert np.abs(got - want).max() < 1e-4
        half = _run(sessions["fp16"], pixel_values, grid, cfg, np.float16)
        assert half.dtype == np.float16 and np.isfinite(half).all()
        assert np.abs(half.astype(np.float32) - want).max() < 1e-2 * max(1.0, float(np.abs(want).max()))
    assert grids[0] != grids[1]


def test_fused_vision_is_a_few_nodes_a_block(model_case) -> None:
    folder, _model, _sessions, paths = model_case
    depth = ModelConfig.from_folder(folder).vision.depth
    for path in paths.values():
        nodes = onnx.load(str(path), load_external_data=False).graph.node
        per_block = [sum(n.name.startswith(f"block{i}.") for n in nodes) for i in range(depth)]
        assert max(per_block) < MAX_NODES_PER_BLOCK, per_block
        assert len(nodes) - sum(per_block) < 12  # patch embedding and merger
        ops = {n.op_type for n in nodes}
        assert {"MultiHeadAttention", "RotaryEmbedding", "SkipLayerNormalization", "QuickGelu"} <= ops
        model = onnx.load(str(path), load_external_data=False)
        assert model.ir_version == 8 and {o.domain: o.version for o in model.opset_import}[""] == 17


def test_vision_rope_rows_match_transformers(model_case) -> None:
    """The host's cos/sin rows are transformers' rot_pos_emb (patches in merge-window order), per grid, images
    and video frames alike; the graph's halves repeat them (rotate-half layout)."""
    folder, model, _sessions, _paths = model_case
    cfg = ModelConfig.from_folder(folder)
    for grid in ([[1, 4, 6]], [[1, 10, 14]], [[2, 6, 4], [1, 8, 2]]):
        g = np.asarray(grid, dtype=np.int64)
        with torch.no_grad():
            emb = model.visual.rot_pos_emb(torch.from_numpy(g)).numpy()
        cos, sin = vision_rope_rows(g, cfg.vision)
        head_dim = cfg.vision.embed_dim // cfg.vision.num_heads
        assert cos.shape == (int((g[:, 0] * g[:, 1] * g[:, 2]).sum()), head_dim // 2)
        np.testing.assert_allclose(cos, np.cos(emb), atol=1e-6)
        np.testing.assert_allclose(sin, np.sin(emb), atol=1e-6)
    half_cos, _ = vision_rope_rows(np.array([[1, 6, 6]]), cfg.vision, np.float16)
    assert half_cos.dtype == np.float16


def test_fp16_layer_norms_compute_in_fp32() -> None:
    """The fp16 graph's LayerNorms (LayerNormalization with stash_type=1, SkipLayerNormalization) stay finite and
    accurate on a residual stream whose squares overflow fp16 (|x| in the thousands)."""
    from onnx import TensorProto, helper, numpy_helper

    dim = 64
    rng = np.random.default_rng(0)
    x = rng.normal(3000, 1000, (1, 5, dim))
    skip = rng.normal(0, 500, (1, 5, dim))

    def run(skip_norm: bool, dtype) -> np.ndarray:
        elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
        inits = [numpy_helper.from_array(np.ones(dim, dtype), "g"), numpy_helper.from_array(np.zeros(dim, dtype), "b")]
        names = ["x", "s"] if skip_norm else ["x"]
        node = (helper.make_node("SkipLayerNormalization", ["x", "s", "g", "b"], ["y"], domain="com.microsoft",
                                 epsilon=1e-6) if skip_norm else
                helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], epsilon=1e-6, stash_type=1, axis=-1))
        inputs = [helper.make_tensor_value_info(n, elem, [1, None, dim]) for n in names]
        graph = helper.make_graph([node], "norm", inputs, [helper.make_tensor_value_info("y", elem, None)], inits)
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {"x": x, "s": skip}
        return session.run(None, {n: feeds[n].astype(dtype) for n in names})[0].astype(np.float32)

    for skip_norm in (False, True):
        half = run(skip_norm, np.float16)
        assert np.isfinite(half).all()
        assert np.abs(half - run(skip_norm, np.float32)).max() < 1e-2


def test_bf16_checkpoints_are_read_exactly(tmp_path: Path) -> None:
    """The Hub's Qwen2-VL checkpoints are bf16, which numpy cannot hold: the builder widens them to fp32 exactly,
    and reads the vision tensors only."""
    from safetensors.torch import save_file

    from vlm_sudoku.export.weights import read_safetensors

    tensors = {"visual.a": torch.randn(3, 5).to(torch.bfloat16), "visual.b": torch.randn(4).to(torch.float16),
               "model.embed": torch.randn(2, 2)}
    save_file(tensors, str(tmp_path / "m.safetensors"))
    got = read_safetensors(tmp_path / "m.safetensors", lambda name: "visual." in name)
    assert sorted(got) == ["visual.a", "visual.b"]
    assert got["visual.a"].dtype == np.float32 and np.array_equal(got["visual.a"], tensors["visual.a"].float().numpy())
    assert got["visual.b"].dtype == np.float16 and np.array_equal(got["visual.b"], tensors["visual.b"].numpy())


def test_qwen2_5_vl_is_refused(tiny_qwen2_5_vl_dir: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from vlm_sudoku.export import cli as cli_mod

    with pytest.raises(ValueError, match="Qwen2-VL only.*Qwen2.5-VL"):
        build_vision_encoder(tiny_qwen2_5_vl_dir, tmp_path / "v.onnx")
    result = CliRunner().invoke(cli_mod.cli, ["--quiet", str(tiny_qwen2_5_vl_dir), "-o", str(tmp_path / "out"),
                                              "--fused-vision"], catch_exceptions=False)
    assert result.exit_code == 1
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("vlm-export: error: ") and "Qwen2.5-VL" in err
    assert not (tmp_path / "out").exists()  # refused before the export started


def test_another_vision_activation_is_refused(tiny_qwen2_vl_dir: Path, tmp_path: Path) -> None:
    """The builder writes QuickGelu: a Qwen2-VL folder whose vision MLP says otherwise is refused, not mistranslated."""
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_qwen2_vl_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["vision_config"]["hidden_act"] = "gelu"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="quick_gelu.*'gelu'"):
        build_vision_encoder(folder, tmp_path / "v.onnx")


@pytest.fixture(scope="module")
def fused_vision_export(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_vl_dir: Path) -> Path:
    """``vlm-export --precision fp32 --precision fp16 --fused-vision`` of the tiny Qwen2-VL."""
    from click.testing import CliRunner

    from vlm_sudoku.export import cli as cli_mod

    out = tmp_path_factory.mktemp("fused_vision") / "export"
    result = CliRunner().invoke(cli_mod.cli, ["--quiet", str(tiny_qwen2_vl_dir), "-o", str(out), "--precision", "fp32",
                                              "--precision", "fp16", "--fused-vision", "--check-tokens", "0", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["options"]["fused_vision"] is True
    return out


def test_export_records_the_fused_vision_encoder(fused_vision_export: Path) -> None:
    from vlm_sudoku.export.exporter import ExportOptions
    from vlm_sudoku.runtime.manifest import Manifest

    manifest = Manifest.load(fused_vision_export)
    for precision, file in (("fp32", "onnx/vision_fused.onnx"), ("fp16", "onnx/vision_fused_fp16.onnx")):
        spec = manifest.graph(io_names.FUSED_VISION, precision)
        assert spec.file == file and (fused_vision_export / file).is_file()
        assert spec.input_names == [io_names.PIXEL_VALUES, io_names.COS_CACHE, io_names.SIN_CACHE]
        assert spec.output_names == [io_names.IMAGE_EMBEDS]
        assert spec.inputs[0].dtype == spec.outputs[0].dtype == {"fp32": "float32", "fp16": "float16"}[precision]
    # without the option the key is what it was before the option existed: older exports are still reused
    assert "fused_vision" not in ExportOptions().key_dict()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_answers_the_same_with_either_vision_graph(fused_vision_export: Path, precision: str) -> None:
    """The runtime's two vision graphs give the same image embeddings (to float precision) and the same greedy
    tokens; "auto" prefers the fused one."""
    from vlm_sudoku.runtime.engine import Engine

    from .engine_helpers import shared_prefix_tokens

    image = Image.open(DATA / "grid.jpg").convert("RGB")
    engines = {v: Engine(fused_vision_export, provider="cpu", precision=precision, vision=v)
               for v in ("optimum", "fused")}
    assert not engines["optimum"].fused_vision and engines["fused"].fused_vision
    assert Engine(fused_vision_export, provider="cpu", precision=precision).fused_vision
    assert io_names.COS_CACHE in engines["fused"].vision.inputs
    embeds = {v: e.encode_image(image).embeds.astype(np.float32) for v, e in engines.items()}
    tolerance = 1e-4 if precision == "fp32" else 2e-2 * max(1.0, float(np.abs(embeds["optimum"]).max()))
    assert np.abs(embeds["fused"] - embeds["optimum"]).max() < tolerance
    tokens = {v: shared_prefix_tokens(e, image, 24) for v, e in engines.items()}
    assert tokens["fused"] == tokens["optimum"]


def test_asking_for_a_missing_fused_vision_encoder_is_a_clear_error(tiny_qwen2_vl_export: Path) -> None:
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.manifest import ManifestError

    assert not Engine(tiny_qwen2_vl_export, provider="cpu").fused_vision
    with pytest.raises(ManifestError, match="--fused-vision"):
        Engine(tiny_qwen2_vl_export, provider="cpu", vision="fused")
    with pytest.raises(ValueError, match="vision must be"):
        Engine(tiny_qwen2_vl_export, provider="cpu", vision="trt")
